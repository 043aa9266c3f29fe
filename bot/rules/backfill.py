"""backfill: UPDATE/DELETE of existing rows inside a migration, and its batched rewrite."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.analysis.parser import qualified
from bot.analysis.schema import Schema
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "backfill"
# Rows per transaction in the rewrite. At most this many rows are locked at any moment, each for the few
# milliseconds a batch of index-range writes takes, so a writer that hits one waits about as long as it would
# behind another request; and a million-row table costs a thousand commits, not a million.
BATCH_SIZE = 1_000
# TID range scans (`ctid >= '(p,0)' AND ctid < '(q,0)'` read only those pages) exist from this version; before
# it, each batch of a walk by pages would read the whole table.
PAGE_WALK_SINCE = 14

# Row locks only exist on rows: the examples need some.
_WITH_ROWS = (
    STANDARD_SETUP
    + """INSERT INTO "User" ("email") SELECT 'u' || g || '@example.com' FROM generate_series(1, 50) AS g;
INSERT INTO "Tip" ("userId", "amount") SELECT 1 + g % 50, CASE WHEN g % 3 = 0 THEN NULL ELSE g END FROM generate_series(1, 200) AS g;
"""
)
_DIALECT = Postgres()

# The value of these is fixed for a whole transaction: one value for every row in the original statement, one
# per batch in the rewrite, which no run of the original could produce.
_TRANSACTION_TIME = (
    exp.CurrentTimestamp,
    exp.CurrentTimestampLTZ,
    exp.CurrentDate,
    exp.CurrentTime,
    exp.CurrentDatetime,
    exp.Localtime,
    exp.Localtimestamp,
)
_TRANSACTION_TIME_NAMES = {"now", "transaction_timestamp", "statement_timestamp"}
# Built-in functions sqlglot does not model, known to read no table: a function that read the target table
# would see the batches already committed. Volatile ones (clock_timestamp, nextval, uuid_generate_v4) give each
# row its own value in the original too; the batches produce one of the results the original could.
_PURE_BUILTINS = {
    "array_cat", "array_position", "array_positions", "array_remove", "array_replace", "btrim",
    "clock_timestamp", "date_part", "date_trunc", "format", "gen_random_uuid", "initcap", "json_agg",
    "json_build_array", "json_build_object", "json_object", "jsonb_agg", "jsonb_array_elements",
    "jsonb_array_elements_text", "jsonb_array_length", "jsonb_build_array", "jsonb_build_object",
    "jsonb_each", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert", "jsonb_object_agg",
    "jsonb_object_keys", "jsonb_path_query_first", "jsonb_set", "jsonb_set_lax", "jsonb_strip_nulls",
    "jsonb_typeof", "left", "lpad", "ltrim", "make_date", "make_timestamp", "make_timestamptz", "nextval",
    "pg_get_serial_sequence", "regexp_split_to_array", "right", "rpad", "rtrim", "string_to_array",
    "timeofday", "to_char", "to_date", "to_json", "to_jsonb", "to_number", "to_timestamp", "translate",
    "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
}  # fmt: skip
# Names the DO block declares or PL/pgSQL defines: the same name in the statement would resolve to them.
_PLPGSQL_NAMES = {"found"}
# The system catalogs and views (pg_timezone_names): they describe the server, not the table being changed.
_SYSTEM_RELATIONS = ("pg_", "information_schema.", "pg_catalog.")
_OWN_PREFIX = "zdm_"


class NotProvable(Exception):
    """The statement's shape is one the batched rewrite cannot be shown to leave with the same rows."""


