"""add-foreign-key: FOREIGN KEY without NOT VALID scans the referencing table; both tables are locked."""

from __future__ import annotations

import re

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.add_check_constraint import _not_valid_then_validate
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    bare,
    claim,
    in_a_do_block,
    partitioned,
    quoted,
    quoted_name,
)

ID = "add-foreign-key"
SRE = LockMode.SHARE_ROW_EXCLUSIVE


def check(o: op.AddConstraint | op.AddColumn | op.CreateTable, ctx: Context) -> Effect | None:
    if isinstance(o, op.CreateTable):
        # A key to the new table itself (a tree's parent) locks nothing that exists yet.
        referenced = [
            t
            for t in [c.foreign_key.ref_table for c in o.constraints if c.foreign_key]
            + [c.references.ref_table for c in o.columns if c.references]
            if t != o.name
        ]
        if not any(ctx.live(t) for t in referenced):
            return None
        return claim(
            ID,
            ctx,
            "The new table's foreign keys take a brief SHARE ROW EXCLUSIVE lock on the live referenced "
            "table(s): writes to them wait for it.",
            [(t, SRE) for t in referenced],
            table=o.name,
        )
    if isinstance(o, op.AddColumn):
        if o.column.references is None:
            return None
        fk = o.column.references
        not_valid = False
        name = f"{o.on}_{o.column.name}_fkey"
    else:
        if o.constraint.foreign_key is None:
            return None
        fk = o.constraint.foreign_key
        not_valid = o.not_valid
        name = o.constraint.name or "..."
    locks = [(o.on, SRE), (fk.ref_table, SRE)]
    if not_valid:
        return claim(
            ID,
            ctx,
            f"Foreign key {quoted_name(name)} is added NOT VALID: existing rows are not checked and the SHARE ROW "
            f"EXCLUSIVE locks on {quoted(o.on)} and {quoted(fk.ref_table)} are brief.",
            locks,
            table=o.on,
        )
    if not ctx.live(o.on):
        return claim(
            ID,
            ctx,
            f"The foreign key from new table {quoted(o.on)} still takes a brief SHARE ROW EXCLUSIVE lock on "
            f"{quoted(fk.ref_table)}: writes to it wait for the lock.",
            locks,
            table=o.on,
        )
    cols = ", ".join(quoted_name(c) for c in fk.columns)
    ref_cols = ", ".join(quoted_name(c) for c in fk.ref_columns)
    return claim(
        ID,
        ctx,
        f"Adding foreign key {quoted_name(name)} checks every row of {quoted(o.on)} against {quoted(fk.ref_table)} "
        "while SHARE ROW EXCLUSIVE locks block writes to both tables.",
        locks,
        scans=[o.on],
        looks_up=[fk.ref_table],
        alternative=(
            f"ALTER TABLE {quoted(o.on)} ADD CONSTRAINT {quoted_name(name)} FOREIGN KEY ({cols}) "
            f"REFERENCES {quoted(fk.ref_table)}({ref_cols}) ... NOT VALID;\n"
            f"-- next migration:\nALTER TABLE {quoted(o.on)} VALIDATE CONSTRAINT {quoted_name(name)};"
        ),
        table=o.on,
        # Before 18 PostgreSQL refuses a NOT VALID foreign key on a partitioned table (measured on 15).
        fix=_fix(o, ctx)
        if isinstance(o, op.AddConstraint) and not (partitioned(ctx, o.on) and ctx.postgres_version < 18)
        else None,
    )


_UNNAMED = re.compile(
    r"^(?P<head>\s*ALTER\s+TABLE\s.+?\sADD)\s+(?=FOREIGN\s+KEY\b)", re.IGNORECASE | re.DOTALL
)


def _fix(o: op.AddConstraint, ctx: Context) -> Fix | None:
    if o.constraint.name:
        return _not_valid_then_validate(ctx.sql, o.on, o.constraint.name)
    # Prisma 2 wrote unnamed foreign keys. VALIDATE needs the name, so the rewrite spells out the one
    # PostgreSQL would have generated: <table>_<columns>_fkey (when short and free; else no rewrite).
    fk = o.constraint.foreign_key
    if fk is None or not ctx.sql:
        return None
    name = f"{bare(o.on)}_{'_'.join(fk.columns)}_fkey"
    if len(name.encode()) > 63 or ctx.schema.constraint(o.on, name) is not None:
        return None
    named, count = _UNNAMED.subn(
        lambda m: f"{m.group('head')} CONSTRAINT {quoted_name(name)} ", ctx.sql, count=1
    )
    return _not_valid_then_validate(named, o.on, name) if count else None


RULE = Rule(
    id=ID,
    title="Foreign key validated while locked",
    summary="`ADD CONSTRAINT ... FOREIGN KEY` without `NOT VALID` scans the table and blocks writes to both tables.",
    why=(
        "PostgreSQL checks every existing row of the referencing table while holding SHARE ROW EXCLUSIVE on "
        "it and on the referenced table: writes to both wait for the whole scan. A foreign key from a table "
        "created in the same migration scans nothing, but still locks the live referenced table briefly."
    ),
    instead=(
        "Add the foreign key `NOT VALID` (brief lock), then `VALIDATE CONSTRAINT` in a following migration: "
        "validation takes SHARE UPDATE EXCLUSIVE, so reads and writes continue."
        + in_a_do_block("adds it `NOT VALID` in the block and validates it after the block")
    ),
    operations=(op.AddConstraint, op.AddColumn, op.CreateTable),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";\n'
            'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") '
            "ON DELETE SET NULL ON UPDATE CASCADE;",
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";\n'
            'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") '
            "ON DELETE SET NULL ON UPDATE CASCADE NOT VALID;",
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'CREATE TABLE "New" ("id" INTEGER NOT NULL, "userId" INTEGER, CONSTRAINT "New_pkey" PRIMARY KEY ("id"));\n'
            'ALTER TABLE "New" ADD CONSTRAINT "New_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") '
            "ON DELETE RESTRICT ON UPDATE CASCADE;",
            Classification.BRIEF,
            STANDARD_SETUP,
            title="from a table created in the same migration",
        ),
        Example(
            'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";\n'
            'ALTER TABLE "Tip" ADD FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE;',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="unnamed, as Prisma 2 wrote them",
        ),
        Example(
            'ALTER TABLE "Event" ADD CONSTRAINT "Event_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="from a partitioned table: every partition is locked and read",
        ),
        Example(
            'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";\n'
            "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'Tip_userId_fkey') THEN\n"
            '    ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") '
            "ON DELETE SET NULL ON UPDATE CASCADE;\n  END IF;\nEND $$;",
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="inside a DO block, guarded so it can run again: `NOT VALID` in the block, validated after it",
        ),
    ),
)
