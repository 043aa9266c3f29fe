"""Operations: what a statement does, independent of how it was spelled or which parser read it.

One statement can hold several operations (Prisma writes `ALTER TABLE "User" DROP COLUMN "a", ADD COLUMN "b"`),
and rules judge operations one at a time. Table names are normalised by `names.table_key`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class TypeSpec:
    """A column type, normalised: `base` is PostgreSQL's canonical name (`varchar`, `int4`, `timestamptz`, or a
    user type's name), `params` its modifiers (length, precision, scale), `array_dims` the `[]` count."""

    base: str
    params: tuple[int, ...] = ()
    array_dims: int = 0
    user_defined: bool = False

    def __str__(self) -> str:
        text = self.base
        if self.params:
            text += "(" + ",".join(str(p) for p in self.params) + ")"
        return text + "[]" * self.array_dims


@dataclass(frozen=True)
class DefaultSpec:
    volatile: bool
    # The parsed expression; written back as SQL only when a message or a rewrite needs it.
    node: Any = field(default=None, compare=False, repr=False)

    @cached_property
    def sql(self) -> str:
        return str(self.node.sql(dialect="postgres")) if self.node is not None else ""


@dataclass(frozen=True)
class ForeignKeySpec:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    # The parsed REFERENCES clause (its actions, MATCH, DEFERRABLE): an online column change writes it again.
    reference: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: TypeSpec | None
    not_null: bool = False
    default: DefaultSpec | None = None
    # "identity", "stored" (GENERATED ALWAYS AS (...) STORED) or "virtual" (PostgreSQL 18's default).
    generated: str | None = None
    # The columns a generated column's expression reads (None: not known).
    generated_from: frozenset[str] | None = None
    primary_key: bool = False
    unique: bool = False
    references: ForeignKeySpec | None = None
    check: bool = False
    type_node: Any = field(default=None, compare=False, repr=False)

    @cached_property
    def type_sql(self) -> str:
        """The type as written (`VARCHAR(50)`, `"Role"`), for rewrites."""
        return str(self.type_node.sql(dialect="postgres")) if self.type_node is not None else ""

    @property
    def serial(self) -> bool:
        return self.type is not None and self.type.base in ("serial", "bigserial", "smallserial")


@dataclass(frozen=True)
class ConstraintSpec:
    name: str | None
    kind: str  # check | foreign_key | unique | primary_key | exclude | not_null
    columns: tuple[str, ...] = ()
    foreign_key: ForeignKeySpec | None = None
    # For CHECK (col IS NOT NULL): the column it proves non-null.
    not_null_column: str | None = None
    using_index: str | None = None
    # The parsed PRIMARY KEY, UNIQUE or CHECK clause, options included: a rollback adds it again from it.
    node: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Operation:
    """Base of every operation; `table` is the main table acted on, when there is one."""

    @property
    def table(self) -> str | None:
        return None


@dataclass(frozen=True)
class CreateTable(Operation):
    name: str
    columns: tuple[ColumnSpec, ...] = ()
    constraints: tuple[ConstraintSpec, ...] = ()
    # CREATE TABLE ... AS SELECT / LIKE / PARTITION OF: reads other tables.
    reads: tuple[str, ...] = ()
    # PARTITION BY: rows live in partitions, and an index on it cannot be built CONCURRENTLY.
    partitioned: bool = False
    # PARTITION OF: the partitioned table this one is a partition of.
    partition_of: str | None = None
    # TEMPORARY: gone when the session that made it ends.
    temporary: bool = False

    @property
    def table(self) -> str:
        return self.name


@dataclass(frozen=True)
class DropTable(Operation):
    name: str
    cascade: bool = False

    @property
    def table(self) -> str:
        return self.name


@dataclass(frozen=True)
class RenameTable(Operation):
    name: str
    new_name: str

    @property
    def table(self) -> str:
        return self.name


@dataclass(frozen=True)
class TableOperation(Operation):
    """An ALTER TABLE subcommand; `on` is the table."""

    on: str

    @property
    def table(self) -> str:
        return self.on


@dataclass(frozen=True)
class AddColumn(TableOperation):
    column: ColumnSpec = field(default_factory=lambda: ColumnSpec("", None))
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropColumn(TableOperation):
    column: str = ""


@dataclass(frozen=True)
class RenameColumn(TableOperation):
    column: str = ""
    new_name: str = ""


@dataclass(frozen=True)
class AlterColumnType(TableOperation):
    column: str = ""
    new_type: TypeSpec | None = None
    # False when USING is absent, or is the column itself, possibly cast (`using_casts`).
    using_expression: bool = False
    # USING "col"::a::b: the types the column is cast to before it is assigned the new type, innermost first
    # (None: a type zdm cannot read).
    using_casts: tuple[TypeSpec | None, ...] = ()


@dataclass(frozen=True)
class SetNotNull(TableOperation):
    column: str = ""


@dataclass(frozen=True)
class DropNotNull(TableOperation):
    column: str = ""


@dataclass(frozen=True)
class SetDefault(TableOperation):
    column: str = ""
    default: DefaultSpec | None = None


@dataclass(frozen=True)
class DropDefault(TableOperation):
    column: str = ""


@dataclass(frozen=True)
class AlterColumnOption(TableOperation):
    """SET STATISTICS / SET STORAGE / SET (attribute options) / SET COMPRESSION: catalog-only changes."""

    column: str = ""
    option: str = ""


