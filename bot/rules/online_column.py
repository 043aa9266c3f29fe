"""The online column change: a type change that would rewrite a live table, written as steps that never hold a
lock that blocks reads or writes for longer than a catalog change.

Used by `change-column-type` and `enum-rebuild`. For `ALTER TABLE t ALTER COLUMN c TYPE new [USING expr]`:

1. expand (in the migration, where the statement stood): a check that fails as the original would when a view
   or rule reads `c` (the views over the table stay as they are: none reads it where the original succeeds);
   a shadow column `c_zdm_new` of the new type, and a trigger that sets it from the row's own values, through
   the statement's USING expression, on every INSERT and UPDATE; `CHECK (shadow IS NOT NULL) NOT VALID` when
   `c` is NOT NULL; foreign keys from `c` added on the shadow column `NOT VALID`.
2. backfill, alone: the project's batched DO block (`backfill.batched_rewrite`) sets the shadow column of
   every row whose value differs from the converted one, 1,000 rows per transaction, walking the table's
   primary key (or a unique key over NOT NULL columns), else, from PostgreSQL 14, its pages (the trigger,
   installed first, keeps every row written meanwhile converted); run again, it resumes.
3. rebuild, alone: VALIDATE the CHECK and the foreign keys (no lock that blocks writes), each index and
   unique or primary key index over `c` built `CONCURRENTLY` on the shadow column, then foreign keys of other
   tables that reference `c` added on the shadow column `NOT VALID` and validated.
4. swap (`Fix.after`, where the statement stood, after the file's own drops of views over the table that
   came right before it: `Fix.views_dropped_at_swap`), ONE `DO` block, so it is atomic whether Prisma runs
   the file as one transaction or statement by statement: drop the trigger and its function, the referencing
   foreign keys and the old column; rename the shadow column to `c`; SET NOT NULL (no scan: the validated
   CHECK proves it, PostgreSQL 12+); drop the CHECK; restore the default and the serial sequence's
   ownership; attach the primary key and unique constraints `USING INDEX`; give the indexes and foreign keys
   their names back. Catalog changes only: the lock is brief whatever the table's size.

The column ends last in the table (PostgreSQL cannot place a column), which nothing in Prisma depends on.
Where a step cannot be written so that the result is the original's, `online_type_change` raises
`NotOnline` with the reason, and the statement stays as written.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError

from bot.analysis import operations as op
from bot.analysis.model import Fix
from bot.analysis.schema import Column, Constraint, Schema, Table
from bot.rules.backfill import NotProvable, batched_rewrite, dollar_tag
from bot.rules.base import Context, bare, quoted, quoted_name

_DIALECT = Postgres()
_MAX_NAME = 63  # bytes: PostgreSQL's NAMEDATALEN - 1
# The swap waits at most this long for its lock (the planner's own `SET lock_timeout`); inside the block it
# holds from 7.4 too, where the migration holding a CONCURRENTLY build gets none.
_SWAP_LOCK_TIMEOUT = "5s"


# The swap drops a column and renames another to its name in one transaction: no session sees the column
# missing, so the findings for a drop or a rename the running application would notice do not apply.
_SWAP_SUPPRESSION = (
    "-- zdm:ignore drop-column,rename-column the swap of an online column change: the column keeps its name"
)


class NotOnline(Exception):
    """The change cannot be written as an online column change that ends with the original's schema."""


@dataclass
class _Plan:
    """The statements of each step, gathered while the column's dependents are read."""

    expand: list[str] = field(default_factory=list)
    validate: list[str] = field(default_factory=list)
    build: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    before_drop: list[str] = field(default_factory=list)
    after_rename: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)


