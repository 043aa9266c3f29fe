"""The columns a view's query reads: PostgreSQL refuses to change the type of any of them while the view exists.

Read from the parse tree alone, so a name is attributed to a table only where the query says which one: by a
qualifier (`u."email"`, `"User".*`), or as unqualified (`""`), for the replay to resolve against the columns
the query's tables have then. Anything zdm cannot attribute (an unknown qualifier, a bare `*` over several
tables, an unqualified name next to a subquery or CTE whose columns it may mean) makes the whole answer None:
cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

# (table, column): a column read through its table; ("", column): an unqualified name; (table, "*"): every
# column the table has when the view is created.
ColumnReads = tuple[tuple[str, str], ...]
ALL_COLUMNS = "*"
UNQUALIFIED = ""


def columns_read(
    query: exp.Expression | None,
    table_key: Callable[[exp.Expression], str],
    ident: Callable[[exp.Expression | None], str],
) -> ColumnReads | None:
    """What `query` reads, or None when some column cannot be attributed."""
    if query is None:
        return None
    # One walk over the tree: views are parsed once, but a long one is a large tree.
    nodes: dict[type[object], list[Any]] = {}
    for node in query.walk():
        nodes.setdefault(type(node), []).append(node)
    derived: set[str] = {ident(cte.args.get("alias")) for cte in nodes.get(exp.CTE, ())}
    derived |= {subquery.alias for subquery in nodes.get(exp.Subquery, ()) if subquery.alias}
    tables: set[str] = set()
    # The base table each qualifier names (None: two different tables under one name, in different scopes).
    by_qualifier: dict[str, str | None] = {}
    for table in nodes.get(exp.Table, ()):
        if not isinstance(table.this, exp.Identifier):
            return None  # a function in FROM: its columns are no table's
        key = table_key(table)
        if key in derived:
            continue
        tables.add(key)
        alias = table.args.get("alias")
        qualifier = (
            ident(alias.this) if isinstance(alias, exp.TableAlias) and alias.this else ident(table.this)
        )
        known = by_qualifier.setdefault(qualifier, key)
        if known != key:
            by_qualifier[qualifier] = None
    reads: set[tuple[str, str]] = set()
    for column in nodes.get(exp.Column, ()):
        qualifier_node = column.args.get("table")
        star = isinstance(column.this, exp.Star)
        if qualifier_node is None:
            if star or derived:
                return None
            reads.add((UNQUALIFIED, ident(column.this)))
            continue
        qualifier = ident(qualifier_node)
        if qualifier in derived and qualifier not in by_qualifier:
            continue  # a CTE's or subquery's output: its own query reads the tables
        target = by_qualifier.get(qualifier)
        if target is None:
            return None
        reads.add((target, ALL_COLUMNS if star else ident(column.this)))
    for star_node in nodes.get(exp.Star, ()):
        # `SELECT *` (not `count(*)`, not `t.*`, handled above): every column of the one table read.
        if isinstance(star_node.parent, exp.Select):
            if len(tables) != 1 or derived:
                return None
            reads.add((next(iter(tables)), ALL_COLUMNS))
    return tuple(sorted(reads))