def check(o: op.DataChange, ctx: Context) -> Effect:
    reads = [(t, LockMode.ACCESS_SHARE) for t in o.reads]
    if o.kind == "select" or o.target is None:
        return claim(ID, ctx, "Reads data; takes no lock that blocks others.", reads, scans=o.reads)
    locks = [*reads, (o.target, LockMode.ROW_EXCLUSIVE)]
    if o.kind == "insert":
        return claim(
            ID,
            ctx,
            f"Inserts rows into {quoted_name(o.target)}; writes by others continue.",
            locks,
            scans=o.reads,
        )
    if not ctx.live(o.target):
        return claim(
            ID,
            ctx,
            f"Changes rows of {quoted_name(o.target)}, created in this migration.",
            locks,
            scans=o.reads,
        )
    if o.batched:
        return claim(
            ID,
            ctx,
            f"This {o.kind.upper()} runs in a loop that commits on every pass: each transaction locks only the "
            f"rows of its batch of {quoted_name(o.target)}, and writers wait for one batch at most.",
            locks,
            scans=[o.target, *o.reads],
        )
    key = walk_key(ctx.schema, o.target)
    if key is not None and _names_its_rows(o, key):
        return claim(
            ID,
            ctx,
            f"This {o.kind.upper()} names the rows of {quoted_name(o.target)} it changes by {key.described}: it "
            "reaches them through the key's index and locks only those rows until the migration's transaction ends; "
            "other rows are not read or locked.",
            locks,
            scans=o.reads,
            classification=Classification.BRIEF,
            table=o.target,
        )
    advice = (
        "Backfill outside the migration, in batches of a few thousand rows by primary key, each in its own "
        "transaction; keep only the schema change in the migration."
    )
    fix = None
    try:
        block = batched_rewrite(ctx.sql, o.target, ctx.schema, tree=o.tree)
    except NotProvable as reason:
        advice += f" zdm writes no automatic rewrite for it: {reason}."
    else:
        assert key is not None  # a user's statement is only ever batched by key
        fix = Fix(
            f"the {o.kind.upper()} becomes a DO block working through {quoted_name(o.target)} by its "
            f"{key.described}, {BATCH_SIZE:,} rows per transaction",
            alone=(block,),
        )
        advice = (
            f"Run it in batches of {BATCH_SIZE:,} rows by its {key.described}, each committed, from a DO block "
            "alone in its migration (`zdm fix` writes it)."
        )
    return claim(
        ID,
        ctx,
        f"This {o.kind.upper()} rewrites existing rows of {quoted_name(o.target)} inside the migration: each row it "
        "touches stays locked against other writes until the migration's transaction ends, and on a big table "
        "it runs as one long transaction.",
        locks,
        scans=[o.target, *o.reads],
        classification=Classification.BLOCKING,
        alternative=advice,
        table=o.target,
        fix=fix,
    )


# ---------------------------------------------------------------------------------------------- the rewrite


def batched_rewrite(
    sql: str,
    target: str,
    schema: Schema,
    batch_size: int = BATCH_SIZE,
    tree: object = None,
    *,
    own_fill: bool = False,
    postgres_version: int = 15,
) -> str:
    """`sql` (one UPDATE or DELETE on `target`) as a DO block that walks the table's key (`walk_key`) in order,
    `batch_size` keys per transaction, and runs the statement on each range of keys.

    Each row is still changed at most once, by the statement's own SET and WHERE, so the rows end the same as
    after the original, provided what a row's new value depends on does not change between batches. The
    statement therefore may not read its own table (a subquery, a self-join, a view over it, a function zdm
    cannot see into), use a value fixed per transaction (now()), or change the key being walked. Raises
    NotProvable, with the reason, for any other shape. `tree`: `sql` as the parser already read it.

    `own_fill`: `sql` is one of zdm's own fills, which leaves a row it already changed as it is and whose
    rows written while it runs need no visit (see `_page_block`): on a table without a key to walk, the block
    then walks its pages instead (PostgreSQL `PAGE_WALK_SINCE`+, `postgres_version` says which server runs it).
    A user's statement never is: a row an update moves to a page not yet walked would be changed twice.
    """
    if not sql.strip():
        raise NotProvable("it shares its statement with other changes (a WITH clause that writes)")
    statement = _parse(sql) if tree is None else _single_change(tree)
    table = statement.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise NotProvable("its target is not a plain table")
    if _key(table) != target:
        raise NotProvable("its target could not be read")
    if statement.args.get("returning"):
        raise NotProvable("it returns rows (RETURNING), which a loop would discard")
    # Walked by pages, a row an update moves ahead would be seen again: a user's statement may change it twice.
    twice = "walking its pages instead could run the statement twice on a row an update moves ahead"
    key = _key_or_pages(schema, target, None if own_fill else twice, postgres_version)
    if (
        key is not None
        and isinstance(statement, exp.Update)
        and set(key.columns) & _assigned_columns(statement)
    ):
        raise NotProvable(f"it changes the {key.described}, which the batches walk in order")
    _check_reads(statement, target, schema)
    _check_functions(statement)
    _check_names(statement)
    if key is not None and _pins_key(statement.args.get("where"), key.columns):
        raise NotProvable(f"its WHERE already picks rows by {key.described}, so it locks only those")
    return _block(sql, statement, key, batch_size)