def online_type_change(o: op.AlterColumnType, ctx: Context, what: str) -> Fix:
    """The online column change for `o`; `what` says in a few words what the change is, for the summary.
    Raises NotOnline with the reason when zdm cannot write one."""
    schema = ctx.schema
    table = schema.tables.get(o.on)
    column = schema.column(o.on, o.column)
    if table is None or column is None or not table.complete:
        raise NotOnline(f"zdm never saw {quoted(o.on)}.{quoted_name(o.column)} created")
    _check_table(o, ctx, table, column)
    new_type, using = _type_and_using(ctx.sql, o.column)
    shadow = _free_name(f"{o.column}_zdm_new", table.columns)
    t, c, s = quoted(o.on), quoted_name(o.column), quoted_name(shadow)
    namespace = o.on.rsplit(".", 1)[0] + "." if "." in o.on else ""
    # In the table's schema, so the trigger's function sits beside it.
    function = quoted(namespace + _fit(f"zdm_sync_{bare(o.on)}_{o.column}"))
    trigger = quoted_name(_fit(f"zdm_sync_{o.column}"))
    plan = _Plan()
    # PostgreSQL refuses the original when a view or rule reads the column, so where it succeeds none does, and
    # the views over the table stay as they are: a view depends only on the columns it reads, and the old
    # column drops from under it. Where one does (one zdm cannot read, or one production has and the
    # migrations never created), the expand fails first, as the original would, before anything is written:
    # the swap could not drop the old column under it. It leaves out the views the file dropped before the
    # change, which the planner may drop in the swap instead: the original does not see them.
    _, views = schema.views_reading_column(o.on, o.column)
    dropped = schema.dropped_views_reading(o.on)
    plan.expand.append(_fail_if_a_view_reads(o.on, o.column, dropped))
    plan.expand.append(f"ALTER TABLE {t} ADD COLUMN {s} {new_type}")
    if column.dropped_default is not None and column.dropped_default.sql:
        # Prisma drops the default before converting an enum column and sets it after the conversion: online,
        # the old column keeps it until the swap, or inserts that leave the column out would fail meanwhile.
        plan.expand.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {column.dropped_default.sql}")
    converted = using if using is not None else exp.column(o.column, quoted=True)
    tag = dollar_tag(converted.sql(dialect="postgres"))
    plan.expand.append(
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {tag}\n"
        f"BEGIN\n    NEW.{s} := {_on_new_row(converted)};\n    RETURN NEW;\nEND\n{tag}"
    )
    plan.expand.append(
        f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {function}()"
    )
    backfill = _backfill(o, ctx, shadow, new_type, converted)
    not_null = column.not_null
    if not_null:
        check = quoted_name(_free_name(f"{bare(o.on)}_{shadow}_not_null", table.constraints))
        plan.expand.append(f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({s} IS NOT NULL) NOT VALID")
        plan.validate.append(f"ALTER TABLE {t} VALIDATE CONSTRAINT {check}")
        plan.after_rename += [
            f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
            f"ALTER TABLE {t} DROP CONSTRAINT {check}",
        ]
    _default(o, column, shadow, plan)
    comment = schema.comments.get(("column", o.on, o.column))
    if comment is not None:
        # The old column's comment goes with it.
        plan.after_rename.append(f"COMMENT ON COLUMN {t}.{c} IS {comment}")
    unique_indexes = _indexes(o, schema, table, shadow, plan)
    _foreign_keys_from(o, schema, table, shadow, plan)
    _foreign_keys_to(o, schema, shadow, unique_indexes, plan)
    swap = [
        f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'",
        f"DROP TRIGGER {trigger} ON {t}",
        f"DROP FUNCTION {function}()",
        *plan.before_drop,
        f"ALTER TABLE {t} DROP COLUMN {c}",
        f"ALTER TABLE {t} RENAME COLUMN {s} TO {c}",
        *plan.after_rename,
    ]
    body = "".join(f"    {statement};\n" for statement in swap)
    swap_tag = dollar_tag(body)
    also = f" ({', '.join(plan.rebuilt)} rebuilt on it without blocking)" if plan.rebuilt else ""
    untouched = ""
    if views:
        names = ", ".join(quoted(v) for v in views)
        one = len(views) == 1
        untouched = (
            f"; {names}, which {'reads' if one else 'read'} the table, {'stays' if one else 'stay'} as "
            f"{'it is' if one else 'they are'}: the first step fails, as the type change would, if "
            f"{'it reads' if one else 'one reads'} the column"
        )
    return Fix(
        f"online column change for {what}: a shadow column {s} kept in step by a trigger{also}, filled in "
        f"batches that each commit, then swapped for the old column in one brief catalog-only step{untouched}",
        in_place=tuple(plan.expand),
        alone=(backfill, *plan.validate, *plan.build, *plan.reference),
        after=(f"DO {swap_tag}\n{_SWAP_SUPPRESSION}\nBEGIN\n{body}END\n{swap_tag}",),
        views_dropped_at_swap=tuple(dropped),
    )


def _check_table(o: op.AlterColumnType, ctx: Context, table: Table, column: Column) -> None:
    """What the swap could not carry over: refused before anything is written."""
    schema = ctx.schema
    if ctx.postgres_version < 12:
        raise NotOnline(
            "before PostgreSQL 12, SET NOT NULL reads the whole table even when a valid CHECK proves it"
        )
    if table.partitioned or table.partition_of:
        raise NotOnline("the table is partitioned, and PostgreSQL builds no index CONCURRENTLY on one")
    if column.generated is not None:
        raise NotOnline(
            f"the column is {'an identity' if column.generated == 'identity' else 'a generated'} column, "
            "which a new column cannot become without a rewrite"
        )
    for name, other in table.columns.items():
        if other.generated not in (None, "identity") and (
            other.generated_from is None or o.column in other.generated_from
        ):
            raise NotOnline(f"the generated column {quoted_name(name)} may be computed from this one")
    certain, _ = schema.views_reading_column(o.on, o.column)
    if certain:
        views = ", ".join(quoted(v) for v in certain)
        raise NotOnline(
            f"{views} {'reads' if len(certain) == 1 else 'read'} the column: PostgreSQL refuses to change its "
            "type, so the migration fails as written"
        )
    for name, constraint in table.constraints.items():
        if constraint.kind == "exclude":
            raise NotOnline(f"the table has the exclusion constraint {quoted_name(name)}")
        if constraint.kind == "check" and constraint.not_null_column is None:
            raise NotOnline(
                f"the table has the CHECK constraint {quoted_name(name)}, which may read the column; zdm "
                "does not keep its expression to write it again"
            )
        if constraint.kind == "check" and constraint.not_null_column == o.column:
            raise NotOnline(f"the CHECK constraint {quoted_name(name)} over the column would be lost")
        if constraint.kind in ("primary_key", "unique") and not constraint.columns:
            raise NotOnline(f"zdm does not know the columns of {quoted_name(name)}")


def _fail_if_a_view_reads(table: str, column: str, dropped: Collection[str]) -> str:
    """A block that raises PostgreSQL's own error for a type change under a view or rule (SQLSTATE 0A000) when
    one reads the column, found as PostgreSQL finds it: the rules (a view's or materialized view's query is
    one) that depend on the column in `pg_depend`, except the `dropped` views, which the file dropped before
    the change."""
    regclass = _literal(quoted(table))
    name = _literal(column)
    # An oid no relation has (0) for a view already gone.
    left_out = "".join(
        f"\n        AND r.ev_class <> coalesce(to_regclass({_literal(quoted(view))})::oid, 0)"
        for view in dropped
    )
    body = (
        f"-- zdm: fails, as the type change would, if a view reads {quoted_name(column)}; the views over "
        f"{quoted(table)} stay as they are\n"
        "DECLARE\n"
        "    zdm_reader text;\n"
        "BEGIN\n"
        # PostgreSQL's own detail: `rule _RETURN on view "V" depends on column "c"`.
        "    SELECT format('rule %s on %s %s depends on column \"%s\"', r.rulename,\n"
        "        CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'\n"
        "            WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END,\n"
        "        r.ev_class::regclass, a.attname)\n"
        "    INTO zdm_reader\n"
        "    FROM pg_depend d\n"
        "    JOIN pg_rewrite r ON r.oid = d.objid\n"
        "    JOIN pg_class c ON c.oid = r.ev_class\n"
        "    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid\n"
        "    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass\n"
        f"        AND d.refobjid = {regclass}::regclass AND a.attname = {name}{left_out}\n"
        "    LIMIT 1;\n"
        "    IF zdm_reader IS NOT NULL THEN\n"
        "        RAISE EXCEPTION 'cannot alter type of a column used by a view or rule'\n"
        "            USING ERRCODE = 'feature_not_supported', DETAIL = zdm_reader;\n"
        "    END IF;\n"
        "END\n"
    )
    tag = dollar_tag(body)
    return f"DO {tag}\n{body}{tag}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _type_and_using(sql: str, column: str) -> tuple[str, exp.Expression | None]:
    """The new type as written and the USING expression, from the statement itself."""
    try:
        trees = _DIALECT.parse(sql) if sql else []
        tree = trees[0] if len(trees) == 1 else None
    except (SqlglotError, ValueError, IndexError, TypeError, AttributeError, RecursionError):
        tree = None
    action = tree.args.get("actions", [None])[0] if isinstance(tree, exp.Alter) else None
    if not isinstance(action, exp.AlterColumn) or action.args.get("dtype") is None:
        raise NotOnline("zdm could not read the statement on its own")
    if action.args.get("collate"):
        raise NotOnline("it also changes the collation")
    using = action.args.get("using") or None
    if isinstance(using, exp.Expression):
        if using.find(exp.Select, exp.Subquery):
            raise NotOnline("its USING expression runs a query")
        if _only_the_column(using, column):
            using = None  # the column itself: the default conversion
    return str(action.args["dtype"].sql(dialect="postgres")), using


def _only_the_column(using: exp.Expression, column: str) -> bool:
    while isinstance(using, exp.Paren):
        using = using.this
    return isinstance(using, exp.Column) and using.name == column and not using.table


def _on_new_row(expression: exp.Expression) -> str:
    """The expression over the row being written: each column as `NEW."col"`."""
    rewritten = expression.transform(
        lambda node: exp.column(node.name, table="NEW", quoted=True) if isinstance(node, exp.Column) else node
    )
    return str(rewritten.sql(dialect="postgres")).replace('"NEW".', "NEW.")


def _backfill(
    o: op.AlterColumnType, ctx: Context, shadow: str, new_type: str, converted: exp.Expression
) -> str:
    value = str(converted.sql(dialect="postgres"))
    s = quoted_name(shadow)
    # Only rows whose shadow differs from the converted value: a backfill stopped half-way resumes where it
    # stood, and rows the trigger already set are left alone. The comparison is in the new type.
    update = (
        f"UPDATE {quoted(o.on)} SET {s} = {value} WHERE {s} IS DISTINCT FROM CAST(({value}) AS {new_type})"
    )
    try:
        # zdm's own fill, and the trigger keeps every row written meanwhile converted: without a key to walk,
        # the block may walk the table's pages.
        return batched_rewrite(update, o.on, ctx.schema, own_fill=True, postgres_version=ctx.postgres_version)
    except NotProvable as reason:
        raise NotOnline(f"the backfill cannot be batched: {reason}") from None


def _default(o: op.AlterColumnType, column: Column, shadow: str, plan: _Plan) -> None:
    t, c = quoted(o.on), quoted_name(o.column)
    sequence = ""
    if column.serial:
        # SERIAL: the sequence belongs to the column, and goes with it unless it changes owner first.
        name = f"{bare(o.on)}_{o.column}_seq"
        if len(name.encode()) > _MAX_NAME:
            raise NotOnline("zdm cannot tell the name of the column's serial sequence")
        namespace = o.on.rsplit(".", 1)[0] + "." if "." in o.on else ""
        sequence = quoted(namespace + name)
        plan.before_drop.append(f"ALTER SEQUENCE {sequence} OWNED BY {t}.{quoted_name(shadow)}")
    if column.default is not None and column.default.sql:
        # PostgreSQL converts the default to the new type as the type change would: from the old type, so the
        # default of an enum column still depends on the enum afterwards (a later `DROP TYPE ... CASCADE` drops
        # it, as it drops the original's).
        default = column.default.sql
        if column.type is not None and column.type.user_defined:
            default = f"({default})::{quoted(column.type.base)}{'[]' * column.type.array_dims}"
        plan.after_rename.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default}")
    elif column.has_default and sequence:
        plan.after_rename.append(
            f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT nextval('{sequence}'::regclass)"
        )
        plan.rebuilt.append("the serial default")
    elif column.has_default:
        raise NotOnline("zdm does not know the column's default to set it again")


