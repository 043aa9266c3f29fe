"""The rollback plan of a migration: the SQL that undoes it, newest statement first, and what no SQL undoes.

The migration is walked forward over the schema replayed from the earlier migrations, so each inverse is read
from the state just before its statement: the column's previous type, default and nullability, the enum's
values, the definition of the index being dropped. What zdm cannot undo for certain is said, with what to do
instead (restore from a backup, review by hand); it never guesses an inverse.

What the migration does to a table it created needs no undoing: dropping the table takes its indexes,
constraints and rows with it (foreign keys to other tables it created excepted: they go first). An object it
creates and drops again leaves nothing to undo. Everything else is undone at its own place, even where a later
step of the rollback would take it anyway, since an earlier one may need its name free.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from bot.analysis import operations as op
from bot.analysis.parser import ParsedStatement, parse_statement
from bot.analysis.schema import Column, Constraint, Schema, Table
from bot.analysis.splitter import split_statements
from bot.rules.base import quoted, quoted_name

_FROM_BACKUP = "restore it from a backup taken before the deploy"
_BY_HAND = "zdm cannot tell how to undo this; review by hand"
# Longest piece of a statement quoted in a reason.
_QUOTED_STATEMENT = 80


@dataclass(frozen=True, slots=True)
class RollbackStep:
    """What undoes one operation of the migration (at `line`): `sql`, or None and `reason` saying why nothing
    can and what to do instead."""

    line: int
    sql: str | None
    reason: str = ""
    # With `sql`: what it may not give back, or when it fails.
    caution: str = ""
    # CONCURRENTLY: PostgreSQL refuses it inside a transaction block.
    outside_transaction: bool = False

    @property
    def reversible(self) -> bool:
        return self.sql is not None

    def script(self) -> str:
        """As SQL saying the line it undoes; what cannot be undone as a comment with the reason."""
        if self.sql is None:
            return f"-- line {self.line}: cannot be undone: {self.reason}"
        note = f"line {self.line}" + (" (outside a transaction)" if self.outside_transaction else "")
        return f"{self.sql};  -- {note}" + (f": {self.caution}" if self.caution else "")


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """The steps that undo a migration, in the order they run: those of its last statement first."""

    steps: tuple[RollbackStep, ...] = ()

    @property
    def complete(self) -> bool:
        """Every step has SQL: running them gives back the schema from before the migration."""
        return all(step.reversible for step in self.steps)

    @property
    def irreversible(self) -> tuple[RollbackStep, ...]:
        return tuple(step for step in self.steps if not step.reversible)

    def script(self) -> str:
        """The steps as SQL, each saying the line it undoes; what cannot be undone stays in place as a comment,
        so the order in which to deal with it shows."""
        return "\n".join(step.script() for step in self.steps)


def rollback_plan(text: str, schema: Schema) -> RollbackPlan:
    """The rollback of the migration `text`, given the schema before it (left as it is)."""
    state = copy.deepcopy(schema)
    state.begin_file()
    walk = RollbackWalk()
    for raw in split_statements(text):
        parsed = parse_statement(raw, text)
        walk.statement(raw.line_start, parsed, raw.text)
        for index, operation in enumerate(parsed.operations):
            walk.operation(operation, state, _part(parsed, index))
            state.apply(operation)
    return walk.plan()


def _part(parsed: ParsedStatement, index: int) -> str:
    parts = parsed.parts
    return parts[index] if parts is not None and index < len(parts) else ""


# An object the migration created, by its current name: ("table", t), ("column", t, c), ("constraint", t, n),
# ("index", n), ("type", t), ("view", v).
_Key = tuple[str, ...]


class RollbackWalk:
    """Works out a migration's rollback while it is walked forward: `statement` at each statement, then
    `operation` for each of its operations, with the schema just before it (the caller applies it after)."""

    def __init__(self) -> None:
        # The steps undoing each operation, in the migration's order.
        self._undo: list[list[RollbackStep]] = []
        # Objects the migration created -> the operations (indexes into `_undo`) that created and renamed them,
        # and those of what goes with them when they are dropped again.
        self._made: dict[_Key, list[int]] = {}
        self._temporary: set[str] = set()
        self._line = 0
        self._statement = ""
        self._in_block = False

    def statement(self, line: int, parsed: ParsedStatement, text: str) -> None:
        self._line, self._statement = line, text
        # What a DO block runs is decided by its code: it is undone by hand, as a whole.
        self._in_block = parsed.kind.startswith("do")
        if self._in_block:
            self._undo.append([self._cannot(f"a DO block: {_BY_HAND}")])

    def operation(self, operation: op.Operation, schema: Schema, text: str = "") -> None:
        """`text`: the operation as SQL of its own, when the statement can be cut so (quoted in reasons)."""
        if self._in_block:
            return
        undo = getattr(self, "_undo_" + type(operation).__name__, None)
        steps: list[RollbackStep] = undo(operation, schema) if undo is not None else [self._unknown()]
        self._undo.append(
            [
                self._by_hand(text or self._statement) if step.sql is None and not step.reason else step
                for step in steps
            ]
        )

    def plan(self) -> RollbackPlan:
        return RollbackPlan(tuple(step for steps in reversed(self._undo) for step in steps))

    # ------------------------------------------------------------------------------------------ bookkeeping

    def _step(self, sql: str, caution: str = "", outside_transaction: bool = False) -> RollbackStep:
        return RollbackStep(self._line, sql, caution=caution, outside_transaction=outside_transaction)

    def _cannot(self, reason: str) -> RollbackStep:
        return RollbackStep(self._line, None, reason)

    def _by_hand(self, statement: str) -> RollbackStep:
        return self._cannot(f"{_clipped(statement)}: {_BY_HAND}")

    def _unknown(self) -> RollbackStep:
        """Filled in by `operation` with the statement's text: zdm cannot tell how to undo it."""
        return RollbackStep(self._line, None)

    def _made_now(self, key: _Key, within: Sequence[_Key] = ()) -> None:
        """`within`: objects the migration created that this one goes with when they are dropped again."""
        self._made[key] = [len(self._undo)]
        for owner in within:
            if owner in self._made:
                self._made[owner].append(len(self._undo))

    def _renamed(self, old: _Key, new: _Key) -> None:
        if old in self._made:
            self._made[new] = [*self._made.pop(old), len(self._undo)]

    def _dropped(self, key: _Key) -> bool:
        """Whether the migration created what it drops: then neither the creation nor its renames (nor what
        went with it) need undoing."""
        undoing = self._made.pop(key, None)
        if undoing is None:
            return False
        for index in undoing:
            self._undo[index] = []
        return True

    def _table_made(self, table: str) -> bool:
        return ("table", table) in self._made or table in self._temporary

    def _references_made(self, table: str, reference: op.ForeignKeySpec | None, schema: Schema) -> bool:
        """A foreign key to another table the migration created, or to a table it added a column, an index or a
        key to (which the foreign key may reference or need): dropped before what it needs is, at its own place
        in the rollback, even where dropping its own table or column would take it (the rollback drops what the
        migration created last first, and Prisma adds the foreign keys after everything else)."""
        if reference is None or reference.ref_table == table:
            return False
        target = reference.ref_table
        return self._table_made(target) or any(
            (key[0] == "index" and schema.indexes.get(key[1]) == target)
            or (key[0] in ("column", "constraint") and key[1] == target)
            for key in self._made
        )

    def _column_made(self, table: str, column: str) -> bool:
        return self._table_made(table) or ("column", table, column) in self._made

    # ------------------------------------------------------------------------------------------ tables

    def _undo_CreateTable(self, o: op.CreateTable, schema: Schema) -> list[RollbackStep]:
        if o.temporary:
            self._temporary.add(o.name)  # gone when its session ends
            return []
        if o.name in schema.tables:
            return []  # it existed: IF NOT EXISTS did nothing
        self._made_now(("table", o.name))
        return [self._step(f"DROP TABLE {quoted(o.name)}")]

    def _undo_DropTable(self, o: op.DropTable, schema: Schema) -> list[RollbackStep]:
        if o.name in self._temporary or self._dropped(("table", o.name)):
            return []
        cascade = " (and what CASCADE dropped with it)" if o.cascade else ""
        return [
            self._cannot(
                f"DROP TABLE {quoted(o.name)}: its rows are gone; restore the table{cascade} from a backup taken "
                "before the deploy"
            )
        ]

    def _undo_RenameTable(self, o: op.RenameTable, schema: Schema) -> list[RollbackStep]:
        if o.name in self._temporary:
            self._temporary = (self._temporary - {o.name}) | {o.new_name}
            return []
        self._renamed(("table", o.name), ("table", o.new_name))
        for key in [k for k in self._made if k[0] in ("column", "constraint") and k[1] == o.name]:
            self._made[(key[0], o.new_name, *key[2:])] = self._made.pop(key)
        return [
            self._step(
                f"ALTER TABLE {quoted(_in_namespace_of(o.name, o.new_name))} RENAME TO {_bare(o.name)}"
            )
        ]

    def _undo_Truncate(self, o: op.Truncate, schema: Schema) -> list[RollbackStep]:
        live = [name for name in o.names if not self._table_made(name)]
        if not live:
            return []
        return [
            self._cannot(
                f"TRUNCATE {_names(live)}: the rows are gone; restore them from a backup taken before the deploy"
            )
        ]

    # ------------------------------------------------------------------------------------------ columns

    def _undo_AddColumn(self, o: op.AddColumn, schema: Schema) -> list[RollbackStep]:
        if self._table_made(o.on) and not self._references_made(o.on, o.column.references, schema):
            return []
        if o.if_not_exists and schema.column(o.on, o.column.name) is not None:
            return []
        self._made_now(("column", o.on, o.column.name), within=[("table", o.on)])
        return [self._step(f"ALTER TABLE {quoted(o.on)} DROP COLUMN {quoted_name(o.column.name)}")]

    def _undo_DropColumn(self, o: op.DropColumn, schema: Schema) -> list[RollbackStep]:
        if self._dropped(("column", o.on, o.column)) or self._table_made(o.on):
            return []
        return [
            self._cannot(f"DROP COLUMN {_column(o.on, o.column)}: the column's data is gone; {_FROM_BACKUP}")
        ]

    def _undo_RenameColumn(self, o: op.RenameColumn, schema: Schema) -> list[RollbackStep]:
        if self._table_made(o.on) and ("column", o.on, o.column) not in self._made:
            return []
        self._renamed(("column", o.on, o.column), ("column", o.on, o.new_name))
        return [
            self._step(
                f"ALTER TABLE {quoted(o.on)} RENAME COLUMN {quoted_name(o.new_name)} TO {quoted_name(o.column)}"
            )
        ]

    def _undo_AlterColumnType(self, o: op.AlterColumnType, schema: Schema) -> list[RollbackStep]:
        # A column of a type the migration created keeps that type from being dropped: changed back first.
        if self._column_made(o.on, o.column) and not (
            o.new_type is not None and ("type", o.new_type.base) in self._made
        ):
            return []
        what = f"ALTER COLUMN {_column(o.on, o.column)} TYPE {o.new_type or '...'}"
        if o.using_expression:
            return [
                self._cannot(
                    f"{what}: its USING expression computed the new values and zdm cannot compute the old ones "
                    "back; write the reverse conversion by hand, or restore the column from a backup taken "
                    "before the deploy"
                )
            ]
        column = schema.column(o.on, o.column)
        previous = column.type if column is not None else None
        if previous is None:
            return [self._cannot(f"{what}: zdm does not know the column's previous type; review by hand")]
        if previous == o.new_type:
            return []
        written = _type_sql(previous, schema)
        if written is None:
            return [
                self._cannot(
                    f"{what}: zdm cannot write the column's previous type ({previous}); review by hand"
                )
            ]
        alter = f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted_name(o.column)}"
        using = _using(o.column, o.new_type, previous, written)
        caution = ""
        if o.new_type is None or not _holds(previous, o.new_type, schema):
            rounds = o.new_type is not None and any(
                previous.base in family and o.new_type.base in family for family in (_NUMBERS, _TIMES)
            )
            caution = (
                f"values written since the deploy may not fit {written}: the change back fails on them"
                + (", or rounds them" if rounds else "")
            )
        change = self._step(f"{alter} SET DATA TYPE {written}{using}", caution=caution)
        if not using or column is None or not column.has_default:
            return [change]
        # PostgreSQL converts a default with an assignment cast, which conversions needing USING lack: the
        # default goes first, and the one from before the statement comes back after.
        default = _default_sql(column)
        if not default:
            return [
                self._step(
                    change.sql or "",
                    caution=f"{caution + '; ' if caution else ''}PostgreSQL may refuse to convert the column's "
                    "default: drop it first, and set the previous one again after",
                )
            ]
        return [self._step(f"{alter} DROP DEFAULT"), change, self._step(f"{alter} SET DEFAULT {default}")]

    def _undo_SetNotNull(self, o: op.SetNotNull, schema: Schema) -> list[RollbackStep]:
        if self._column_made(o.on, o.column):
            return []
        column = schema.column(o.on, o.column)
        if column is None:
            return [self._unknown()]
        if column.not_null:
            return []
        return [self._step(f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted_name(o.column)} DROP NOT NULL")]

    def _undo_DropNotNull(self, o: op.DropNotNull, schema: Schema) -> list[RollbackStep]:
        if self._column_made(o.on, o.column):
            return []
        column = schema.column(o.on, o.column)
        if column is None:
            return [self._unknown()]
        if not column.not_null:
            return []
        return [
            self._step(
                f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted_name(o.column)} SET NOT NULL",
                caution="scans the table under ACCESS EXCLUSIVE, and fails if rows written since the deploy hold NULL",
            )
        ]

    def _undo_SetDefault(self, o: op.SetDefault, schema: Schema) -> list[RollbackStep]:
        return self._default_back(o.on, o.column, schema)

    def _undo_DropDefault(self, o: op.DropDefault, schema: Schema) -> list[RollbackStep]:
        return self._default_back(o.on, o.column, schema)

    def _default_back(self, table: str, column_name: str, schema: Schema) -> list[RollbackStep]:
        """The column's default as it was before the statement: set again, or dropped."""
        if self._column_made(table, column_name):
            return []
        column = schema.column(table, column_name)
        if column is None:
            return [self._unknown()]
        alter = f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted_name(column_name)}"
        previous = _default_sql(column)
        if previous:
            return [self._step(f"{alter} SET DEFAULT {previous}")]
        if column.has_default:
            # SERIAL's nextval() of the sequence PostgreSQL named, or a default zdm did not see written.
            return [
                self._cannot(
                    f"the default of {_column(table, column_name)}: zdm does not know the previous default; set it "
                    "again by hand (`pg_get_expr` of its pg_attrdef row in a backup shows it)"
                )
            ]
        return [self._step(f"{alter} DROP DEFAULT")]

    # ------------------------------------------------------------------------------------------ constraints

    def _undo_AddConstraint(self, o: op.AddConstraint, schema: Schema) -> list[RollbackStep]:
        spec = o.constraint
        name = schema.added_constraint_name(o.on, spec)
        # Dropping a table drops its constraints; dropping a column the migration added, those over it. The
        # constraint is dropped at its own place all the same (only the table's drop may stand for it): it may
        # hold a name, or be the primary key, that undoing an earlier statement needs free.
        columns = spec.foreign_key.columns if spec.foreign_key else spec.columns
        over = (*columns, *((spec.not_null_column,) if spec.not_null_column else ()))
        within: list[_Key] = [("table", o.on), *(("column", o.on, c) for c in over)]
        if self._table_made(o.on) and not self._references_made(o.on, spec.foreign_key, schema):
            if name is not None:
                self._made_now(("constraint", o.on, name), within=within)
            return []
        if name is None:
            return [
                self._cannot(
                    f"ADD CONSTRAINT on {quoted(o.on)}: PostgreSQL named the constraint and zdm cannot tell the "
                    "name; find it in pg_constraint and drop it"
                )
            ]
        # It also goes with the table it references, when the migration drops that table again (CASCADE).
        referenced: list[_Key] = [("table", spec.foreign_key.ref_table)] if spec.foreign_key else []
        self._made_now(("constraint", o.on, name), within=[*within, *referenced])
        steps = [self._step(f"ALTER TABLE {quoted(o.on)} DROP CONSTRAINT {quoted_name(name)}")]
        if spec.kind == "primary_key":
            # A primary key made its columns NOT NULL, and dropping it leaves them so.
            for column_name in spec.columns:
                column = schema.column(o.on, column_name)
                if column is None:
                    steps.append(
                        self._cannot(
                            f"the primary key made {_column(o.on, column_name)} NOT NULL, and zdm does not know "
                            "whether it was before; drop NOT NULL by hand if it was not"
                        )
                    )
                elif not column.not_null:
                    steps.append(
                        self._step(
                            f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted_name(column_name)} DROP NOT NULL"
                        )
                    )
        index = spec.using_index
        if index and not self._dropped(("index", index)):
            # The index the constraint was made from became the constraint's, and goes with it.
            again = _index_again(index, schema)
            steps.append(
                self._step(again[0], outside_transaction=again[1])
                if again is not None
                else self._cannot(
                    f"dropping the constraint {quoted_name(name)} drops the index {quoted_name(index)} it was "
                    "made from; zdm does not know that index's definition: create it again by hand"
                )
            )
        return steps

    def _undo_DropConstraint(self, o: op.DropConstraint, schema: Schema) -> list[RollbackStep]:
        if self._dropped(("constraint", o.on, o.name)) or self._table_made(o.on):
            return []
        constraint = schema.constraint(o.on, o.name)
        what = f"DROP CONSTRAINT {quoted_name(o.name)} on {quoted(o.on)}"
        if constraint is None:
            return [
                self._cannot(
                    f"{what}: zdm does not know its definition; add it again as the migration that created it did"
                )
            ]
        t, name = quoted(o.on), quoted_name(o.name)
        definition = _constraint_sql(constraint, schema.tables.get(o.on))
        if definition is None:
            return [
                self._cannot(
                    f"{what}: zdm does not know the {constraint.kind.replace('_', ' ')} constraint's definition "
                    "as it is now; add it again as the migration that created it did"
                )
            ]
        if constraint.kind in ("primary_key", "unique"):
            return [
                self._step(
                    f"ALTER TABLE {t} ADD CONSTRAINT {name} {definition}",
                    caution="builds its index under ACCESS EXCLUSIVE, and fails if rows written since the deploy "
                    "break it",
                )
            ]
        # NOT VALID, then VALIDATE: the check of the existing rows does not block writes.
        steps = [self._step(f"ALTER TABLE {t} ADD CONSTRAINT {name} {definition} NOT VALID")]
        if constraint.validated:
            steps.append(
                self._step(
                    f"ALTER TABLE {t} VALIDATE CONSTRAINT {name}",
                    caution="fails if rows written since the deploy break it",
                )
            )
        return steps

    def _undo_RenameConstraint(self, o: op.RenameConstraint, schema: Schema) -> list[RollbackStep]:
        if self._table_made(o.on) and ("constraint", o.on, o.name) not in self._made:
            return []
        self._renamed(("constraint", o.on, o.name), ("constraint", o.on, o.new_name))
        return [
            self._step(
                f"ALTER TABLE {quoted(o.on)} RENAME CONSTRAINT {quoted_name(o.new_name)} TO {quoted_name(o.name)}"
            )
        ]

    def _undo_ValidateConstraint(self, o: op.ValidateConstraint, schema: Schema) -> list[RollbackStep]:
        # Validation changes no row and nothing the application sees: a validated constraint is left so.
        return []

    # ------------------------------------------------------------------------------------------ indexes

    def _undo_CreateIndex(self, o: op.CreateIndex, schema: Schema) -> list[RollbackStep]:
        if self._table_made(o.on):
            if o.name is not None:
                self._made_now(("index", o.name), within=[("table", o.on)])
            return []
        if o.name is None:
            return [
                self._cannot(
                    f"CREATE INDEX on {quoted(o.on)}: PostgreSQL named the index and zdm cannot tell the name; "
                    "find it in pg_indexes and drop it"
                )
            ]
        if o.name in schema.indexes:
            return []  # it existed: IF NOT EXISTS did nothing
        # Dropping a column the migration added drops the indexes over it.
        self._made_now(("index", o.name), within=[("column", o.on, c) for c in o.columns])
        name = _index_name(o.on, o.name)
        if _partitioned(schema, o.on):
            # PostgreSQL cannot drop a partitioned table's index CONCURRENTLY.
            return [self._step(f"DROP INDEX {name}")]
        return [self._step(f"DROP INDEX CONCURRENTLY {name}", outside_transaction=True)]

    def _undo_DropIndex(self, o: op.DropIndex, schema: Schema) -> list[RollbackStep]:
        what = f"DROP INDEX {_written_index(o.name)}"
        bare = _known_index(o.name, schema)
        if bare is None:
            return [
                self._cannot(
                    f"{what}: zdm never saw the index created, so it does not know its definition; if it existed, "
                    "create it again (CONCURRENTLY) as it was"
                )
            ]
        table = schema.indexes[bare]
        if self._dropped(("index", bare)) or self._table_made(table):
            return []
        if o.cascade and schema.referencing_tables(table):
            return [
                self._cannot(
                    f"{what} CASCADE: it also dropped the foreign keys that reference {quoted(table)} through it; "
                    "create the index and the foreign keys again as the migrations that created them did"
                )
            ]
        tree = schema.index_trees.get(bare)
        again = _index_again(bare, schema)
        if again is None:
            why = (
                "a column it reads was renamed since it was created"
                if isinstance(tree, exp.Create)
                else "zdm does not know the index's definition"
            )
            return [self._cannot(f"{what}: {why}; create it again (CONCURRENTLY) as it was")]
        unique = isinstance(tree, exp.Create) and bool(tree.args.get("unique"))
        steps = [
            self._step(
                again[0],
                caution="fails if rows written since the deploy break its uniqueness" if unique else "",
                outside_transaction=again[1],
            )
        ]
        comment = schema.comments.get(("index", bare))
        if comment is not None:
            steps.append(self._step(f"COMMENT ON INDEX {_index_name(table, bare)} IS {comment}"))
        return steps

    def _undo_RenameIndex(self, o: op.RenameIndex, schema: Schema) -> list[RollbackStep]:
        bare = _known_index(o.name, schema)
        table = schema.indexes.get(bare or "")
        if table is not None and self._table_made(table):
            return []
        if table is None and "." in o.name:
            # `a.b`: an index `b` of schema `a`, or Prisma 2's `Table.column_unique`; zdm cannot tell which.
            return [self._unknown()]
        old = bare or o.name
        self._renamed(("index", old), ("index", o.new_name))
        return [
            self._step(f"ALTER INDEX {_index_name(table or '', o.new_name)} RENAME TO {quoted_name(old)}")
        ]

    def _undo_Reindex(self, o: op.Reindex, schema: Schema) -> list[RollbackStep]:
        return []

    # ------------------------------------------------------------------------------------------ types

    def _undo_CreateEnum(self, o: op.CreateEnum, schema: Schema) -> list[RollbackStep]:
        self._made_now(("type", o.name))
        return [self._step(f"DROP TYPE {quoted(o.name)}")]

    def _undo_AddEnumValue(self, o: op.AddEnumValue, schema: Schema) -> list[RollbackStep]:
        if ("type", o.type_name) in self._made or o.value in schema.enums.get(o.type_name, ()):
            return []
        value = _literal(o.value)
        return [
            self._cannot(
                f"ALTER TYPE {quoted(o.type_name)} ADD VALUE {value}: PostgreSQL cannot take a value out of an "
                "enum; undoing it means rebuilding the enum without it (a new type, each column converted to it, "
                f"the old type dropped) once no row holds {value}"
            )
        ]

    def _undo_RenameEnumValue(self, o: op.RenameEnumValue, schema: Schema) -> list[RollbackStep]:
        if ("type", o.type_name) in self._made:
            return []
        return [
            self._step(
                f"ALTER TYPE {quoted(o.type_name)} RENAME VALUE {_literal(o.new_value)} TO {_literal(o.value)}"
            )
        ]

    def _undo_RenameType(self, o: op.RenameType, schema: Schema) -> list[RollbackStep]:
        self._renamed(("type", o.name), ("type", o.new_name))
        return [
            self._step(f"ALTER TYPE {quoted(_in_namespace_of(o.name, o.new_name))} RENAME TO {_bare(o.name)}")
        ]

    def _undo_DropType(self, o: op.DropType, schema: Schema) -> list[RollbackStep]:
        if self._dropped(("type", o.name)):
            return []
        columns = schema.columns_of_type(o.name)
        if columns:
            names = ", ".join(_column(table, column) for table, column in columns)
            return [
                self._cannot(
                    f"DROP TYPE {quoted(o.name)}{' CASCADE' if o.cascade else ''}: the columns of that type "
                    f"({names}) and their data are gone; restore them from a backup taken before the deploy"
                )
            ]
        if o.cascade:
            return [
                self._cannot(
                    f"DROP TYPE {quoted(o.name)} CASCADE: it also dropped what used the type (defaults, views, "
                    "functions), which zdm cannot list for certain; restore them from a backup taken before the "
                    "deploy"
                )
            ]
        values = schema.enums.get(o.name)
        if values is None or o.name in schema.partial_enums:
            return [
                self._cannot(
                    f"DROP TYPE {quoted(o.name)}: zdm does not know the type's definition; create it again as the "
                    "migration that created it did"
                )
            ]
        # No column holds it any more (PostgreSQL refuses the drop otherwise): a type without data comes back
        # whole from its values, in their order.
        return [
            self._step(f"CREATE TYPE {quoted(o.name)} AS ENUM ({', '.join(_literal(v) for v in values)})")
        ]

    # ------------------------------------------------------------------------------------------ views

    def _undo_CreateView(self, o: op.CreateView, schema: Schema) -> list[RollbackStep]:
        kind = "MATERIALIZED VIEW" if o.materialized else "VIEW"
        if o.name in schema.views or o.name in schema.materialized_views:
            return [
                self._cannot(
                    f"CREATE OR REPLACE {kind} {quoted(o.name)}: zdm does not keep the view's previous "
                    "definition; create it again as the migration that created it did"
                )
            ]
        self._made_now(("view", o.name))
        return [self._step(f"DROP {kind} {quoted(o.name)}")]

    def _undo_DropView(self, o: op.DropView, schema: Schema) -> list[RollbackStep]:
        if self._dropped(("view", o.name)):
            return []
        kind = "MATERIALIZED VIEW" if o.materialized else "VIEW"
        refresh = " and refresh it" if o.materialized else ""
        return [
            self._cannot(
                f"DROP {kind} {quoted(o.name)}: zdm does not keep view definitions; create it again as the "
                f"migration that created it did{refresh}"
            )
        ]

    def _undo_RefreshMaterializedView(
        self, o: op.RefreshMaterializedView, schema: Schema
    ) -> list[RollbackStep]:
        return []  # its rows are computed from other tables

    # ------------------------------------------------------------------------------------------ rows

    def _undo_DataChange(self, o: op.DataChange, schema: Schema) -> list[RollbackStep]:
        if o.kind == "select":
            return []
        if o.target is None:
            return [self._unknown()]
        if self._table_made(o.target) or (o.kind == "update" and self._sets_only_new_columns(o)):
            return []  # the rows or columns it writes go with the table or columns the migration created
        target = quoted(o.target)
        if o.kind == "insert":
            return [
                self._cannot(
                    f"INSERT INTO {target}: zdm cannot tell which rows to take out again; delete them by hand"
                )
            ]
        if o.kind == "delete":
            return [
                self._cannot(
                    f"DELETE FROM {target}: the deleted rows are gone; restore them from a backup taken before "
                    "the deploy"
                )
            ]
        return [
            self._cannot(
                f"{o.kind.upper()} {target}: the rows' previous values are not kept; restore them from a backup "
                "taken before the deploy, or write the reverse change by hand"
            )
        ]

    def _sets_only_new_columns(self, o: op.DataChange) -> bool:
        """An UPDATE that sets only columns the migration added (a backfill of a new column)."""
        if not isinstance(o.tree, exp.Update) or o.target is None:
            return False
        targets = [assignment.this for assignment in o.tree.expressions if isinstance(assignment, exp.EQ)]
        return bool(targets) and all(
            isinstance(column, exp.Column) and ("column", o.target, _identifier(column.this)) in self._made
            for column in targets
        )

    # ------------------------------------------------------------------------------------------ the rest

    def _undo_Trigger(self, o: op.Trigger, schema: Schema) -> list[RollbackStep]:
        if self._table_made(o.on):
            return []
        if o.action == "create" and o.name:
            return [self._step(f"DROP TRIGGER {quoted_name(o.name)} ON {quoted(o.on)}")]
        return [self._unknown()]

    def _undo_CatalogOnly(self, o: op.CatalogOnly, schema: Schema) -> list[RollbackStep]:
        if o.comment_on:
            return self._comment_back(o.comment_on, schema)
        if o.weak_locks and all(self._table_made(table) for table, _ in o.weak_locks):
            return []
        return [self._unknown()]

    def _comment_back(self, target: tuple[str, ...], schema: Schema) -> list[RollbackStep]:
        """A comment on an index or a column, as it was (the replay keeps those)."""
        if target[0] == "column" and len(target) == 3:
            _, table, column = target
            if self._column_made(table, column):
                return []
            previous = schema.comments.get(target, "NULL")
            return [self._step(f"COMMENT ON COLUMN {_column(table, column)} IS {previous}")]
        index = _known_index(target[1], schema)
        on = schema.indexes.get(index or "")
        if index is None or on is None:
            return [self._unknown()]
        if self._table_made(on) or ("index", index) in self._made:
            return []
        was = schema.comments.get(("index", index), "NULL")
        return [self._step(f"COMMENT ON INDEX {_index_name(on, index)} IS {was}")]

    def _undo_SetSetting(self, o: op.SetSetting, schema: Schema) -> list[RollbackStep]:
        return []  # a setting of the migration's own session

    def _undo_TransactionControl(self, o: op.TransactionControl, schema: Schema) -> list[RollbackStep]:
        return []

    def _undo_Maintenance(self, o: op.Maintenance, schema: Schema) -> list[RollbackStep]:
        # VACUUM and ANALYZE leave rows and schema as they were; CLUSTER marks an index, which zdm does not replay.
        return [self._unknown()] if o.kind == "cluster" else []

    def _undo_LockTable(self, o: op.LockTable, schema: Schema) -> list[RollbackStep]:
        return []

    def _undo_Unrecognized(self, o: op.Unrecognized, schema: Schema) -> list[RollbackStep]:
        return [self._unknown()]

    def _table_options(self, o: op.TableOperation) -> list[RollbackStep]:
        # The table's options, storage, identity and row security are not replayed: zdm cannot tell them back.
        return [] if self._table_made(o.on) else [self._unknown()]

    def _undo_AlterColumnOption(self, o: op.AlterColumnOption, schema: Schema) -> list[RollbackStep]:
        return self._table_options(o)

    def _undo_AlterColumnIdentity(self, o: op.AlterColumnIdentity, schema: Schema) -> list[RollbackStep]:
        return self._table_options(o)

    def _undo_TableOption(self, o: op.TableOption, schema: Schema) -> list[RollbackStep]:
        return self._table_options(o)

    def _undo_SetLogged(self, o: op.SetLogged, schema: Schema) -> list[RollbackStep]:
        return self._table_options(o)

    def _undo_RowLevelSecurity(self, o: op.RowLevelSecurity, schema: Schema) -> list[RollbackStep]:
        return self._table_options(o)