def batched_fill(
    table: str,
    column: str,
    value_sql: str,
    schema: Schema,
    batch_size: int = BATCH_SIZE,
    *,
    checked_not_null: bool = False,
    postgres_version: int = 15,
) -> str:
    """Set `column` to `value_sql` on every row where it is NULL, as a DO block that walks the table's key
    like `batched_rewrite`: the backfill of a column added without its default. The value is the column's
    own default (evaluated per row, as PostgreSQL would have for every existing row), so unlike a user's UPDATE
    it may call any function.

    Without a key the block walks the table's pages, but only when `checked_not_null`: a `CHECK (column IS NOT
    NULL) NOT VALID` added before the fill refuses every write that leaves the column NULL, so no update can
    move a row still to fill to a page the walk has passed. Raises NotProvable otherwise."""
    missed = "walking its pages instead, a row an update moves to a page already walked would stay NULL"
    key = _key_or_pages(schema, table, None if checked_not_null else missed, postgres_version)
    if key is not None and column in key.columns:
        raise NotProvable(f"the column filled is in the {key.described} the batches walk")
    sql = (
        f"UPDATE {quoted(table)} SET {quoted_name(column)} = {value_sql} WHERE {quoted_name(column)} IS NULL"
    )
    return _block(sql, _parse(sql), key, batch_size)


def _key_or_pages(
    schema: Schema, table: str, no_page_walk: str | None, postgres_version: int
) -> WalkKey | None:
    """The key the batches walk, or None for a walk by pages. Raises NotProvable when the table has no key zdm
    knows and its pages may not be walked: `no_page_walk` says why, or the server has no TID range scans."""
    key = walk_key(schema, table)
    if key is not None:
        return key
    no_key = f"zdm knows no primary key or unique key over NOT NULL columns of {quoted_name(table)} to walk"
    if no_page_walk is not None:
        raise NotProvable(f"{no_key} ({no_page_walk})")
    model = schema.tables.get(table)
    if model is None or not model.complete or model.partitioned:
        # A partitioned table has no pages of its own: its rows sit in its partitions.
        raise NotProvable(f"{no_key}, and zdm walks the pages only of a plain table it saw created")
    if postgres_version < PAGE_WALK_SINCE:
        raise NotProvable(
            f"{no_key}, and walking its pages instead (TID range scans) needs PostgreSQL {PAGE_WALK_SINCE} "
            "or later"
        )
    return None


def _block(sql: str, tree: exp.Update | exp.Delete, key: WalkKey | None, batch_size: int) -> str:
    return (
        _page_block(sql, tree, batch_size) if key is None else _key_block(sql, tree, key.columns, batch_size)
    )


