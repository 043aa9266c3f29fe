"""In which migration each statement of a file runs: its phase.

A fix may defer part of its work (`Fix.later`) to the next phase: a `VALIDATE`, a `SET NOT NULL` once a CHECK
proves it, a primary key attached to an index built `CONCURRENTLY`, a drop after the application deploy.
Phase 0 is the file's own place; phase n+1 runs after every migration of phase n.

Two kinds of deferral, two kinds of dependency:

- A *finishing* step (`VALIDATE`, `SET NOT NULL`, dropping zdm's helper CHECK, `ADD CONSTRAINT ... USING
  INDEX`) finishes a state: a constraint validated, a column NOT NULL, a key attached. A later statement
  depends on it only through effects (`bot.analysis.dependencies.touches_of`): when it needs that finished
  state (a primary key needs its columns NOT NULL, or it would scan for them under its lock), or when it
  changes an object the step names (drops the column the step makes NOT NULL, renames the constraint it
  validates). Mentioning the same table or column is not a dependency. A statement that depends on a
  finishing step moves to that step's phase, with its own rewrite, and its own deferred work one phase
  further: more migrations in the right order, never the blocking statement kept as written.
- A *drop* after the deploy removes something the running code still uses. What depends on it by name
  (`dependencies.depends`) moves along when it is itself a plain drop, else the drop keeps its place (a drop
  is brief: keeping it costs no blocking lock) and the plan says why.

Whatever moves to a later phase takes along every statement after it that names what it names: those ran
after it in the file and must still. A rewrite that runs outside the transaction (CONCURRENTLY, a batched DO
block) never follows state the file's transaction set up for it (a LOCK, SET LOCAL, a temporary table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from bot.analysis.dependencies import (
    Mentions,
    changes_what_it_requires,
    column_atom,
    constraint_atom,
    depends,
    index_atom,
    mentions,
    merged,
    moved_keys,
    needs_what_it_finishes,
    not_null_atom,
    table_atom,
)
from bot.analysis.model import FileResult, Fix, Keys, Touches

_TRANSACTION_KINDS = ("transaction", "commit", "rollback")
# A unit: (statement index, part index or -1 for the whole statement).
UnitId = tuple[int, int]

_PLAIN_DROP = re.compile(
    r"^\s*(?:DROP\s+(?:TYPE|TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION|TRIGGER|SEQUENCE|DOMAIN|POLICY|INDEX)\b"
    r"|ALTER\s+TABLE\b(?:(?!\b(?:ADD|ALTER\s+COLUMN|RENAME|SET|TYPE|ATTACH|VALIDATE)\b).)*"
    r"\bDROP\s+(?:COLUMN|CONSTRAINT)\b(?:(?!\b(?:ADD|ALTER\s+COLUMN|RENAME|SET|TYPE|ATTACH|VALIDATE)\b).)*$)",
    re.IGNORECASE | re.DOTALL,
)
_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.IGNORECASE)
# State that lasts until the transaction ends: a statement split out of the transaction would not see it.
_TRANSACTION_STATE = re.compile(
    r"^\s*(?:LOCK\b|SET\s+LOCAL\b|SAVEPOINT\b)",
    re.IGNORECASE,
)
# Objects other statements may use without naming them as identifiers (a sequence in a default's string, a
# function or type inside a body): dropping one waits for every statement that moved later.
_DROPS_WHAT_STRINGS_NAME = re.compile(
    r"^\s*DROP\s+(?:SEQUENCE|FUNCTION|PROCEDURE|TYPE|DOMAIN|TRIGGER|VIEW|MATERIALIZED\s+VIEW)\b",
    re.IGNORECASE,
)
_TEMPORARY_TABLE = re.compile(
    r"^\s*CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r'(?P<name>"(?:[^"]|"")+"|\w+)',
    re.IGNORECASE,
)
_NAME = r'(?:"(?:[^"]|"")+"|\w+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|\w+))?'
# The finishing steps zdm writes, as it writes them.
_VALIDATE = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?P<table>{_NAME})\s+VALIDATE\s+CONSTRAINT\s+(?P<name>{_NAME})\s*$", re.I
)
_SET_NOT_NULL = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?P<table>{_NAME})\s+ALTER\s+COLUMN\s+(?P<column>{_NAME})\s+SET\s+NOT\s+NULL\s*$",
    re.I,
)
_DROP_CONSTRAINT = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?P<table>{_NAME})\s+DROP\s+CONSTRAINT\s+(?P<name>{_NAME})\s*$", re.I
)
_USING_INDEX = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?P<table>{_NAME})\s+ADD\s+CONSTRAINT\s+(?P<name>{_NAME})\s+"
    rf"(?:PRIMARY\s+KEY|UNIQUE)\s+USING\s+INDEX\s+(?P<index>{_NAME})"
    r"(?:\s+(?:NOT\s+)?DEFERRABLE)?(?:\s+INITIALLY\s+(?:DEFERRED|IMMEDIATE))?\s*$",
    re.I,
)


def attaches_index(sql: str) -> bool:
    """The statement attaches a built index as a unique or primary key, as zdm writes it."""
    return _USING_INDEX.match(sql) is not None


def _unquoted(name: str) -> str:
    """The last part of a possibly qualified, possibly quoted name, as the atoms spell it."""
    last = re.split(r'\.(?=(?:[^"]*"[^"]*")*[^"]*$)', name.strip())[-1].strip()
    if last.startswith('"') and last.endswith('"'):
        return last[1:-1].replace('""', '"')
    return last


@dataclass(frozen=True)
class Finishing:
    """What a fix's deferred steps finish, and what they need to find as it was."""

    finishes: frozenset[str]
    requires: frozenset[str]