# ---------------------------------------------------------------------------------------------- SQL


def _bare(name: str) -> str:
    """A table or type key's name without its schema, as SQL (what RENAME TO takes)."""
    return quoted_name(name.rsplit(".", 1)[-1])


def _in_namespace_of(old: str, new: str) -> str:
    """A renamed table's or type's key: RENAME TO keeps the schema, whether or not the new name says it."""
    if "." in old and "." not in new:
        return f"{old.rsplit('.', 1)[0]}.{new}"
    return new


def _column(table: str, column: str) -> str:
    return f"{quoted(table)}.{quoted_name(column)}"


def _names(tables: list[str]) -> str:
    return ", ".join(quoted(t) for t in tables)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(node: exp.Expression) -> str:
    """As PostgreSQL stores it: quoted names keep their case, unquoted ones fold to lower."""
    if isinstance(node, exp.Identifier):
        return str(node.this) if node.quoted else str(node.this).lower()
    return node.name


def _clipped(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= _QUOTED_STATEMENT else text[: _QUOTED_STATEMENT - 1] + "…"


def _index_name(table: str, index: str) -> str:
    """An index's name as SQL: in its table's schema (an index name itself may hold a dot, as Prisma 2's did)."""
    namespace = table.rsplit(".", 1)[0] if "." in table else ""
    return (quoted_name(namespace) + "." if namespace else "") + quoted_name(index)


def _written_index(name: str) -> str:
    return quoted(name) if "." in name else quoted_name(name)


def _known_index(name: str, schema: Schema) -> str | None:
    """The replay's (bare) name of the index a statement names, `s.idx` or `idx`; None when it is not known."""
    if name in schema.indexes:
        return name
    bare = name.rsplit(".", 1)[-1]
    return bare if bare in schema.indexes else None


def _partitioned(schema: Schema, table: str) -> bool:
    model = schema.tables.get(table)
    return model is not None and model.partitioned


def _index_again(name: str, schema: Schema) -> tuple[str, bool] | None:
    """The CREATE INDEX that builds a known index again under its current name, on its table's current name,
    CONCURRENTLY where PostgreSQL allows it; and whether it must run outside a transaction. None when zdm did
    not read the index's definition, or a column it reads was renamed since (the definition names the old one)."""
    tree = schema.index_trees.get(name)
    table = schema.indexes.get(name)
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Index) or table is None:
        return None
    written = {_identifier(c.this) for c in tree.find_all(exp.Column) if isinstance(c.this, exp.Identifier)}
    if written != set(schema.index_columns.get(name, frozenset())):
        return None
    built = copy.deepcopy(tree)
    index = built.this
    assert isinstance(index, exp.Index)
    index.set("this", exp.to_identifier(name, quoted=True))
    namespace, _, bare = table.rpartition(".")
    index.set(
        "table",
        exp.Table(
            this=exp.to_identifier(bare, quoted=True),
            db=exp.to_identifier(namespace, quoted=True) if namespace else None,
        ),
    )
    concurrently = not _partitioned(schema, table)
    built.set("concurrently", concurrently)
    built.set("exists", False)
    return str(built.sql(dialect="postgres")), concurrently