def _parse(sql: str) -> exp.Update | exp.Delete:
    try:
        trees = [t for t in _DIALECT.parse(sql) if t is not None]
    except (SqlglotError, ValueError, IndexError, TypeError, AttributeError, RecursionError):
        raise NotProvable("zdm could not parse it") from None
    if len(trees) != 1:
        raise NotProvable("it is not a single UPDATE or DELETE")
    return _single_change(trees[0])


def _single_change(tree: object) -> exp.Update | exp.Delete:
    if not isinstance(tree, (exp.Update, exp.Delete)):
        raise NotProvable("it is not a single UPDATE or DELETE")
    for nested in tree.find_all(exp.Update, exp.Delete, exp.Insert, exp.Merge):
        if nested is not tree:
            raise NotProvable("it shares its statement with other changes (a WITH clause that writes)")
    return tree


def _name(node: exp.Expression | None) -> str:
    """An identifier as PostgreSQL stores it: quoted names keep their case, unquoted ones fold to lower."""
    if isinstance(node, exp.Identifier):
        return str(node.this) if node.quoted else str(node.this).lower()
    return ""


def _key(table: exp.Table) -> str:
    db = table.args.get("db")
    return qualified(_name(table.this), _name(db) if db is not None else None)


@dataclass(frozen=True)
class WalkKey:
    """Columns whose values tell the table's rows apart and order them: the batches walk them as one row value,
    `(a, b) > (x, y) ORDER BY a, b`, which PostgreSQL compares with the key's own btree index."""

    columns: tuple[str, ...]
    primary: bool

    @property
    def described(self) -> str:
        if self.primary:
            return "primary key"
        return f"unique key ({', '.join(quoted_name(c) for c in self.columns)})"


def walk_key(schema: Schema, table: str) -> WalkKey | None:
    """The key the batches walk: the primary key, else the unique constraint or plain unique btree index with the
    fewest columns, all of them NOT NULL (a row whose key is NULL falls in no range: the walk would skip it).
    None when zdm knows none, or does not know the table whole."""
    model = schema.tables.get(table)
    if model is None or not model.complete:
        return None
    candidates: list[WalkKey] = []
    for _, constraint in sorted(model.constraints.items()):
        if constraint.kind in ("primary_key", "unique") and constraint.columns:
            candidates.append(WalkKey(constraint.columns, primary=constraint.kind == "primary_key"))
    for name, on in sorted(schema.indexes.items()):
        if on == table and name not in model.constraints:
            columns = _unique_index_columns(schema.index_trees.get(name))
            if columns:
                candidates.append(WalkKey(columns, primary=False))
    usable = [
        key
        for key in candidates
        # A renamed column leaves the constraint or index naming the old one: unknown, then.
        if all(c in model.columns and model.columns[c].not_null for c in key.columns)
    ]
    return min(usable, key=lambda key: (not key.primary, len(key.columns)), default=None)


def _unique_index_columns(tree: object) -> tuple[str, ...]:
    """The columns of a `CREATE UNIQUE INDEX` over plain columns in ascending order, with no WHERE: an index
    that orders rows as `ORDER BY` the columns does. Else ()."""
    index = tree.this if isinstance(tree, exp.Create) and tree.args.get("unique") else None
    params = index.args.get("params") if isinstance(index, exp.Index) else None
    if not isinstance(params, exp.IndexParameters) or params.args.get("where"):
        return ()
    using = params.args.get("using")
    if using is not None and str(using.name).lower() != "btree":
        return ()
    columns: list[str] = []
    for ordered in params.args.get("columns") or ():
        plain = isinstance(ordered, exp.Ordered) and isinstance(ordered.this, exp.Column)
        if not plain or ordered.args.get("desc") or ordered.args.get("nulls_first"):
            return ()
        columns.append(_name(ordered.this.this))
    return tuple(columns)


