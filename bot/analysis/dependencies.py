"""What a statement's meaning depends on, so that moving a statement later never changes another one.

A plan moves statements: a drop waits for the deploy that stops using the column, a `VALIDATE` goes to the
next migration. Every statement the moved one jumps over must mean the same thing with or without it. The
model is deliberately coarse and errs towards "depends":

- A statement *mentions* the names it contains: every identifier, quoted or not, folded to lower case (a
  folded name that matches is enough), including those inside function bodies and `DO` blocks.
- A moved statement has *keys*: the names whose meaning it changes (a dropped column, the type that column
  uses, the constraints and indexes on it, a dropped table and the tables its foreign keys join it to),
  computed from the replayed schema where the statement was written, plus its *tables*.
- A statement that stays depends on a moved one when it mentions one of its keys, or (for column-level keys)
  mentions the key together with the key's table, or when it changes the table's shape as a whole (drops or
  renames it, copies its rows with `*` or without a column list).
- A statement whose names cannot be read (dynamic SQL in `EXECUTE`, text the tokenizer refuses) depends on
  everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

from bot.analysis import operations as op
from bot.analysis.model import Keys, Touches
from bot.analysis.schema import Schema

# One tokenizer for every call (each starts from a clean state; the token list is complete before a nested
# body is tokenized): building one costs as much as tokenizing a short statement.
_TOKENIZER = Postgres().tokenizer()
_SKIPPED = {
    TokenType.NUMBER,
    TokenType.L_PAREN,
    TokenType.R_PAREN,
    TokenType.COMMA,
    TokenType.DOT,
    TokenType.SEMICOLON,
    TokenType.EQ,
    TokenType.COLON,
    TokenType.DCOLON,
}
_BODIES = {TokenType.HEREDOC_STRING, TokenType.RAW_STRING}
_DOLLAR_QUOTED = re.compile(r"^\$(?P<tag>[A-Za-z_]*)\$(?P<body>.*)\$(?P=tag)\$$", re.DOTALL)
_DYNAMIC_SQL = re.compile(r"\bEXECUTE\b", re.IGNORECASE)
_INSERT_WITHOUT_COLUMNS = re.compile(
    r"^\s*INSERT\s+INTO\s+(?:\"[^\"]+\"|\w+)(?:\s*\.\s*(?:\"[^\"]+\"|\w+))?\s+(?:SELECT|VALUES|TABLE|WITH)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Mentions:
    """The names a statement mentions; `opaque` when they cannot all be read."""

    names: frozenset[str]
    # The subset written as identifiers (quoted, or words that are no keyword): names of things.
    identifiers: frozenset[str] = frozenset()
    star: bool = False
    insert_without_columns: bool = False
    opaque: bool = False


@lru_cache(maxsize=4096)
def mentions(sql: str) -> Mentions:
    names: set[str] = set()
    identifiers: set[str] = set()
    state = {"star": False, "opaque": False}
    _collect(sql, names, identifiers, state, depth=0)
    return Mentions(
        frozenset(names),
        frozenset(identifiers),
        star=state["star"],
        insert_without_columns=bool(_INSERT_WITHOUT_COLUMNS.match(sql)),
        opaque=state["opaque"],
    )


def _collect(sql: str, names: set[str], identifiers: set[str], state: dict[str, bool], depth: int) -> None:
    if depth > 4:
        state["opaque"] = True
        return
    try:
        tokens = _TOKENIZER.tokenize(sql)
    except (SqlglotError, RecursionError, ValueError):
        state["opaque"] = True
        return
    after_do = False
    for token in tokens:
        kind = token.token_type
        if kind is TokenType.STAR:
            state["star"] = True
        elif kind in _BODIES or (after_do and kind is TokenType.STRING):
            body = token.text
            match = _DOLLAR_QUOTED.match(body)
            body = match.group("body") if match else body
            if _DYNAMIC_SQL.search(body):
                state["opaque"] = True
            _collect(body, names, identifiers, state, depth + 1)
        elif kind is TokenType.STRING or kind in _SKIPPED:
            pass
        else:
            names.add(token.text.lower())
            if kind in (TokenType.IDENTIFIER, TokenType.VAR):
                identifiers.add(token.text.lower())
        after_do = kind is TokenType.COMMAND and token.text.upper() == "DO"


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower()


def keys_of(operation: op.Operation, later_sql: str, schema: Schema) -> Keys:
    """The keys of `operation`, deferred as `later_sql`, from the schema as it was just before it ran."""
    names: set[str] = set()
    columns: set[str] = set()
    tables: set[str] = set()
    if isinstance(operation, op.DropTable):
        tables.add(_bare(operation.name))
        names.add(_bare(operation.name))
        _add_table_keys(operation.name, schema, names, tables)
    elif isinstance(operation, op.TableOperation):
        tables.add(_bare(operation.on))
        touched = _columns_of(operation, schema)
        columns |= {c.lower() for c in touched}
        _add_column_keys(operation.on, touched, schema, names, tables)
        for constraint_name in (getattr(operation, "name", ""), getattr(operation, "new_name", "")):
            if isinstance(constraint_name, str) and constraint_name:
                names.add(constraint_name.lower())
        if isinstance(operation, op.AddConstraint):
            spec = operation.constraint
            names.update(n.lower() for n in (spec.name, spec.using_index) if n)
            if spec.foreign_key is not None:
                tables.add(_bare(spec.foreign_key.ref_table))
    else:
        tables.update(_bare(n) for n in _full_tables(operation))
    # Whatever else the deferred statements name (a CHECK's name, an index), minus tables and their schemas.
    qualifiers = {name.split(".")[0].lower() for name in _full_tables(operation) if "." in name}
    own = mentions(later_sql).identifiers - tables - qualifiers - columns - _KEYWORDS
    return Keys(frozenset(names | own), frozenset(columns), frozenset(tables))


def generic_keys(sql: str) -> Keys:
    """Keys from the text alone, for a statement that moves along with another: every name it mentions."""
    return Keys(mentions(sql).identifiers - _KEYWORDS, frozenset(), frozenset())


def _full_tables(operation: op.Operation) -> list[str]:
    return [
        n for n in (getattr(operation, "on", None), getattr(operation, "name", None)) if isinstance(n, str)
    ]


def _columns_of(operation: op.TableOperation, schema: Schema) -> tuple[str, ...]:
    column = getattr(operation, "column", None)
    if isinstance(column, str) and column:
        return (column,)
    if isinstance(column, op.ColumnSpec):
        return (column.name,)
    if isinstance(operation, (op.ValidateConstraint, op.DropConstraint)):
        table = schema.tables.get(operation.on)
        constraint = table.constraints.get(operation.name) if table else None
        return constraint.columns if constraint else ()
    if isinstance(operation, op.AddConstraint):
        return operation.constraint.columns
    return ()


def _add_column_keys(
    table_name: str, columns: tuple[str, ...], schema: Schema, names: set[str], tables: set[str]
) -> None:
    """A column's type (when it is the project's own), the constraints and indexes that use it, and the
    tables its foreign keys point to (dropping one of those would need the column gone)."""
    table = schema.tables.get(table_name)
    if table is None:
        return
    wanted = set(columns)
    for name in columns:
        column = table.columns.get(name)
        if column is not None and column.type is not None and column.type.user_defined:
            names.add(_bare(column.type.base))
    for constraint_name, constraint in table.constraints.items():
        if constraint.not_null_column in wanted or not wanted.isdisjoint(constraint.columns):
            names.add(constraint_name.lower())
            if constraint.ref_table:
                tables.add(_bare(constraint.ref_table))
    on_table = [name for name, on in schema.indexes.items() if on == table_name]
    for index_name in on_table:
        if not wanted.isdisjoint(schema.index_columns.get(index_name, ())):
            names.add(_bare(index_name))


def _add_table_keys(table_name: str, schema: Schema, names: set[str], tables: set[str]) -> None:
    """A table's column types, constraints, indexes and views; the tables foreign keys join it to."""
    table = schema.tables.get(table_name)
    if table is not None:
        _add_column_keys(table_name, tuple(table.columns), schema, names, tables)
        for constraint_name, constraint in table.constraints.items():
            names.add(constraint_name.lower())
            if constraint.ref_table:
                tables.add(_bare(constraint.ref_table))
    for other_name, other in schema.tables.items():
        if any(c.ref_table == table_name for c in other.constraints.values()):
            tables.add(_bare(other_name))
    for index_name, index_table in schema.indexes.items():
        if index_table == table_name:
            names.add(_bare(index_name))
    for view, sources in schema.view_sources.items():
        if table_name in sources:
            names.add(_bare(view))