def _indexes(o: op.AlterColumnType, schema: Schema, table: Table, shadow: str, plan: _Plan) -> dict[str, str]:
    """Every index PostgreSQL would drop with the old column, built again on the shadow column. Returns the
    temporary name of each unique index built for a primary key or unique constraint, by constraint name."""
    t = quoted(o.on)
    constraint_indexes: dict[str, str] = {}
    taken = set(schema.indexes)
    for name, constraint in table.constraints.items():
        if constraint.kind not in ("primary_key", "unique") or o.column not in constraint.columns:
            continue
        temporary = _free_name(f"{name}_zdm", taken)
        taken.add(temporary)
        columns = ", ".join(quoted_name(shadow if c == o.column else c) for c in constraint.columns)
        plan.build.append(f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name(temporary)} ON {t} ({columns})")
        kind = "PRIMARY KEY" if constraint.kind == "primary_key" else "UNIQUE"
        plan.after_rename.append(
            f"ALTER TABLE {t} ADD CONSTRAINT {quoted_name(name)} {kind} USING INDEX {quoted_name(temporary)}"
        )
        plan.rebuilt.append("the primary key" if constraint.kind == "primary_key" else quoted_name(name))
        _comment_again(schema, o.on, name, plan)
        constraint_indexes[name] = temporary
    for name, on in sorted(schema.indexes.items()):
        if on != o.on or name in table.constraints:
            continue
        tree = schema.index_trees.get(name)
        if not isinstance(tree, exp.Create):
            if o.column in schema.index_columns.get(name, frozenset()) or not schema.index_columns.get(name):
                raise NotOnline(f"zdm could not read the definition of the index {quoted_name(name)}")
            continue
        if not _mentions(tree, o.column):
            continue
        mentioned = {n.name for n in tree.find_all(exp.Column)} | _included(tree)
        if not mentioned <= set(table.columns):
            raise NotOnline(f"the index {quoted_name(name)} was written before a column it reads was renamed")
        temporary = _free_name(f"{name}_zdm", taken)
        taken.add(temporary)
        plan.build.append(_index_on_shadow(tree, o.on, o.column, shadow, temporary))
        namespace = o.on.rsplit(".", 1)[0] + "." if "." in o.on else ""
        plan.after_rename.append(f"ALTER INDEX {quoted(namespace + temporary)} RENAME TO {quoted_name(name)}")
        plan.rebuilt.append(quoted_name(name))
        _comment_again(schema, o.on, name, plan)
    return constraint_indexes