def _constraint_sql(constraint: Constraint, table: Table | None) -> str | None:
    """A dropped constraint's definition, from what the replay keeps: a foreign key's REFERENCES clause, the
    clause a primary key, unique or check constraint was written with (options included), a CHECK that a
    column is not null. None when zdm did not read it, or a column it names was renamed since."""
    clause = constraint.clause
    if isinstance(clause, (exp.PrimaryKey, exp.UniqueColumnConstraint)):
        written = tuple(_identifier(c) for c in _clause_columns(clause))
        return _as_postgres_keeps(clause) if written == constraint.columns else None
    if isinstance(clause, exp.CheckColumnConstraint):
        named = {
            _identifier(c.this) for c in clause.find_all(exp.Column) if isinstance(c.this, exp.Identifier)
        }
        if table is None or not table.complete or not named <= set(table.columns):
            return None
        return _as_postgres_keeps(clause)
    if constraint.kind == "check" and constraint.not_null_column:
        return f"CHECK ({quoted_name(constraint.not_null_column)} IS NOT NULL)"
    reference = constraint.foreign_key.reference if constraint.foreign_key is not None else None
    if constraint.kind != "foreign_key" or not isinstance(reference, exp.Reference) or not constraint.columns:
        return None
    if constraint.ref_table is None:
        return None
    # The referenced table and columns as they are named now (the clause names them as they were written).
    namespace, _, bare = constraint.ref_table.rpartition(".")
    target: exp.Expression = exp.Table(
        this=exp.to_identifier(bare, quoted=True),
        db=exp.to_identifier(namespace, quoted=True) if namespace else None,
    )
    if constraint.ref_columns:
        target = exp.Schema(
            this=target, expressions=[exp.to_identifier(c, quoted=True) for c in constraint.ref_columns]
        )
    clause = copy.deepcopy(reference)
    clause.set("this", target)
    columns = ", ".join(quoted_name(c) for c in constraint.columns)
    return f"FOREIGN KEY ({columns}) {clause.sql(dialect='postgres')}"


