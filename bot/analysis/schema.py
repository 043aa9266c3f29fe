"""An in-memory model of the database schema, built by replaying earlier migrations.

Rules ask it what existed before the migration under review (live tables), what a column's type was, and which
constraints are known; `apply` moves it forward one operation at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from bot.analysis import operations as op
from bot.analysis.views import ALL_COLUMNS, UNQUALIFIED


@dataclass
class Column:
    type: op.TypeSpec | None
    not_null: bool = False
    has_default: bool = False
    # The default as written (None: none, or one zdm did not see written, such as SERIAL's).
    default: op.DefaultSpec | None = None
    # The default a DROP DEFAULT of the file being analysed removed (Prisma drops an enum column's default
    # before converting it and sets it again after).
    dropped_default: op.DefaultSpec | None = None
    # SERIAL: the column owns the sequence PostgreSQL created for it (its default may have changed since).
    serial: bool = False
    # "identity", "stored" or "virtual" for generated columns.
    generated: str | None = None
    # The columns a generated column's expression reads (None: not known).
    generated_from: frozenset[str] | None = None


@dataclass
class Constraint:
    kind: str
    validated: bool = True
    not_null_column: str | None = None
    ref_table: str | None = None
    index: str | None = None
    columns: tuple[str, ...] = ()
    # A foreign key's columns in the referenced table; empty: its primary key.
    ref_columns: tuple[str, ...] = ()
    foreign_key: op.ForeignKeySpec | None = None
    # The parsed PRIMARY KEY, UNIQUE or CHECK clause, as written (`op.ConstraintSpec.node`).
    clause: object = field(default=None, compare=False, repr=False)


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    # False only for tables the model heard of without seeing their definition (e.g. a rename of an unknown).
    complete: bool = True
    # False for a table zdm heard of without seeing it created: which constraints it has is not known.
    constraints_seen: bool = True
    # Constraints the replay keeps no entry for (those of a column's own definition), by the name PostgreSQL
    # gave them; and the labels (`check`, `excl`...) of those whose name zdm cannot tell.
    unrecorded_names: set[str] = field(default_factory=set)
    unknown_names: set[str] = field(default_factory=set)
    partitioned: bool = False
    partition_of: str | None = None


@dataclass(frozen=True)
class ViewReads:
    """The columns of one table a view reads: `columns` for certain, and whether that is all of them."""

    columns: frozenset[str]
    complete: bool = True


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # index name -> table
    index_columns: dict[str, frozenset[str]] = field(default_factory=dict)  # index name -> columns it reads
    # index name -> its CREATE INDEX as parsed (indexes of constraints and of unparsed statements have none)
    index_trees: dict[str, object] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    # Enums zdm heard of without seeing them created: it knows only some of their values.
    partial_enums: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)
    materialized_views: set[str] = field(default_factory=set)
    view_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # view -> table -> the columns of it the view reads. `SELECT *` counts the columns the table had when the
    # view was created: PostgreSQL expands the star then.
    view_columns: dict[str, dict[str, ViewReads]] = field(default_factory=dict)
    # Objects created by the migration file being analysed: nothing reads them yet.
    new_objects: set[str] = field(default_factory=set)
    # Comments on indexes and columns (`("index", name)`, `("column", table, column)`), as SQL literals.
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    # Temporary tables the file being analysed made: they last only as long as its session.
    temporary_tables: set[str] = field(default_factory=set)
    # Views the file being analysed dropped (their sources stay in `view_sources`): it may create them again.
    dropped_views: set[str] = field(default_factory=set)
    # A statement zdm could not read may have added constraints it never saw (never reset).
    unread_constraints: bool = False
    # Once a partitioned table is known (never reset): until then no lock needs spreading to partitions, and
    # every claim of every statement skips the search for them.
    has_partitioned_tables: bool = False

    def __post_init__(self) -> None:
        self.has_partitioned_tables = self.has_partitioned_tables or any(
            table.partitioned for table in self.tables.values()
        )

    def begin_file(self) -> None:
        self.new_objects = set()
        self.temporary_tables = set()
        self.dropped_views = set()
        for table in self.tables.values():
            for column in table.columns.values():
                column.dropped_default = None

    def partitions_of(self, name: str) -> list[str]:
        """The partitions the migrations created of a partitioned table (others may exist in production)."""
        return sorted(t.name for t in self.tables.values() if t.partition_of == name)

    def all_partitions(self, name: str) -> list[str]:
        """Every partition below a partitioned table, partitions of partitions included, parents first."""
        model = self.tables.get(name)
        if model is None or not model.partitioned:
            return []  # most tables: no walk over every table
        found: list[str] = []
        pending = self.partitions_of(name)
        while pending:
            partition = pending.pop(0)
            if partition not in found and partition != name:
                found.append(partition)
                pending.extend(self.partitions_of(partition))
        return found

    def leaf_partitions(self, name: str) -> list[str]:
        """The partitions below a partitioned table that hold its rows (a partitioned partition holds none)."""
        return [p for p in self.all_partitions(name) if not self.partitions_of(p)]

    def is_new(self, name: str) -> bool:
        return name in self.new_objects

    def is_live(self, name: str) -> bool:
        """A table (or materialized view) that existed before this file; unknown names count as live."""
        return name not in self.new_objects

    def column(self, table: str, column: str) -> Column | None:
        model = self.tables.get(table)
        return model.columns.get(column) if model else None

    def is_indexed(self, table: str, column: str) -> bool:
        return any(
            self.indexes.get(name) == table and column in columns
            for name, columns in self.index_columns.items()
        )

    def index_table(self, index: str) -> str | None:
        return self.indexes.get(index) or self.indexes.get(index.rsplit(".", 1)[-1])

    def columns_of_type(self, type_name: str) -> list[tuple[str, str]]:
        return sorted(
            (table.name, name)
            for table in self.tables.values()
            for name, column in table.columns.items()
            if column.type is not None and column.type.base == type_name
        )

    def referencing_tables(self, table: str) -> list[str]:
        return sorted(
            other.name
            for other in self.tables.values()
            if other.name != table and any(c.ref_table == table for c in other.constraints.values())
        )

    def referenced_tables(self, table: str, column: str | None = None) -> list[str]:
        """The other tables the foreign keys of `table` reference (only those over `column`, when given)."""
        model = self.tables.get(table)
        if model is None:
            return []
        return sorted(
            {
                c.ref_table
                for c in model.constraints.values()
                if c.ref_table and c.ref_table != table and (column is None or column in c.columns)
            }
        )

    def tables_referencing_column(self, table: str, column: str) -> list[str]:
        """The other tables whose foreign keys reference `table`.`column`."""
        return sorted(
            other.name
            for other in self.tables.values()
            if other.name != table
            and any(
                c.ref_table == table and column in (c.ref_columns or self.primary_key(table))
                for c in other.constraints.values()
            )
        )

    def primary_key(self, table: str) -> tuple[str, ...]:
        model = self.tables.get(table)
        if model is None:
            return ()
        return next((c.columns for c in model.constraints.values() if c.kind == "primary_key"), ())

    def dependent_views(self, name: str) -> list[str]:
        """The views and materialized views that read `name`, and the views that read those."""
        found: list[str] = []
        pending = [name]
        while pending:
            source = pending.pop(0)
            for view, sources in self.view_sources.items():
                exists = view in self.views or view in self.materialized_views
                if exists and source in sources and view not in found and view != name:
                    found.append(view)
                    pending.append(view)
        return found

    def dropped_views_reading(self, table: str) -> list[str]:
        """The views the file being analysed dropped (and did not create again) that read `table`, or read one
        of those."""
        gone = sorted(
            v for v in self.dropped_views if v not in self.views and v not in self.materialized_views
        )
        found: list[str] = []
        pending = [table]
        while pending:
            source = pending.pop(0)
            for view in gone:
                if view not in found and source in self.view_sources.get(view, ()):
                    found.append(view)
                    pending.append(view)
        return found

    def views_reading_column(self, table: str, column: str) -> tuple[list[str], list[str]]:
        """(views that read `table`.`column` for certain, views that read `table` where zdm cannot tell which
        columns). Only views the migrations created: others may exist in production."""
        certain, possible = [], []
        for view in sorted(self.views | self.materialized_views):
            if table not in self.view_sources.get(view, ()):
                continue
            reads = self.view_columns.get(view, {}).get(table, ViewReads(frozenset(), complete=False))
            if column in reads.columns:
                certain.append(view)
            elif not reads.complete:
                possible.append(view)
        return certain, possible

    def has_valid_not_null_check(self, table: str, column: str) -> bool:
        model = self.tables.get(table)
        if model is None:
            return False
        return any(
            c.kind == "check" and c.validated and c.not_null_column == column
            for c in model.constraints.values()
        )

    def constraint(self, table: str, name: str) -> Constraint | None:
        model = self.tables.get(table)
        return model.constraints.get(name) if model else None

    def constraint_exists(self, name: str, table: str | None = None) -> bool | None:
        """Whether a constraint of this name exists on `table` (a bare name: on any table of that name), or on
        any table; None when the replay cannot tell: a table it could be on is one zdm never saw created, or
        holds a constraint PostgreSQL named in a way zdm does not reproduce, with a name like this one; or an
        earlier statement zdm could not read may have added constraints."""
        candidates = [
            model for model in self.tables.values() if table is None or model.name.rsplit(".", 1)[-1] == table
        ]
        if any(name in model.constraints for model in candidates):
            return True
        if (
            self.unread_constraints
            or not candidates
            or any(
                not model.constraints_seen
                or name in model.unrecorded_names
                or _could_be_generated(name, model.unknown_names)
                for model in candidates
            )
        ):
            return None
        return False

    def added_constraint_name(self, table: str, spec: op.ConstraintSpec) -> str | None:
        """The name a constraint added to `table` now has: its own, or the one PostgreSQL gives it (None: one
        zdm cannot tell, since it does not know every constraint of the table or the name is truncated)."""
        if spec.name:
            return spec.name
        model = self.tables.get(table)
        if model is None or not model.constraints_seen:
            return None
        name = _generated_name(model, spec)
        if name is None or name in model.unrecorded_names or _could_be_generated(name, model.unknown_names):
            return None
        return name

    # ------------------------------------------------------------------------------------------ replay

    def apply(self, operation: op.Operation) -> None:
        handler = getattr(self, "_apply_" + type(operation).__name__, None)
        if handler is not None:
            handler(operation)

    def _table(self, name: str) -> Table:
        model = self.tables.get(name)
        if model is None:
            model = self.tables[name] = Table(name, complete=False, constraints_seen=False)
        return model

    def _apply_CatalogOnly(self, o: op.CatalogOnly) -> None:
        if not o.comment_on:
            return
        if o.comment_sql is None:
            self.comments.pop(o.comment_on, None)
        else:
            self.comments[o.comment_on] = o.comment_sql

    def _apply_Unrecognized(self, o: op.Unrecognized) -> None:
        self.unread_constraints = self.unread_constraints or o.may_add_constraints

    def _apply_CreateTable(self, o: op.CreateTable) -> None:
        table = Table(o.name, partitioned=o.partitioned, partition_of=o.partition_of)
        self.has_partitioned_tables = self.has_partitioned_tables or o.partitioned
        for spec in o.columns:
            table.columns[spec.name] = _column(spec)
            _column_constraints(table, spec)
            if spec.references is not None:
                table.constraints[f"{o.name}_{spec.name}_fkey"] = Constraint(
                    "foreign_key",
                    ref_table=spec.references.ref_table,
                    columns=(spec.name,),
                    ref_columns=spec.references.ref_columns,
                    foreign_key=spec.references,
                )
        for index, constraint in enumerate(o.constraints):
            name = constraint.name or _generated_name(table, constraint)
            if name is None:
                table.unknown_names.add(_label(constraint))
                name = f"{o.name}_constraint_{index}"
            table.constraints[name] = _constraint(constraint, validated=True)
            if constraint.kind in ("primary_key", "unique"):
                self.indexes[name] = o.name
                self.index_columns[name] = frozenset(constraint.columns)
                for column in constraint.columns:
                    if constraint.kind == "primary_key" and column in table.columns:
                        table.columns[column].not_null = True
        if not o.columns and not o.constraints and o.reads:
            table.complete = False
        self.tables[o.name] = table
        self.new_objects.add(o.name)
        if o.temporary:
            self.temporary_tables.add(o.name)

    def _apply_DropTable(self, o: op.DropTable) -> None:
        if o.cascade:
            for view in self.dependent_views(o.name):
                self.views.discard(view)
                self.materialized_views.discard(view)
        self.tables.pop(o.name, None)
        self.indexes = {i: t for i, t in self.indexes.items() if t != o.name}
        # The foreign keys of other tables that referenced it are gone with it (CASCADE; without, the drop
        # fails while they exist).
        for other in self.tables.values():
            for name, constraint in list(other.constraints.items()):
                if constraint.ref_table == o.name:
                    del other.constraints[name]

    def _apply_RenameTable(self, o: op.RenameTable) -> None:
        table = self.tables.pop(o.name, None) or Table(o.new_name, complete=False, constraints_seen=False)
        table.name = o.new_name
        self.tables[o.new_name] = table
        self.indexes = {i: (o.new_name if t == o.name else t) for i, t in self.indexes.items()}
        for other in self.tables.values():
            for constraint in other.constraints.values():
                if constraint.ref_table == o.name:
                    constraint.ref_table = o.new_name
            if other.partition_of == o.name:
                other.partition_of = o.new_name
        # Views follow a renamed table: they refer to it, not to its name.
        for view, sources in self.view_sources.items():
            self.view_sources[view] = tuple(o.new_name if s == o.name else s for s in sources)
            columns = self.view_columns.get(view, {})
            if o.name in columns:
                columns[o.new_name] = columns.pop(o.name)
        if o.name in self.new_objects:
            self.new_objects.add(o.new_name)

    def _apply_AddColumn(self, o: op.AddColumn) -> None:
        self._table(o.on).columns[o.column.name] = _column(o.column)
        _column_constraints(self._table(o.on), o.column)
        if o.column.references is not None:
            self._table(o.on).constraints[f"{o.on}_{o.column.name}_fkey"] = Constraint(
                "foreign_key",
                ref_table=o.column.references.ref_table,
                columns=(o.column.name,),
                ref_columns=o.column.references.ref_columns,
                foreign_key=o.column.references,
            )

    def _apply_DropColumn(self, o: op.DropColumn) -> None:
        table = self._table(o.on)
        table.columns.pop(o.column, None)
        self.comments.pop(("column", o.on, o.column), None)
        # PostgreSQL drops the indexes and constraints of the table that involve the column with it.
        for name, constraint in list(table.constraints.items()):
            if o.column in constraint.columns:
                del table.constraints[name]
        for name, on in list(self.indexes.items()):
            if on == o.on and o.column in self.index_columns.get(name, frozenset()):
                del self.indexes[name]
                self.index_columns.pop(name, None)

    def _apply_RenameColumn(self, o: op.RenameColumn) -> None:
        table = self._table(o.on)
        column = table.columns.pop(o.column, None) or Column(None)
        table.columns[o.new_name] = column
        if ("column", o.on, o.column) in self.comments:
            self.comments[("column", o.on, o.new_name)] = self.comments.pop(("column", o.on, o.column))
        for other_column in table.columns.values():
            if other_column.generated_from and o.column in other_column.generated_from:
                other_column.generated_from = (other_column.generated_from - {o.column}) | {o.new_name}
        for constraint in table.constraints.values():
            if constraint.not_null_column == o.column:
                constraint.not_null_column = o.new_name
            constraint.columns = tuple(o.new_name if c == o.column else c for c in constraint.columns)
        for name, on in self.indexes.items():
            columns = self.index_columns.get(name, frozenset())
            if on == o.on and o.column in columns:
                self.index_columns[name] = (columns - {o.column}) | {o.new_name}
        for other in self.tables.values():
            for constraint in other.constraints.values():
                if constraint.ref_table == o.on and o.column in constraint.ref_columns:
                    constraint.ref_columns = tuple(
                        o.new_name if c == o.column else c for c in constraint.ref_columns
                    )
        for reads in self.view_columns.values():
            read = reads.get(o.on)
            if read is not None and o.column in read.columns:
                reads[o.on] = replace(read, columns=(read.columns - {o.column}) | {o.new_name})

    def _apply_AlterColumnType(self, o: op.AlterColumnType) -> None:
        column = self._table(o.on).columns.setdefault(o.column, Column(None))
        column.type = o.new_type

    def _apply_SetNotNull(self, o: op.SetNotNull) -> None:
        self._table(o.on).columns.setdefault(o.column, Column(None)).not_null = True

    def _apply_DropNotNull(self, o: op.DropNotNull) -> None:
        self._table(o.on).columns.setdefault(o.column, Column(None)).not_null = False

    def _apply_SetDefault(self, o: op.SetDefault) -> None:
        column = self._table(o.on).columns.setdefault(o.column, Column(None))
        column.has_default, column.default = True, o.default

    def _apply_DropDefault(self, o: op.DropDefault) -> None:
        column = self._table(o.on).columns.setdefault(o.column, Column(None))
        if column.default is not None:
            column.dropped_default = column.default
        column.has_default, column.default = False, None

    def _apply_AddConstraint(self, o: op.AddConstraint) -> None:
        table = self._table(o.on)
        name = o.constraint.name or _generated_name(table, o.constraint)
        if name is None:
            table.unknown_names.add(_label(o.constraint))
            name = f"{o.on}_constraint_{len(table.constraints)}"
        table.constraints[name] = _constraint(o.constraint, validated=not o.not_valid)
        if o.constraint.kind in ("primary_key", "unique"):
            self.indexes.pop(o.constraint.using_index or "", None)
            self.indexes[name] = o.on
            self.index_columns[name] = frozenset(o.constraint.columns)
            if o.constraint.kind == "primary_key":
                for column in o.constraint.columns:
                    table.columns.setdefault(column, Column(None)).not_null = True

    def _apply_DropConstraint(self, o: op.DropConstraint) -> None:
        table = self._table(o.on)
        removed = table.constraints.pop(o.name, None)
        if removed is not None and removed.kind in ("primary_key", "unique"):
            self.indexes.pop(o.name, None)

    def _apply_RenameConstraint(self, o: op.RenameConstraint) -> None:
        table = self._table(o.on)
        constraint = table.constraints.pop(o.name, None)
        if constraint is not None:
            table.constraints[o.new_name] = constraint
            if o.name in self.indexes:
                self.indexes[o.new_name] = self.indexes.pop(o.name)

    def _apply_ValidateConstraint(self, o: op.ValidateConstraint) -> None:
        constraint = self.constraint(o.on, o.name)
        if constraint is not None:
            constraint.validated = True

    def _apply_CreateIndex(self, o: op.CreateIndex) -> None:
        if o.name:
            self.indexes[o.name] = o.on
            self.index_columns[o.name] = frozenset(o.columns)
            if o.tree is not None:
                self.index_trees[o.name] = o.tree
            else:
                self.index_trees.pop(o.name, None)
            if o.on in self.new_objects:
                self.new_objects.add(o.name)

    def _apply_DropIndex(self, o: op.DropIndex) -> None:
        table = self.index_table(o.name)
        columns = self.index_columns.get(o.name) or self.index_columns.get(o.name.rsplit(".", 1)[-1])
        if o.cascade and table is not None and columns:
            # The foreign keys that reference the table through the index go with it.
            for other in self.tables.values():
                for name, constraint in list(other.constraints.items()):
                    referenced = constraint.ref_columns or self.primary_key(table)
                    if constraint.ref_table == table and frozenset(referenced) == columns:
                        del other.constraints[name]
        for name in (o.name, o.name.rsplit(".", 1)[-1]):
            self.indexes.pop(name, None)
            self.index_trees.pop(name, None)
            self.comments.pop(("index", name), None)

    def _apply_RenameIndex(self, o: op.RenameIndex) -> None:
        table = self.indexes.pop(o.name, None)
        if table is not None:
            self.indexes[o.new_name] = table
        if o.name in self.index_trees:
            self.index_trees[o.new_name] = self.index_trees.pop(o.name)
        if o.name in self.index_columns:
            self.index_columns[o.new_name] = self.index_columns.pop(o.name)
        if ("index", o.name) in self.comments:
            self.comments[("index", o.new_name)] = self.comments.pop(("index", o.name))

    def _apply_CreateEnum(self, o: op.CreateEnum) -> None:
        self.enums[o.name] = list(o.values)
        self.partial_enums.discard(o.name)
        self.new_objects.add(o.name)

    def _apply_AddEnumValue(self, o: op.AddEnumValue) -> None:
        values = self._enum(o.type_name)
        if o.value in values:
            return  # IF NOT EXISTS (without it, the statement fails)
        anchor = o.before or o.after
        if anchor is not None and anchor in values:
            values.insert(values.index(anchor) + (1 if o.after else 0), o.value)
        else:
            values.append(o.value)

    def _apply_RenameEnumValue(self, o: op.RenameEnumValue) -> None:
        values = self._enum(o.type_name)
        self.enums[o.type_name] = [o.new_value if v == o.value else v for v in values]

    def _enum(self, name: str) -> list[str]:
        if name not in self.enums:
            self.partial_enums.add(name)
        return self.enums.setdefault(name, [])

    def _apply_RenameType(self, o: op.RenameType) -> None:
        if o.name in self.enums:
            self.enums[o.new_name] = self.enums.pop(o.name)
        if o.name in self.partial_enums:
            self.partial_enums.discard(o.name)
            self.partial_enums.add(o.new_name)
        for table in self.tables.values():
            for column in table.columns.values():
                if column.type is not None and column.type.base == o.name:
                    column.type = op.TypeSpec(o.new_name, column.type.params, column.type.array_dims, True)

    def _apply_DropType(self, o: op.DropType) -> None:
        self.enums.pop(o.name, None)
        self.partial_enums.discard(o.name)

    def _apply_CreateView(self, o: op.CreateView) -> None:
        (self.materialized_views if o.materialized else self.views).add(o.name)
        self.view_sources[o.name] = o.reads
        self.view_columns[o.name] = self._columns_read(o)
        self.new_objects.add(o.name)

    def _columns_read(self, o: op.CreateView) -> dict[str, ViewReads]:
        """The columns of each table a new view reads, resolved against the tables as they are now."""
        found: dict[str, set[str]] = {table: set() for table in o.reads}
        # Tables the view may read more of than `found` says.
        unsure_of: set[str] = set(o.reads) if o.columns is None else set()

        def known_columns(table: str) -> set[str] | None:
            model = self.tables.get(table)
            return set(model.columns) if model is not None and model.complete else None

        for table, column in o.columns or ():
            if table == UNQUALIFIED:
                # An unqualified name is the column of the one table that has it; a name none has is an
                # output column's (ORDER BY "total"). A table whose columns zdm does not know may be either.
                having = [t for t in o.reads if column in (known_columns(t) or ())]
                unsure = [t for t in o.reads if known_columns(t) is None]
                if len(having) == 1 and not unsure:
                    targets, certain = having, True
                else:
                    targets, certain = having + unsure, False
            else:
                targets, certain = [table], True
            for target in targets:
                read = found.get(target)
                if read is None:
                    continue
                every = known_columns(target) if column == ALL_COLUMNS else None
                if not certain or (column == ALL_COLUMNS and every is None):
                    unsure_of.add(target)
                elif every is not None:
                    read |= every
                else:
                    read.add(column)
        return {
            table: ViewReads(frozenset(read), complete=table not in unsure_of)
            for table, read in found.items()
        }

    def _apply_DropView(self, o: op.DropView) -> None:
        if o.name in self.views or o.name in self.materialized_views:
            self.dropped_views.add(o.name)
        self.views.discard(o.name)
        self.materialized_views.discard(o.name)


# The labels PostgreSQL ends a constraint's generated name with.
_NAME_LABELS = {"foreign_key": "fkey", "unique": "key", "primary_key": "pkey", "check": "check"}


def _label(spec: op.ConstraintSpec) -> str:
    """The label PostgreSQL ends the name it gives such a constraint with (an exclusion constraint's: `excl`)."""
    return _NAME_LABELS.get(spec.kind, "excl" if spec.kind == "exclude" else spec.kind)


def _column_constraints(table: Table, spec: op.ColumnSpec) -> None:
    """Note the names PostgreSQL gives the constraints of a column's own definition (`"id" TEXT PRIMARY KEY`):
    `<table>_pkey`, `<table>_<column>_key`, `<table>_<column>_check`; their label, where it shortens them."""
    bare = table.name.rsplit(".", 1)[-1]
    kinds = {"primary_key": spec.primary_key, "unique": spec.unique, "check": spec.check}
    for kind in (kind for kind, added in kinds.items() if added):
        label = _NAME_LABELS[kind]
        name = f"{bare}_{label}" if kind == "primary_key" else f"{bare}_{spec.name}_{label}"
        if len(name.encode()) > 63 or name in table.constraints or name in table.unrecorded_names:
            table.unknown_names.add(label)
        else:
            table.unrecorded_names.add(name)


def _could_be_generated(name: str, labels: set[str]) -> bool:
    """A name PostgreSQL could have given a constraint with one of these labels (`..._check`, `..._check1`)."""
    return any(re.search(rf"_{re.escape(label)}\d*$", name) for label in labels)


def _generated_name(table: Table, spec: op.ConstraintSpec) -> str | None:
    """The name PostgreSQL gives a constraint written without one (`<table>_<columns>_fkey`, `<table>_pkey`,
    then `..._fkey1` when taken), so a later DROP CONSTRAINT by that name finds it. None when the name would
    need PostgreSQL's truncation (over 63 bytes), which zdm does not reproduce."""
    label = _NAME_LABELS.get(spec.kind)
    if label is None:
        return None
    columns = spec.foreign_key.columns if spec.foreign_key else spec.columns
    if spec.kind == "primary_key":
        columns = ()
    elif spec.kind == "check":
        # Named after the first column its expression mentions, which zdm knows only for `col IS NOT NULL`.
        if spec.not_null_column is None:
            return None
        columns = (spec.not_null_column,)
    base = "_".join((table.name.rsplit(".", 1)[-1], *columns))
    for suffix in ("", *range(1, 10)):
        name = f"{base}_{label}{suffix}"
        if len(name.encode()) > 63:
            return None
        if name not in table.constraints:
            return name
    return None


def _column(spec: op.ColumnSpec) -> Column:
    return Column(
        spec.type,
        not_null=spec.not_null or spec.primary_key,
        has_default=spec.default is not None or spec.serial or spec.generated is not None,
        default=spec.default,
        serial=spec.serial,
        generated=spec.generated,
        generated_from=spec.generated_from,
    )


def _constraint(spec: op.ConstraintSpec, validated: bool) -> Constraint:
    return Constraint(
        spec.kind,
        validated=validated,
        not_null_column=spec.not_null_column,
        ref_table=spec.foreign_key.ref_table if spec.foreign_key else None,
        index=spec.using_index,
        columns=spec.columns,
        ref_columns=spec.foreign_key.ref_columns if spec.foreign_key else (),
        foreign_key=spec.foreign_key,
        clause=spec.node,
    )