def _comment_again(schema: Schema, table: str, index: str, plan: _Plan) -> None:
    """A comment on a rebuilt index goes with the old index: written again on the new one."""
    comment = schema.comments.get(("index", index))
    if comment is not None:
        namespace = table.rsplit(".", 1)[0] + "." if "." in table else ""
        plan.after_rename.append(f"COMMENT ON INDEX {quoted(namespace + index)} IS {comment}")


def _mentions(tree: exp.Create, column: str) -> bool:
    return any(n.name == column for n in tree.find_all(exp.Column)) or column in _included(tree)


def _included(tree: exp.Create) -> set[str]:
    params = tree.this.args.get("params") if isinstance(tree.this, exp.Index) else None
    include = params.args.get("include") if params is not None else None
    return {str(i.this) for i in include or () if isinstance(i, exp.Identifier)}


def _index_on_shadow(tree: exp.Create, table: str, column: str, shadow: str, name: str) -> str:
    built = copy.deepcopy(tree)
    index = built.this
    assert isinstance(index, exp.Index)
    index.set("this", exp.to_identifier(name, quoted=True))
    schema_name, _, bare_name = table.rpartition(".")
    index.set(
        "table",
        exp.Table(
            this=exp.to_identifier(bare_name, quoted=True),
            db=exp.to_identifier(schema_name, quoted=True) if schema_name else None,
        ),
    )
    built.set("concurrently", True)
    built.set("exists", False)
    for node in list(built.find_all(exp.Column)):
        if node.name == column:
            node.replace(exp.column(shadow, quoted=True))
    params = index.args.get("params")
    include = params.args.get("include") if params is not None else None
    if include and params is not None:
        params.set(
            "include",
            [exp.to_identifier(shadow, quoted=True) if str(i.this) == column else i for i in include],
        )
    return str(built.sql(dialect="postgres"))