def _clause_columns(clause: exp.Expression) -> list[exp.Expression]:
    """The key columns of PRIMARY KEY (...) or UNIQUE (...), as the parser reads them."""
    target = clause.this if isinstance(clause.this, exp.Schema) else clause
    return [c.this if isinstance(c, exp.Ordered) else c for c in target.expressions]


def _as_postgres_keeps(node: exp.Expression) -> str:
    """SQL as PostgreSQL keeps it: sqlglot reads `now()` and `current_timestamp(3)` as CURRENT_TIMESTAMP, which
    PostgreSQL stores otherwise (and without the precision)."""

    def as_written(part: exp.Expression) -> exp.Expression:
        # Only the function-call forms carry a position: the bare keyword CURRENT_TIMESTAMP has none.
        if not isinstance(part, exp.CurrentTimestamp) or "start" not in part.meta:
            return part
        precision = part.args.get("this")
        if precision is None:
            return exp.Anonymous(this="now", expressions=[])
        return exp.Anonymous(this="CURRENT_TIMESTAMP", expressions=[precision.copy()])

    return str(node.copy().transform(as_written).sql(dialect="postgres"))


def _default_sql(column: Column) -> str:
    default = column.default
    if default is None or not isinstance(default.node, exp.Expression):
        return ""
    return _as_postgres_keeps(default.node)