def _assigned_columns(tree: exp.Update) -> set[str]:
    names: set[str] = set()
    for assignment in tree.expressions:
        left = assignment.this if isinstance(assignment, exp.EQ) else None
        columns = left.expressions if isinstance(left, exp.Tuple) else [left]
        for column in columns:
            if not isinstance(column, exp.Column):
                raise NotProvable("zdm could not read its SET list")
            names.add(_name(column.this))
    return names


def _check_reads(tree: exp.Update | exp.Delete, target: str, schema: Schema) -> None:
    """Every relation the statement reads besides its target must be a table other than the target that zdm
    saw created, and not a temporary one (it would not outlive the migration's session). A table this migration
    creates comes first all the same: the rewrite keeps its place after it."""
    ctes = {_name(cte.args["alias"].this) for cte in tree.find_all(exp.CTE) if cte.args.get("alias")}
    for table in tree.find_all(exp.Table):
        if table is tree.this:
            continue
        if not isinstance(table.this, exp.Identifier):
            continue  # a set-returning function: judged with the other function calls
        name = _key(table)
        if (name in ctes and name != target) or name.startswith(_SYSTEM_RELATIONS):
            continue
        if name == target:
            raise NotProvable(
                f"it reads {quoted_name(target)} itself, and each batch would see the batches before it"
            )
        sources = _view_sources(schema, name)
        if target in sources:
            raise NotProvable(f"it reads the view {quoted_name(name)} over {quoted_name(target)}")
        if name not in schema.tables and not sources:
            raise NotProvable(f"it reads {quoted_name(name)}, which zdm never saw created")
        if name in schema.temporary_tables:
            raise NotProvable(
                f"it reads the temporary table {quoted_name(name)}, which would not outlive this migration's "
                "session"
            )


def _view_sources(schema: Schema, name: str) -> set[str]:
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        for source in schema.view_sources.get(current, ()):
            if source not in seen:
                seen.add(source)
                pending.append(source)
    return seen


def _check_functions(tree: exp.Expression) -> None:
    for node in tree.find_all(exp.Func):
        if isinstance(node, _TRANSACTION_TIME) or (
            isinstance(node, exp.Anonymous) and str(node.this).lower() in _TRANSACTION_TIME_NAMES
        ):
            raise NotProvable(
                "it uses the transaction's time (now(), CURRENT_TIMESTAMP), which would differ per batch"
            )
        if isinstance(node, exp.Anonymous) and str(node.this).lower() not in _PURE_BUILTINS:
            raise NotProvable(f"it calls {node.this}(), which may read the table being changed")


def _check_names(tree: exp.Expression) -> None:
    for identifier in tree.find_all(exp.Identifier):
        name = _name(identifier)
        if name in _PLPGSQL_NAMES or name.startswith(_OWN_PREFIX):
            raise NotProvable(f"it uses the name {name}, which the DO block would read as a variable")


def _pins_key(where: exp.Expression | None, key: tuple[str, ...]) -> bool:
    """WHERE holds `column = <constant>` or `column IN (<constants>)` for every column of the key, each as one
    of its top-level AND terms."""
    if not isinstance(where, exp.Where):
        return False
    terms = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    return all(_pins_column(terms, column) for column in key)


def _pins_column(terms: list[exp.Expr], column: str) -> bool:
    for term in terms:
        while isinstance(term, exp.Paren):
            term = term.this
        if isinstance(term, exp.EQ):
            sides = (term.this, term.expression)
            if any(_is_column(s, column) for s in sides) and any(isinstance(s, exp.Literal) for s in sides):
                return True
        if (
            isinstance(term, exp.In)
            and _is_column(term.this, column)
            and not term.args.get("query")
            and term.expressions
            and all(isinstance(e, exp.Literal) for e in term.expressions)
        ):
            return True
    return False