# Words every statement says: never a reason for two statements to depend on each other.
_KEYWORDS = frozenset(
    [
        "alter",
        "table",
        "add",
        "drop",
        "column",
        "constraint",
        "index",
        "on",
        "only",
        "if",
        "exists",
        "not",
        "null",
        "set",
        "default",
        "validate",
        "check",
        "foreign",
        "key",
        "references",
        "primary",
        "unique",
        "using",
        "concurrently",
        "create",
        "type",
        "to",
        "rename",
        "cascade",
        "restrict",
        "and",
        "or",
        "is",
        "in",
        "as",
        "where",
        "update",
        "delete",
        "from",
        "insert",
        "into",
        "values",
        "select",
        "public",
    ]
)


def depends(keys: Keys, statement: Mentions, retires: frozenset[str] = frozenset()) -> bool:
    """Does a statement (its mentions; the tables it drops or renames) depend on a moved one's `keys`?"""
    if statement.opaque:
        return True
    if keys.names & statement.names:
        return True
    shares_table = bool(keys.tables & statement.names)
    if not shares_table:
        return False
    if keys.columns & statement.names:
        return True
    return (
        statement.star or statement.insert_without_columns or bool(keys.tables & {_bare(t) for t in retires})
    )


# -- effects: what a statement changes of what exists, and which finished states it needs -------------------