def _foreign_keys_from(o: op.AlterColumnType, schema: Schema, table: Table, shadow: str, plan: _Plan) -> None:
    """The table's foreign keys over the column: added on the shadow column NOT VALID, validated, renamed."""
    t = quoted(o.on)
    taken = set(table.constraints)
    for name, constraint in table.constraints.items():
        if constraint.kind != "foreign_key" or o.column not in constraint.columns:
            continue
        if constraint.ref_table == o.on:
            raise NotOnline(f"the foreign key {quoted_name(name)} references its own table")
        reference = _reference(constraint, name)
        temporary = _free_name(f"{name}_zdm", taken)
        taken.add(temporary)
        columns = ", ".join(quoted_name(shadow if c == o.column else c) for c in constraint.columns)
        plan.expand.append(
            f"ALTER TABLE {t} ADD CONSTRAINT {quoted_name(temporary)} FOREIGN KEY ({columns}) "
            f"{reference.sql(dialect='postgres')} NOT VALID"
        )
        plan.validate.append(f"ALTER TABLE {t} VALIDATE CONSTRAINT {quoted_name(temporary)}")
        plan.after_rename.append(
            f"ALTER TABLE {t} RENAME CONSTRAINT {quoted_name(temporary)} TO {quoted_name(name)}"
        )
        plan.rebuilt.append(quoted_name(name))
    for name, constraint in table.constraints.items():
        if constraint.ref_table == o.on and o.column in _referenced(schema, constraint):
            raise NotOnline(f"the foreign key {quoted_name(name)} of its own table references the column")