def _names_its_rows(o: op.DataChange, key: WalkKey) -> bool:
    """An UPDATE or DELETE whose WHERE picks its rows by constants on `key`, a unique key: a bounded set of rows,
    found through the key's index, whatever the table's size."""
    tree = o.tree
    if not isinstance(tree, (exp.Update, exp.Delete)):
        return False
    if any(nested is not tree for nested in tree.find_all(exp.Update, exp.Delete, exp.Insert, exp.Merge)):
        return False
    where = tree.args.get("where")
    if not isinstance(where, exp.Where):
        return False
    # Only the key's own terms: with other conditions PostgreSQL may reach the rows through another index,
    # which need not be unique.
    terms = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    return len(terms) == len(key.columns) and _pins_key(where, key.columns)


def _is_column(node: exp.Expr, column: str) -> bool:
    return isinstance(node, exp.Column) and _name(node.this) == column


@dataclass(frozen=True)
class _Target:
    """How the DO block names the statement's table, read from the statement itself."""

    statement: str  # the statement, without its semicolon
    written: str  # the table's name as written (schema-qualified when it is)
    qualifier: str  # what its columns are qualified with in the statement: its alias, else its name
    source: str  # the table in the block's own queries: `ONLY` kept


def _target(sql: str, tree: exp.Update | exp.Delete) -> _Target:
    table = tree.this
    assert isinstance(table, exp.Table)
    written = ".".join(
        part.sql(dialect="postgres")
        for part in (table.args.get("catalog"), table.args.get("db"), table.this)
        if isinstance(part, exp.Identifier)
    )
    alias = table.args.get("alias")
    return _Target(
        statement=sql.strip().rstrip(";").rstrip(),
        written=written,
        qualifier=quoted_name(_name(alias.this)) if isinstance(alias, exp.TableAlias) else written,
        source=("ONLY " if table.args.get("only") else "") + written,
    )


def _with_condition(target: _Target, tree: exp.Update | exp.Delete, condition: str) -> str:
    """The statement with `condition` added as one more term of its own WHERE: its joins and its other
    conditions stay exactly as written."""
    statement = target.statement
    where = _top_level_where(statement, expected=tree.args.get("where") is not None)
    if where is None:
        return f"{statement}\n        WHERE {condition}"
    # The closing parenthesis goes on a line of its own: the condition may end in a `--` comment.
    return f"{statement[:where]} ({statement[where:]}\n        ) AND {condition}"


def _key_block(sql: str, tree: exp.Update | exp.Delete, key: tuple[str, ...], batch_size: int) -> str:
    """The DO block that walks `key` in order (keyset pagination): each pass finds the key `batch_size` rows
    on, runs the statement on the rows between, commits, and starts again just after. A key of several
    columns is walked as one row value, each column in a variable of its own type."""
    target = _target(sql, tree)
    single = len(key) == 1

    def variables(prefix: str) -> list[str]:
        return [prefix] if single else [f"{prefix}_{number}" for number in range(1, len(key) + 1)]

    def row(items: list[str]) -> str:
        return items[0] if single else f"({', '.join(items)})"

    columns = [quoted_name(column) for column in key]
    starts, ends, picked = variables("zdm_from"), variables("zdm_to"), variables("zdm_key")
    listed, source = ", ".join(columns), target.source
    batch = f"{row([f'{target.qualifier}.{c}' for c in columns])} BETWEEN {row(starts)} AND {row(ends)}"
    declarations = "".join(
        f"    {variable} {target.written}.{column}%TYPE;\n"
        for variable, column in zip(starts + ends, columns + columns, strict=True)
    )
    aliased = ", ".join(f"{column} AS {alias}" for column, alias in zip(columns, picked, strict=True))
    descending = ", ".join(f"{alias} DESC" for alias in picked)
    tag = dollar_tag(sql)
    return (
        f"DO {tag}\n"
        "DECLARE\n"
        f"{declarations}"
        "BEGIN\n"
        f"    SELECT {listed} INTO {', '.join(starts)} FROM {source} ORDER BY {listed} LIMIT 1;\n"
        f"    WHILE {starts[0]} IS NOT NULL LOOP\n"
        f"        SELECT {', '.join(picked)} INTO {', '.join(ends)} FROM (SELECT {aliased} FROM {source} "
        f"WHERE {row(columns)} >= {row(starts)}\n"
        f"            ORDER BY {listed} LIMIT {batch_size}) AS zdm_batch ORDER BY {descending} LIMIT 1;\n"
        f"        {_with_condition(target, tree, batch)};\n"
        "        COMMIT;\n"
        f"        SELECT {listed} INTO {', '.join(starts)} FROM {source} WHERE {row(columns)} > {row(ends)} "
        f"ORDER BY {listed} LIMIT 1;\n"
        "    END LOOP;\n"
        "END\n"
        f"{tag}"
    )