OPAQUE = Touches(opaque=True)
_NOTHING = Touches()


def table_atom(table: str) -> str:
    return f"table:{_bare(table)}"


def column_atom(table: str, column: str) -> str:
    return f"column:{_bare(table)}.{column.lower()}"


def constraint_atom(table: str, name: str) -> str:
    return f"constraint:{_bare(table)}.{name.lower()}"


def index_atom(name: str) -> str:
    return f"index:{_bare(name)}"


def not_null_atom(table: str, column: str) -> str:
    return f"not-null:{_bare(table)}.{column.lower()}"


def touches_of(operation: op.Operation) -> Touches:
    """`_effects_of` with the tables and columns the operation works on."""
    effects = _effects_of(operation)
    if effects.opaque:
        return effects
    tables, columns = _works_on(operation)
    appends = frozenset({_bare(operation.on)}) if isinstance(operation, op.AddColumn) else frozenset()
    return Touches(effects.changes, effects.needs, False, tables, columns, appends)


_ON_RELATIONS = (
    op.CreateTable,
    op.DropTable,
    op.RenameTable,
    op.CreateView,
    op.DropView,
    op.RefreshMaterializedView,
)


def _works_on(operation: op.Operation) -> tuple[frozenset[str], frozenset[str]]:
    tables: set[str] = set()
    columns: set[str] = set()
    # `name` is a table's (or view's) only on operations on the relation itself: elsewhere it names a
    # constraint, an index, a type or a trigger, which must stay a name other statements are checked for.
    relation = operation.name if isinstance(operation, _ON_RELATIONS) else None
    for value in (getattr(operation, "on", None), getattr(operation, "target", None), relation):
        if isinstance(value, str) and value:
            tables.add(_bare(value))
    tables.update(_bare(t) for t in getattr(operation, "reads", ()) or ())
    column = getattr(operation, "column", None)
    if isinstance(column, str) and column:
        columns.add(column.lower())
    elif isinstance(column, op.ColumnSpec):
        columns.add(column.name.lower())
        if column.references is not None:
            tables.add(_bare(column.references.ref_table))
            columns.update(c.lower() for c in column.references.ref_columns)
    new_name = getattr(operation, "new_name", None)
    if isinstance(new_name, str) and new_name:
        (columns if isinstance(operation, op.RenameColumn) else tables).add(_bare(new_name))
    specs: list[op.ConstraintSpec] = []
    if isinstance(operation, op.AddConstraint):
        specs.append(operation.constraint)
    if isinstance(operation, op.CreateTable):
        specs.extend(operation.constraints)
        for item in operation.columns:
            columns.add(item.name.lower())
            if item.references is not None:
                tables.add(_bare(item.references.ref_table))
                columns.update(c.lower() for c in item.references.ref_columns)
    for spec in specs:
        columns.update(c.lower() for c in spec.columns)
        if spec.foreign_key is not None:
            tables.add(_bare(spec.foreign_key.ref_table))
            columns.update(c.lower() for c in spec.foreign_key.columns + spec.foreign_key.ref_columns)
    if isinstance(operation, op.CreateIndex):
        columns.update(c.lower() for c in operation.columns)
    return frozenset(tables), frozenset(columns)


