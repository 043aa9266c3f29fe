"""A `DO` block's rewrite: the block kept, each statement in it rewritten by its own rule, where that is exact.

Migrations guard what they add so they can run again:

    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'x') THEN
        ALTER TABLE "t" ADD CONSTRAINT "x" FOREIGN KEY ...;
      END IF;
    END $$;

The rule's rewrite of a statement replaces it inside the block, under the same guards (the foreign key or
CHECK gets `NOT VALID`; a unique constraint is attached `USING INDEX`). What the rewrite must run outside any
transaction (the index built `CONCURRENTLY`) runs before the block, and what it defers (the `VALIDATE`) runs
after it, placed as the planner places them for a plain statement. Taking those out of the block is exact only
when the guards run the statement: the schema replayed from the earlier migrations must tell (constraint "x"
does not exist yet, so the branch runs, and a `VALIDATE` of "x" afterwards validates exactly the constraint the
block added). Otherwise the block stays as written, and the plan says why.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.analysis import operations as op
from bot.analysis.model import Fix, Keys
from bot.analysis.parser import BlockStatement, ConstraintGuard, DoBlock
from bot.analysis.schema import Schema
from bot.fixes.ordering import attaches_index
from bot.rules.base import quoted_name


def guards_run(statement: BlockStatement, schema: Schema) -> bool | None:
    """Whether the statement's guards run it, by the replayed schema; None when the replay cannot tell."""
    decisions = [_runs(guard, schema) for guard in statement.guards]
    if False in decisions:
        return False
    return None if None in decisions else True


def _runs(guard: ConstraintGuard, schema: Schema) -> bool | None:
    exists = schema.constraint_exists(guard.constraint, guard.table)
    return None if exists is None else exists == guard.runs_if_exists


def block_fix(block: DoBlock, fixes: Sequence[Fix | None], runs: Sequence[bool | None]) -> Fix | str | None:
    """The block's fix, from its statements' own: `fixes` has one per operation of the block, in order, and
    `runs` says for each statement of the block whether its guards run it (`guards_run`). A string says why
    the block stays as written; None: no statement of the block has a fix."""
    if not any(fixes):
        return None
    if block.procedural is not None:
        return f"the DO block holds {block.procedural}, so its own code decides what runs"
    replacements: dict[int, tuple[str, ...]] = {}
    taken: list[Fix] = []
    alone: list[str] = []
    later: list[str] = []
    first = 0
    for number, statement in enumerate(block.statements):
        own = fixes[first : first + len(statement.operations)]
        first += len(statement.operations)
        if not any(own):
            continue
        why = _why_not_rewritten(block, number, runs[number], own)
        if why is not None:
            return why
        sql: list[str] = []
        for part, fix in zip(statement.parts, own, strict=True):
            if fix is None:
                sql.append(part)
                continue
            # Attaching the index built before the block needs nothing a later migration finishes: it stays
            # where the constraint was added, under the block's guards.
            attach = fix.later if fix.later and all(attaches_index(s) for s in fix.later) else ()
            sql += [*fix.in_place, *attach]
            if any(block.quote in written for written in sql):
                return f"its rewrite holds {block.quote}, the dollar quote around the DO block's body"
            alone += fix.alone
            later += [s for s in fix.later if s not in attach]
            taken.append(fix)
        replacements[number] = tuple(sql)
    # Nothing left for the block to do (each of its statements became steps outside it): it goes.
    emptied = len(replacements) == len(block.statements) and not any(replacements.values())
    rewritten = () if emptied else (block.text(replacements),)
    return Fix(
        "Inside the DO block, under its guards: "
        + " ".join(dict.fromkeys(fix.summary.rstrip(".") + "." for fix in taken)),
        # What runs alone (an index built CONCURRENTLY) comes first: the block may attach it.
        in_place=() if alone else rewritten,
        alone=tuple(alone),
        alone_always=any(fix.alone_always for fix in taken),
        after=rewritten if alone else (),
        later=tuple(later),
        keys=_merged_keys([fix.keys for fix in taken if fix.later]) if later else None,
    )


def _why_not_rewritten(
    block: DoBlock, number: int, runs: bool | None, fixes: Sequence[Fix | None]
) -> str | None:
    statement = block.statements[number]
    guards = " and ".join(_said(guard) for guard in statement.guards)
    if runs is None:
        return f"zdm cannot tell from the earlier migrations whether the DO block's guard ({guards}) runs it"
    if not runs:
        return f"by the earlier migrations, the DO block's guard ({guards}) skips it"
    if not all(statement.parts):
        return "zdm cannot cut the statement inside the DO block into one per change"
    taken = [fix for fix in fixes if fix is not None]
    if any(fix.after or fix.manual or fix.deploy_first for fix in taken):
        return "its rewrite has steps between migrations (a deploy, a manual step, a swap) that a DO block cannot hold"
    # What runs before the block (outside any transaction) or after it (in a later migration) jumps over the
    # block's other statements: only constraint additions, which such steps neither need nor change.
    others = [block.statements[n] for n in range(number)] if any(fix.alone for fix in taken) else []
    if any(fix.later for fix in taken):
        others += block.statements[number + 1 :]
    if not all(isinstance(o, op.AddConstraint) for other in others for o in other.operations):
        return "its rewrite would move part of it out of the DO block, past the block's other statements"
    return None


def _said(guard: ConstraintGuard) -> str:
    negation = "" if guard.runs_if_exists else "NOT "
    where = f" on {guard.table}" if guard.table else ""
    return f"IF {negation}EXISTS constraint {quoted_name(guard.constraint)}{where}"


def _merged_keys(keys: Sequence[Keys | None]) -> Keys | None:
    """What the block's deferred steps change the meaning of: what those of each of its statements do (None
    when one is not known: the analysis made no plans)."""
    known = [k for k in keys if k is not None]
    if len(known) != len(keys):
        return None
    return Keys(
        frozenset().union(*(k.names for k in known)),
        frozenset().union(*(k.columns for k in known)),
        frozenset().union(*(k.tables for k in known)),
    )