def _page_block(sql: str, tree: exp.Update | exp.Delete, batch_size: int) -> str:
    """The DO block for one of zdm's own fills on a table without a key: it walks the table's pages, from the
    first to the last one it had when the block started, a range of pages per transaction, each read by a
    TID range scan.

    No row is missed: a row the fill must change exists when the block starts, so it sits in those pages, and
    stays where it is unless a write moves it, and the fill's caller sees that no write leaves a row for the
    fill to change (the online change's trigger converts it, a NOT NULL CHECK refuses it); a rewrite of the
    whole table (VACUUM FULL, CLUSTER) between two batches moves every row, so the walk starts again. A row
    the fill itself moves to a page still ahead, or one seen again after a restart, no longer matches the
    fill's WHERE (a volatile conversion, which always does, just gets another of its values).

    A range holds about `batch_size` rows at the density VACUUM and ANALYZE last measured (`pg_class`); on a
    table never measured, at the most tuples a page can hold (a batch then holds at most `batch_size` rows,
    or one page's worth)."""
    target = _target(sql, tree)
    table = "'" + target.written.replace("'", "''") + "'"
    pages = "pg_relation_size(zdm_table) / current_setting('block_size')::bigint"
    # A page holds at most (block_size - page header) / (tuple header + line pointer) tuples: 291 of 8 kB.
    most_per_page = "((current_setting('block_size')::int - 24) / 28)"
    page_range = (
        f"{target.qualifier}.ctid >= format('(%s,0)', zdm_page)::tid "
        f"AND {target.qualifier}.ctid < format('(%s,0)', zdm_page + zdm_pages_per_batch)::tid"
    )
    tag = dollar_tag(sql)
    return (
        f"DO {tag}\n"
        "DECLARE\n"
        f"    zdm_table regclass := {table}::regclass;\n"
        "    zdm_file oid := pg_relation_filenode(zdm_table);\n"
        f"    zdm_pages bigint := {pages};\n"
        "    zdm_page bigint := 0;\n"
        "    zdm_pages_per_batch bigint;\n"
        "BEGIN\n"
        "    SELECT greatest(1, CASE WHEN reltuples > 0 AND relpages > 0\n"
        f"        THEN {batch_size} * relpages / reltuples ELSE {batch_size} / {most_per_page} END)::bigint\n"
        "        INTO zdm_pages_per_batch FROM pg_class WHERE oid = zdm_table;\n"
        "    WHILE zdm_page < zdm_pages LOOP\n"
        f"        {_with_condition(target, tree, page_range)};\n"
        # Checked after the statement, whose lock keeps the table from being rewritten until the commit.
        "        IF pg_relation_filenode(zdm_table) = zdm_file THEN\n"
        "            zdm_page := zdm_page + zdm_pages_per_batch;\n"
        "        ELSE\n"
        "            zdm_file := pg_relation_filenode(zdm_table);\n"
        f"            zdm_pages := {pages};\n"
        "            zdm_page := 0;\n"
        "        END IF;\n"
        "        COMMIT;\n"
        "    END LOOP;\n"
        "END\n"
        f"{tag}"
    )