def _foreign_keys_to(
    o: op.AlterColumnType, schema: Schema, shadow: str, unique_indexes: dict[str, str], plan: _Plan
) -> None:
    """Other tables' foreign keys that reference the column: added on the shadow column (once its unique index
    exists) NOT VALID and validated, the old ones dropped in the swap and the new ones renamed."""
    changed = schema.column(o.on, o.column)
    key_of = {
        frozenset(constraint.columns): name
        for name, constraint in schema.tables[o.on].constraints.items()
        if constraint.kind in ("primary_key", "unique")
    }
    for other in schema.tables.values():
        if other.name == o.on:
            continue
        for name, constraint in other.constraints.items():
            if constraint.kind != "foreign_key" or constraint.ref_table != o.on:
                continue
            referenced = _referenced(schema, constraint)
            if o.column not in referenced:
                continue
            if other.partitioned or other.partition_of:
                raise NotOnline(f"the partitioned table {quoted(other.name)} references the column")
            if changed is not None and changed.type is not None and changed.type.user_defined:
                raise NotOnline(f"{quoted(other.name)} references the column, whose type is a user type")
            if frozenset(referenced) not in key_of or key_of[frozenset(referenced)] not in unique_indexes:
                raise NotOnline(f"zdm does not know the unique key {quoted(other.name)} references")
            options = " ".join(
                str(option) for option in _reference(constraint, name).args.get("options") or ()
            )
            target = ", ".join(quoted_name(shadow if c == o.column else c) for c in referenced)
            ref_sql = f"REFERENCES {quoted(o.on)} ({target}) {options}".rstrip()
            temporary = _free_name(f"{name}_zdm", set(other.constraints))
            o_t = quoted(other.name)
            columns = ", ".join(quoted_name(c) for c in constraint.columns)
            plan.reference += [
                f"ALTER TABLE {o_t} ADD CONSTRAINT {quoted_name(temporary)} FOREIGN KEY ({columns}) {ref_sql} "
                "NOT VALID",
                f"ALTER TABLE {o_t} VALIDATE CONSTRAINT {quoted_name(temporary)}",
            ]
            plan.before_drop.append(f"ALTER TABLE {o_t} DROP CONSTRAINT {quoted_name(name)}")
            plan.after_rename.append(
                f"ALTER TABLE {o_t} RENAME CONSTRAINT {quoted_name(temporary)} TO {quoted_name(name)}"
            )
            plan.rebuilt.append(f"{quoted(other.name)}'s {quoted_name(name)}")