def finishing(fix: Fix) -> Finishing | None:
    """The fix's deferred steps, when every one of them finishes a state; None for a drop (or anything else)."""
    if not fix.later or fix.keys is None:
        return None
    finishes: set[str] = set()
    requires: set[str] = {table_atom(t) for t in fix.keys.tables}
    requires |= {column_atom(t, c) for t in fix.keys.tables for c in fix.keys.columns}
    for sql in fix.later:
        if match := _VALIDATE.match(sql) or _DROP_CONSTRAINT.match(sql):
            table = _unquoted(match["table"])
            requires |= {table_atom(table), constraint_atom(table, _unquoted(match["name"]))}
        elif match := _SET_NOT_NULL.match(sql):
            table, column = _unquoted(match["table"]), _unquoted(match["column"])
            requires |= {table_atom(table), column_atom(table, column)}
            finishes.add(not_null_atom(table, column))
        elif match := _USING_INDEX.match(sql):
            table = _unquoted(match["table"])
            requires |= {table_atom(table), index_atom(_unquoted(match["index"]))}
        else:
            return None
    return Finishing(frozenset(finishes), frozenset(requires))


@dataclass(frozen=True)
class Unit:
    id: UnitId
    line: int
    sql: str
    fix: Fix | None
    mentions: Mentions
    retires: frozenset[str]
    touches: Touches = field(default_factory=Touches)
    transaction_control: bool = False

    @property
    def defers(self) -> bool:
        return self.fix is not None and bool(self.fix.later) and self.fix.keys is not None

    @property
    def moves_whole(self) -> bool:
        """Its fix leaves nothing in place: the whole statement runs in the next phase."""
        return self.defers and self.fix is not None and not (self.fix.in_place or self.fix.alone)

    @property
    def movable(self) -> bool:
        """A plain drop with no rewrite of its own: running it after the deploy only delays a removal."""
        return (
            self.fix is None
            and not self.mentions.opaque
            and bool(_PLAIN_DROP.match(self.sql))
            and not _CONCURRENTLY.search(self.sql)
        )

    @cached_property
    def finishing(self) -> Finishing | None:
        return finishing(self.fix) if self.defers and self.fix is not None else None

    @cached_property
    def names(self) -> Keys:
        """What a statement after this one must not mention if this one moves later without it."""
        return moved_keys(self.sql, self.touches)


@dataclass
class Moves:
    # The phase of each unit that does not run in the file's own place (phase 0).
    phase: dict[UnitId, int] = field(default_factory=dict)
    # Why a unit moved: the unit whose deferred step (or whose move) it follows.
    after: dict[UnitId, UnitId] = field(default_factory=dict)
    # Deferrals that keep their place (their fix is not applied), with the reason.
    cancelled: dict[UnitId, str] = field(default_factory=dict)

    # The phase right after the application deploy: every step that waits for the deploy runs there (one
    # deploy serves them all, so it comes after the last phase whose statements it must follow).
    deploy_phase: int = 0

    def phase_of(self, uid: UnitId) -> int:
        return self.phase.get(uid, 0)

    def deferred_phase(self, unit: Unit) -> int:
        """Where the unit's deferred steps run."""
        after = self.phase_of(unit.id) + 1
        if unit.fix is not None and unit.fix.deploy_first:
            return max(after, self.deploy_phase)
        return after

    @property
    def last_phase(self) -> int:
        return max(self.phase.values(), default=0)


def units_of(result: FileResult) -> list[Unit]:
    units = []
    for statement in result.statements:
        if statement.kind == "empty":
            continue
        touches = statement.touches
        if statement.parts is not None and statement.fixes:
            for number, (part, fix) in enumerate(zip(statement.parts, statement.fixes, strict=True)):
                units.append(
                    Unit(
                        (statement.index, number),
                        statement.line_start,
                        part,
                        fix,
                        mentions(part),
                        statement.retires,
                        touches[number] if len(touches) == len(statement.parts) else merged(touches),
                    )
                )
        else:
            units.append(
                Unit(
                    (statement.index, -1),
                    statement.line_start,
                    statement.sql,
                    None,
                    mentions(statement.sql),
                    statement.retires,
                    merged(touches) if touches else Touches(),
                    transaction_control=statement.kind in _TRANSACTION_KINDS,
                )
            )
    return units