def _top_level_where(statement: str, expected: bool) -> int | None:
    """The offset just after the statement's own WHERE keyword (the one outside any parentheses)."""
    try:
        tokens = _DIALECT.tokenize(statement)
    except (SqlglotError, ValueError, IndexError):
        raise NotProvable("zdm could not read it") from None
    depth = 0
    found: list[int] = []
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif token.token_type is TokenType.WHERE and depth == 0:
            found.append(token.end + 1)
    if len(found) != (1 if expected else 0):
        raise NotProvable("zdm could not find its WHERE clause")
    return found[0] if found else None


def dollar_tag(sql: str) -> str:
    """A dollar-quote tag that does not occur in `sql`, to quote it (or a block holding it) with."""
    tag, number = "$zdm$", 0
    while tag in sql:
        number += 1
        tag = f"$zdm{number}$"
    return tag


RULE = Rule(
    id=ID,
    title="Data backfilled inside the migration",
    summary="`UPDATE`/`DELETE` on a live table in a migration holds row locks on every row it touches.",
    why=(
        "The statement runs as one transaction over the whole table: every touched row is locked against "
        "other writes until it ends, dead rows pile up, and replicas lag. Before Prisma 7.4 the whole file "
        "is one transaction, so locks taken by earlier statements are held for the whole backfill too."
    ),
    instead=(
        "Backfill in batches. `zdm fix` rewrites the statement, alone in its migration, as a `DO` block that "
        "walks the table's primary key in order (else a unique key over NOT NULL columns; a key of several "
        "columns as one row value, `(a, b) > (x, y)`) and runs the statement's own SET and WHERE on "
        f"{BATCH_SIZE:,} keys at a time, committing after each batch: at most {BATCH_SIZE:,} rows are locked at "
        "any moment, each for the milliseconds one batch takes, and a million-row table costs a thousand commits. "
        "PostgreSQL allows `COMMIT` in a `DO` block only at top level: before Prisma 7.4 a file holding only the "
        "block is sent as one statement, outside any transaction; from 7.4 each statement runs on its own. zdm "
        "writes this rewrite only where it provably leaves the same rows: a key it knows to walk, a statement "
        "that does not read its own table again (a subquery, self-join or view over it, a function zdm cannot "
        "see into), no `RETURNING`, no `now()` (each batch would get its own time), the key itself unchanged. "
        "A table without such a key is not walked by its pages (`ctid` ranges) for your statement: a row an "
        "update moves to a page still ahead would be changed twice. zdm's own fills do walk pages (PostgreSQL "
        "14+: the online column change's backfill, kept right by its trigger, and a NOT NULL volatile "
        "default's, by its CHECK), as running them twice on a row changes nothing. Otherwise, backfill the same "
        "way from a script or job, outside `migration.sql`. A statement whose WHERE names its rows by a key "
        "(`id = 'x'`, `id IN (...)`) is brief, not blocking: it reaches those rows through the key's index and "
        "locks only them."
    ),
    operations=(op.DataChange,),
    check=check,
    examples=(
        Example('UPDATE "User" SET "bio" = \'x\' WHERE "bio" IS NULL;', Classification.BLOCKING, _WITH_ROWS),
        Example('DELETE FROM "Tip" WHERE "amount" IS NULL;', Classification.BLOCKING, _WITH_ROWS),
        Example('UPDATE "User" SET "bio" = \'x\' WHERE "id" = 7;', Classification.BRIEF, _WITH_ROWS),
        Example('DELETE FROM "Tip" WHERE "id" IN (3, 4, 5);', Classification.BRIEF, _WITH_ROWS),
        # A range of keys is not a set of named rows: it grows with the table.
        Example('UPDATE "User" SET "bio" = \'x\' WHERE "id" > 40;', Classification.BLOCKING, _WITH_ROWS),
        Example(
            'INSERT INTO "Log" ("id", "message") VALUES (1, \'hello\');', Classification.SAFE, STANDARD_SETUP
        ),
    ),
)