_SERIAL_TYPES = {"serial": "int4", "bigserial": "int8", "smallserial": "int2"}
_BUILTIN_TYPE = re.compile(r"[a-z_][a-z0-9_ ]*")


def _type_sql(spec: op.TypeSpec, schema: Schema) -> str | None:
    """A column type as SQL; None when zdm cannot write it whole (a user type other than an enum loses its
    modifiers in the replay, `vector(1536)` say)."""
    base = _SERIAL_TYPES.get(spec.base, spec.base)
    if spec.user_defined:
        if spec.base not in schema.enums:
            return None
        text = quoted(base)
    elif _BUILTIN_TYPE.fullmatch(base):
        text = base + ("(" + ",".join(str(p) for p in spec.params) + ")" if spec.params else "")
    else:
        return None
    return text + "[]" * spec.array_dims


_STRINGS = frozenset({"text", "varchar", "bpchar"})
_NUMBERS = frozenset(
    {"int2", "int4", "int8", "numeric", "float4", "float8", "serial", "bigserial", "smallserial"}
)
_TIMES = frozenset({"timestamp", "timestamptz", "date", "time", "timetz"})
_INTEGER_RANK = {"int2": 1, "smallserial": 1, "int4": 2, "serial": 2, "int8": 3, "bigserial": 3}