def choose_moves(units: list[Unit]) -> Moves:
    cancelled = _split_from_transaction_state(units)
    deploy_phase = 0
    while True:
        chosen = _phases(units, cancelled, deploy_phase)
        if isinstance(chosen, Moves):
            late = [
                u for u in units if _waits_for_deploy(u, cancelled) and chosen.phase_of(u.id) >= deploy_phase
            ]
            if not late or (deploy_phase == 0 and all(chosen.phase_of(u.id) == 0 for u in late)):
                return chosen
            if deploy_phase == 0:
                # What waits for the deploy moved to later phases: the one deploy comes after all of them.
                deploy_phase = max(chosen.phase_of(u.id) for u in late) + 1
                continue
            # Moved past the deploy it must precede (the code it needs deployed would run before it exists).
            for unit in late:
                cause = next(u for u in units if u.id == chosen.after[unit.id])
                cancelled[unit.id] = (
                    f"it would run after the application deploy it must precede, behind line {cause.line} "
                    f"(`{_snippet(cause.sql)}`), which it depends on"
                )
            continue
        root, blocker = chosen
        cancelled[root] = (
            f"line {blocker.line} (`{_snippet(blocker.sql)}`) depends on it and must run before the deploy"
        )


def _waits_for_deploy(unit: Unit, cancelled: dict[UnitId, str]) -> bool:
    return unit.defers and unit.id not in cancelled and unit.fix is not None and bool(unit.fix.deploy_first)


def _phases(
    units: list[Unit], cancelled: dict[UnitId, str], deploy_phase: int
) -> Moves | tuple[UnitId, Unit]:
    """Each unit's phase, in file order: the lowest that keeps every dependency; or the drop deferral that a
    statement which cannot move depends on (to cancel)."""
    moves = Moves(cancelled=cancelled, deploy_phase=deploy_phase)
    deferring = [(n, u) for n, u in enumerate(units) if u.defers and u.id not in cancelled]
    moved: list[Unit] = []
    appended: dict[str, tuple[int, Unit | None]] = {}
    for position, unit in enumerate(units):
        if unit.transaction_control:
            continue
        phase, cause = 0, None
        for earlier_position, earlier in deferring:
            if earlier_position >= position:
                break
            # The phase the earlier unit's deferred step runs in, and the least this unit may run in to
            # follow it: a unit whose own work all moves to its next phase follows from one phase before.
            step_phase = moves.deferred_phase(earlier)
            needed = step_phase - 1 if unit.moves_whole else step_phase
            if needed <= phase:
                continue
            if earlier.finishing is not None:
                if unit.touches.opaque or _depends_on_finishing(earlier.finishing, unit.touches):
                    phase, cause = needed, earlier
            elif (
                earlier.fix is not None
                and earlier.fix.keys is not None
                and depends(earlier.fix.keys, unit.mentions, unit.retires)
            ):
                if not (unit.movable or unit.moves_whole):
                    return earlier.id, unit
                phase, cause = needed, earlier
        for earlier in moved:
            earlier_phase = moves.phase_of(earlier.id)
            if earlier_phase > phase and (
                depends(earlier.names, unit.mentions, unit.retires)
                or _DROPS_WHAT_STRINGS_NAME.match(unit.sql)
            ):
                phase, cause = earlier_phase, earlier
        # Columns keep their order: an ADD COLUMN runs no earlier than one before it on the same table.
        for table in unit.touches.appends:
            earlier_phase, earlier_unit = appended.get(table, (0, None))
            if earlier_phase > phase and earlier_unit is not None:
                phase, cause = earlier_phase, earlier_unit
        for table in unit.touches.appends:
            if phase >= appended.get(table, (0, None))[0]:
                appended[table] = (phase, unit)
        if phase and cause is not None:
            moves.phase[unit.id] = phase
            moves.after[unit.id] = cause.id
            moved.append(unit)
    return moves


def _depends_on_finishing(step: Finishing, touches: Touches) -> bool:
    return needs_what_it_finishes(touches.needs, step.finishes) or changes_what_it_requires(
        touches.changes, step.requires
    )


def _split_from_transaction_state(units: list[Unit]) -> dict[UnitId, str]:
    """A rewrite that runs outside the transaction (CONCURRENTLY, a batched DO block) cannot follow a lock or a
    SET LOCAL the file's transaction set up for it, nor use a temporary table it made (which a statement run
    apart need not see)."""
    cancelled: dict[UnitId, str] = {}
    holder: Unit | None = None
    temporary: dict[str, Unit] = {}
    for unit in units:
        if unit.fix is not None and unit.fix.alone:
            used = next((t for name, t in temporary.items() if name in unit.mentions.names), None)
            cause = holder or used
            if cause is not None:
                cancelled[unit.id] = (
                    f"line {cause.line} (`{_snippet(cause.sql)}`) sets up state for the rest of the transaction, "
                    "which a statement run outside it would not see"
                )
        if match := _TEMPORARY_TABLE.match(unit.sql):
            temporary[_unquoted(match["name"]).lower()] = unit
        elif holder is None and _TRANSACTION_STATE.match(unit.sql):
            holder = unit
    return cancelled


def _snippet(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 60 else text[:57] + "..."