def _effects_of(operation: op.Operation) -> Touches:
    """The effect model of one operation. A deferred step (a `VALIDATE`, a `SET NOT NULL` after a valid
    CHECK) keeps its meaning when what runs before it changes none of the objects it names, and a statement
    may run before a deferred step when it needs none of the states that step finishes. Creating new objects,
    adding columns and constraints, and changing rows change no existing object's meaning for such a step:
    only drops, renames and changes of a column or constraint do."""
    if isinstance(operation, op.Unrecognized):
        return OPAQUE
    if isinstance(operation, (op.DropTable, op.RenameTable)):
        return Touches(changes=frozenset({table_atom(operation.name)}))
    if isinstance(
        operation,
        (
            op.DropColumn,
            op.RenameColumn,
            op.AlterColumnType,
            op.SetNotNull,
            op.DropNotNull,
        ),
    ):
        return Touches(changes=frozenset({column_atom(operation.on, operation.column)}))
    if isinstance(operation, op.AlterColumnIdentity):
        needs = (
            {not_null_atom(operation.on, operation.column)} if operation.action == "add identity" else set()
        )
        return Touches(frozenset({column_atom(operation.on, operation.column)}), frozenset(needs))
    if isinstance(operation, (op.DropConstraint, op.RenameConstraint)):
        return Touches(changes=frozenset({constraint_atom(operation.on, operation.name)}))
    if isinstance(operation, (op.DropIndex, op.RenameIndex)):
        return Touches(changes=frozenset({index_atom(operation.name)}))
    if isinstance(operation, op.AddConstraint) and operation.constraint.kind == "primary_key":
        # A primary key makes its columns NOT NULL, scanning the table unless they already are.
        columns = operation.constraint.columns
        needs = {not_null_atom(operation.on, c) for c in columns} or {not_null_atom(operation.on, "*")}
        return Touches(needs=frozenset(needs))
    return _NOTHING


def merged(touches: tuple[Touches, ...]) -> Touches:
    """One statement's effects from its operations'."""
    if len(touches) == 1:
        return touches[0]
    return Touches(
        frozenset().union(*(t.changes for t in touches)),
        frozenset().union(*(t.needs for t in touches)),
        any(t.opaque for t in touches),
        frozenset().union(*(t.tables for t in touches)),
        frozenset().union(*(t.columns for t in touches)),
        frozenset().union(*(t.appends for t in touches)),
    )


def moved_keys(sql: str, touches: Touches) -> Keys:
    """What a statement that moves to a later phase must take along: every later statement that names its
    objects. Its own tables and columns are read from its operations, so a column name matters only where its
    table is named too; every other identifier (a constraint, an index, a type) matters wherever it appears.
    A statement whose operations cannot be read keys on every name it mentions."""
    if touches.opaque or not touches.tables:
        return generic_keys(sql)
    names = mentions(sql).identifiers - touches.tables - touches.columns - _KEYWORDS
    return Keys(frozenset(names), touches.columns, touches.tables)


def changes_what_it_requires(changes: frozenset[str], requires: frozenset[str]) -> bool:
    """Does a statement that `changes` these atoms change something a deferred step `requires`? Changing a
    table (dropping or renaming it) changes everything on it."""
    if changes & requires:
        return True
    tables = {atom.removeprefix("table:") for atom in changes if atom.startswith("table:")}
    if not tables:
        return False
    return any(_table_of(atom) in tables for atom in requires)


def needs_what_it_finishes(needs: frozenset[str], finishes: frozenset[str]) -> bool:
    if needs & finishes:
        return True
    wildcards = {atom.removesuffix("*") for atom in needs if atom.endswith(".*")}
    return any(atom.startswith(prefix) for prefix in wildcards for atom in finishes)


def _table_of(atom: str) -> str:
    kind, _, rest = atom.partition(":")
    if kind == "table":
        return rest
    if kind == "index":
        return ""
    return rest.split(".", 1)[0]