def _referenced(schema: Schema, constraint: Constraint) -> tuple[str, ...]:
    return constraint.ref_columns or schema.primary_key(constraint.ref_table or "")


def _reference(constraint: Constraint, name: str) -> exp.Reference:
    reference = constraint.foreign_key.reference if constraint.foreign_key is not None else None
    if not isinstance(reference, exp.Reference):
        raise NotOnline(f"zdm does not know the definition of the foreign key {quoted_name(name)}")
    return reference


def _fit(name: str) -> str:
    """A name cut to PostgreSQL's 63 bytes (it would cut it the same way, silently)."""
    encoded = name.encode()
    return encoded[:_MAX_NAME].decode(errors="ignore") if len(encoded) > _MAX_NAME else name


def _free_name(wanted: str, taken: Collection[str]) -> str:
    """`wanted`, cut to 63 bytes, or with a number when something already has that name."""
    name = _fit(wanted)
    number = 1
    while name in taken:
        suffix = f"_{number}"
        name = _fit(wanted)[: _MAX_NAME - len(suffix)] + suffix
        number += 1
    return name


# For the rule pages (`zdm docs`): what `zdm fix` writes, and every case where the statement stays as written.
WHAT_ZDM_FIX_WRITES = """`zdm fix` writes the change as an **online column change**, in ordinary Prisma migration folders:

1. **Expand**, where the statement stood (brief locks): first a check that fails with PostgreSQL's own error
   (`cannot alter type of a column used by a view or rule`) when a view, materialized view or rule reads the
   column, found as PostgreSQL finds it (`pg_depend`), so the plan fails where the original would, before it
   writes anything, views production has and the migrations never created included. Where the original
   succeeds no view reads the column, and the views over the table stay as they are, materialized views
   with their rows and indexes: a view depends only on the columns it reads, and the old column is dropped
   from under it. Then a shadow column `<column>_zdm_new` of the new type (nullable, no default: the trigger
   fills it), and a `BEFORE INSERT OR UPDATE` trigger that sets it from the row through the statement's own
   `USING` expression (or the plain conversion); `CHECK (shadow IS NOT NULL) NOT VALID` when the column is
   NOT NULL; the column's foreign keys added on the shadow column `NOT VALID`.
2. **Backfill**, alone in its migration: zdm's batched `DO` block (see [backfill](backfill.md)) sets the
   shadow column of every row whose value differs from the converted one, 1,000 rows per transaction. It
   walks the table's primary key, or a unique key over NOT NULL columns (several columns walked as one row
   value); a table with neither (no key at all, or a primary key Prisma drops before the change and adds
   again after it) is walked by its pages, `ctid` ranges of about 1,000 rows read by TID range scans
   (PostgreSQL 14+), up to its last page when the block starts: the trigger, installed first, converts every
   row written meanwhile, and a row seen twice is left as it is. Run again after an interruption, it picks up
   where it stopped.
3. **Rebuild**, each alone: `VALIDATE` the CHECK and the foreign keys (SHARE UPDATE EXCLUSIVE: writes go on);
   every index, unique index, unique constraint's and primary key's index over the column built again
   `CONCURRENTLY` on the shadow column (expressions, `INCLUDE`, `WHERE` and sort order kept); other tables'
   foreign keys that reference the column added on the shadow column `NOT VALID`, then validated.
4. **Swap**, where the statement stood, as ONE `DO` block, so it is atomic whether Prisma runs the file as one
   transaction (before 7.4) or statement by statement (7.4+): drop the trigger and its function, the old
   referencing foreign keys and the old column; rename the shadow column; `SET NOT NULL` (no scan: the
   validated CHECK proves it, PostgreSQL 12+) and drop the CHECK; set the default again (an enum column's
   typed as the enum, so it depends on it as the converted original does; a SERIAL's sequence changes owner
   first, or it would go with the old column); attach the primary key and unique constraints
   `USING INDEX`; give every index and foreign key its name back. Only catalog changes, under a
   `lock_timeout` of 5 s: the lock is brief whatever the table's size. The file's own `DROP VIEW`s right
   before the statement, of views over the table (a file drops a view that reads the column to change it,
   and creates it again after), run in the swap's migration, right before the swap: the views stay
   readable while the backfill runs, and the file's `CREATE VIEW`s after the statement follow the swap as
   written (before Prisma 7.4 in the same transaction: no session sees a view missing).

The rest of the file follows as written (Prisma's enum renames and `DROP TYPE` after the columns are swapped).
The changed column ends last in the table: PostgreSQL cannot place a new column, and Prisma names every column
it reads, so nothing notices (zdm's schema comparisons compare columns by name); a view created later with
`SELECT *` over the table lists it last too. Writes keep going
throughout: `tests/test_online_column.py` applies the folders while three sessions insert, update and delete
rows, and checks every row holds its last write converted; `bench/online_column.py` measures it on 1 M rows."""