@dataclass(frozen=True)
class AlterColumnIdentity(TableOperation):
    """ADD GENERATED ... AS IDENTITY, DROP IDENTITY, SET GENERATED, DROP EXPRESSION."""

    column: str = ""
    action: str = ""


@dataclass(frozen=True)
class AddConstraint(TableOperation):
    constraint: ConstraintSpec = field(default_factory=lambda: ConstraintSpec(None, "check"))
    not_valid: bool = False


@dataclass(frozen=True)
class DropConstraint(TableOperation):
    name: str = ""


@dataclass(frozen=True)
class RenameConstraint(TableOperation):
    name: str = ""
    new_name: str = ""


@dataclass(frozen=True)
class ValidateConstraint(TableOperation):
    name: str = ""


@dataclass(frozen=True)
class SetLogged(TableOperation):
    logged: bool = True


@dataclass(frozen=True)
class TableOption(TableOperation):
    """Other ALTER TABLE subcommands whose lock we know: `lock` is the mode PostgreSQL documents for it."""

    option: str = ""
    lock: str = "ACCESS_EXCLUSIVE"


@dataclass(frozen=True)
class RowLevelSecurity(TableOperation):
    action: str = ""


@dataclass(frozen=True)
class Trigger(TableOperation):
    action: str = ""  # create | drop | enable | disable
    name: str = ""


@dataclass(frozen=True)
class CreateIndex(Operation):
    name: str | None
    on: str
    unique: bool = False
    concurrently: bool = False
    columns: tuple[str, ...] = ()
    if_not_exists: bool = False
    # The parsed statement, when sqlglot read it: an online column change builds the index again on the new
    # column from it.
    tree: Any = field(default=None, compare=False, repr=False)

    @property
    def table(self) -> str:
        return self.on


@dataclass(frozen=True)
class DropIndex(Operation):
    name: str
    concurrently: bool = False
    # CASCADE also drops the foreign keys that reference the table through the index.
    cascade: bool = False


@dataclass(frozen=True)
class RenameIndex(Operation):
    name: str
    new_name: str


@dataclass(frozen=True)
class Reindex(Operation):
    target: str
    concurrently: bool = False


@dataclass(frozen=True)
class CreateEnum(Operation):
    name: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddEnumValue(Operation):
    type_name: str
    value: str
    # BEFORE / AFTER an existing value (neither: at the end): an enum's values sort in their declared order.
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class RenameEnumValue(Operation):
    type_name: str
    value: str
    new_value: str


@dataclass(frozen=True)
class RenameType(Operation):
    name: str
    new_name: str


@dataclass(frozen=True)
class DropType(Operation):
    name: str
    # CASCADE also drops every column of this type.
    cascade: bool = False


@dataclass(frozen=True)
class CreateView(Operation):
    name: str
    materialized: bool = False
    replace: bool = False
    reads: tuple[str, ...] = ()
    # The columns the query reads, as `bot.analysis.views` finds them; None: zdm cannot tell.
    columns: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class DropView(Operation):
    name: str
    materialized: bool = False


@dataclass(frozen=True)
class RefreshMaterializedView(Operation):
    name: str
    concurrently: bool = False
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class Truncate(Operation):
    names: tuple[str, ...]


@dataclass(frozen=True)
class Maintenance(Operation):
    """VACUUM [FULL], CLUSTER, ANALYZE on tables (empty `tables`: the whole database)."""

    kind: str  # vacuum | vacuum_full | cluster | analyze
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class LockTable(Operation):
    """LOCK TABLE: an explicit lock, held until the transaction ends."""

    names: tuple[str, ...]
    mode: str = "ACCESS_EXCLUSIVE"


@dataclass(frozen=True)
class DataChange(Operation):
    """INSERT / UPDATE / DELETE / MERGE / SELECT run as part of a migration."""

    kind: str  # insert | update | delete | merge | select
    target: str | None
    reads: tuple[str, ...] = ()
    has_where: bool = False
    # INSERT ... VALUES writes new rows only; it neither scans nor locks existing rows.
    values_only: bool = False
    # Inside a DO block's loop that commits on every pass: each transaction holds one batch of rows.
    batched: bool = False
    # The statement's syntax tree (sqlglot), when it was parsed into one: the backfill rewrite reads it.
    tree: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SetSetting(Operation):
    name: str
    value: str
    local: bool = False


@dataclass(frozen=True)
class TransactionControl(Operation):
    kind: str  # begin | commit | rollback


@dataclass(frozen=True)
class CatalogOnly(Operation):
    """Statements that take no lock on any table: functions, extensions, schemas, sequences, grants, comments,
    policies on new objects... `what` names it for the report."""

    what: str
    # Tables locked weakly (SHARE UPDATE EXCLUSIVE for COMMENT ON, say).
    weak_locks: tuple[tuple[str, str], ...] = ()
    # COMMENT ON INDEX or COLUMN: ("index", name) or ("column", table, column), and the text as SQL (None:
    # IS NULL, which removes it). An online column change writes them again on what it rebuilds.
    comment_on: tuple[str, ...] = ()
    comment_sql: str | None = None


@dataclass(frozen=True)
class Unrecognized(Operation):
    reason: str
    # The statement's text has constraint syntax (or cannot be read): it may have added one zdm never saw.
    may_add_constraints: bool = True