def _using(column: str, new: op.TypeSpec | None, previous: op.TypeSpec, written: str) -> str:
    """The USING clause the change back needs. Everything converts to a string, and within one family
    (numbers, times, one base) PostgreSQL's assignment casts convert, failing rather than cutting a value that
    does not fit; other conversions need an explicit cast, from an enum or to one through text."""
    if new is None:
        return ""
    if previous.array_dims == new.array_dims and not previous.user_defined:
        if previous.base in _STRINGS:
            return ""
        if not new.user_defined and (
            previous.base == new.base
            or any(previous.base in family and new.base in family for family in (_NUMBERS, _TIMES))
        ):
            return ""
    through_text = (
        "::text" + "[]" * new.array_dims
        if (new.user_defined or previous.user_defined) and new.base not in _STRINGS
        else ""
    )
    return f" USING {quoted_name(column)}{through_text}::{written}"


def _holds(previous: op.TypeSpec, new: op.TypeSpec, schema: Schema) -> bool:
    """Whether every value of the `new` type converts back to `previous` unchanged."""
    if previous == new:
        return True
    if previous.array_dims != new.array_dims:
        return False
    if previous.base == "text":
        return True  # every value has a text form
    if previous.user_defined or new.user_defined:
        # An enum holds another's values when it has every one of them (Prisma's rebuild without a value).
        known = previous.base in schema.enums and new.base in schema.enums
        partial = {previous.base, new.base} & schema.partial_enums
        return known and not partial and set(schema.enums[new.base]) <= set(schema.enums[previous.base])
    old, now = previous.base, new.base
    if old in _INTEGER_RANK and now in _INTEGER_RANK:
        return _INTEGER_RANK[old] >= _INTEGER_RANK[now]
    if old == "numeric" and not previous.params:
        return now in _INTEGER_RANK or now == "numeric"
    if old == "float8" and now == "float4":
        return True
    if old != now:
        return False
    # The same type with other modifiers: a length, a precision and scale, fractional seconds.
    if old in ("varchar", "bpchar"):
        return not previous.params or (bool(new.params) and new.params[0] <= previous.params[0])
    if old == "numeric":
        if not new.params:
            return False
        old_scale, new_scale = (previous.params[1:] or (0,))[0], (new.params[1:] or (0,))[0]
        return old_scale >= new_scale and previous.params[0] - old_scale >= new.params[0] - new_scale
    if old in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        return (previous.params or (6,))[0] >= (new.params or (6,))[0]
    return False