KEPT_AS_WRITTEN = """The statement stays as written (the finding says why) when:

- the server is older than PostgreSQL 12 (`SET NOT NULL` would read the table despite the CHECK);
- the table is partitioned or a partition (no index is built `CONCURRENTLY` on a partitioned table);
- the column is an identity or generated column, or a generated column of the table is computed from it
  (or zdm could not read what it is computed from);
- a view or materialized view reads the column, as zdm reads its query: PostgreSQL refuses the change, and
  the migration fails as written (drop the view right before the change and create it again after it: the
  online change then runs that drop in its swap);
- the table has an exclusion constraint, a CHECK constraint zdm does not keep the expression of (only
  `col IS NOT NULL` is known), or a `CHECK (col IS NOT NULL)` of the column itself;
- a primary key or unique constraint whose columns zdm does not know (attached `USING INDEX`), an index zdm
  could not read, or one written before a column it reads was renamed;
- a foreign key of the table to itself over the column, a foreign key whose definition zdm never read, a
  partitioned table referencing the column, or a foreign key referencing an enum column;
- the backfill cannot be batched: a table with no primary key or unique NOT NULL key zdm knows to walk on a
  server older than PostgreSQL 14 (no TID range scans to walk its pages by), or a `USING` that reads other
  rows (a subquery), calls a function zdm cannot see into, or uses the transaction's time (`now()`: each
  batch would get its own);
- the statement also changes the collation, or zdm does not know the column's default to set it again (or a
  SERIAL's sequence name, over 63 bytes);
- the planner cannot place it: inside the file's own `BEGIN ... COMMIT` (Prisma writes one around an enum
  rebuild; the steps that must run alone cannot), inside a `DO` block (it cannot hold the backfill between
  migrations), in a file that rolls back, or where a later statement depends on what would move.

Comments on the column and on the indexes rebuilt are written again in the swap. What the replay does not
see is not carried over: the column's statistics target, a policy or trigger of your own that names it. Check those by hand before running the plan."""
