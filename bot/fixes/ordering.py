"""Which statements a plan may move after the application deploy, and which must keep their place.

A fix that defers work (`Fix.later`: a drop after the deploy, a `VALIDATE` in the next migration) moves it
past every statement that follows it in the file. Each of those must not depend on what moved
(`bot.analysis.dependencies`). When one does, it moves along if it is itself a plain drop with no rewrite of
its own (dropping the enum a deferred column used), else the deferral is cancelled: that statement keeps its
place as written, and the plan says why there is no automatic rewrite for it. Moving along can pull further
statements; a cancellation starts the choice again without the cancelled deferral, so the result never moves
a statement whose followers depend on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.analysis.dependencies import Mentions, depends, generic_keys, mentions
from bot.analysis.model import FileResult, Fix, Keys

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
    r"^\s*(?:LOCK\b|SET\s+LOCAL\b|SAVEPOINT\b|CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Unit:
    id: UnitId
    line: int
    sql: str
    fix: Fix | None
    mentions: Mentions
    retires: frozenset[str]

    @property
    def defers(self) -> bool:
        return self.fix is not None and bool(self.fix.later) and self.fix.keys is not None

    @property
    def moves_whole(self) -> bool:
        """Its fix leaves nothing in place: the whole statement runs after the deploy."""
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


@dataclass
class Moves:
    # Units that move after the deploy as written, pulled by a deferral they depend on.
    along: list[UnitId] = field(default_factory=list)
    # Deferrals that keep their place (their fix is not applied), with the reason.
    cancelled: dict[UnitId, str] = field(default_factory=dict)


def units_of(result: FileResult) -> list[Unit]:
    units = []
    for statement in result.statements:
        if statement.kind == "empty":
            continue
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
                )
            )
    return units


def choose_moves(units: list[Unit]) -> Moves:
    deferrals = [u.id for u in units if u.defers]
    position = {u.id: n for n, u in enumerate(units)}
    cancelled = _split_from_transaction_state(units)
    while True:
        moving: dict[UnitId, Keys] = {}
        for uid in deferrals:
            if uid not in cancelled:
                fix = units[position[uid]].fix
                assert fix is not None and fix.keys is not None
                moving[uid] = fix.keys
        pulled_by: dict[UnitId, UnitId] = {}
        conflict = _first_conflict(units, position, moving, pulled_by)
        if conflict is None:
            along = sorted((uid for uid in moving if uid in pulled_by), key=position.__getitem__)
            return Moves(along, cancelled)
        root, blocker = conflict
        cancelled[root] = (
            f"line {blocker.line} (`{_snippet(blocker.sql)}`) depends on it and must run before the deploy"
        )


def _split_from_transaction_state(units: list[Unit]) -> dict[UnitId, str]:
    """A rewrite that runs outside the transaction (CONCURRENTLY, a batched DO block) cannot follow a lock, a
    temporary table or a SET LOCAL the file's transaction set up for it."""
    cancelled: dict[UnitId, str] = {}
    holder: Unit | None = None
    for unit in units:
        if holder is not None and unit.fix is not None and unit.fix.alone:
            cancelled[unit.id] = (
                f"line {holder.line} (`{_snippet(holder.sql)}`) sets up state for the rest of the transaction, "
                "which a statement run outside it would not see"
            )
        if holder is None and _TRANSACTION_STATE.match(unit.sql):
            holder = unit
    return cancelled


def _first_conflict(
    units: list[Unit],
    position: dict[UnitId, int],
    moving: dict[UnitId, Keys],
    pulled_by: dict[UnitId, UnitId],
) -> tuple[UnitId, Unit] | None:
    queue = sorted(moving, key=position.__getitem__)
    while queue:
        uid = queue.pop(0)
        keys = moving[uid]
        for follower in units[position[uid] + 1 :]:
            # A deferral that leaves part of its rewrite in place is still there to be depended on.
            gone = follower.id in pulled_by or (follower.id in moving and follower.moves_whole)
            if gone or not depends(keys, follower.mentions, follower.retires):
                continue
            root = pulled_by.get(uid, uid)
            if not follower.movable:
                return root, follower
            moving[follower.id] = generic_keys(follower.sql)
            pulled_by[follower.id] = root
            queue.append(follower.id)
    return None


def _snippet(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 60 else text[:57] + "..."
