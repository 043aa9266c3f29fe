"""unrecognized-statement: zdm could not read the statement; a human must."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim

ID = "unrecognized-statement"


def check(o: op.Unrecognized, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"zdm could not tell what this statement locks: {o.reason}. Review its locks by hand.",
        {},
        classification=Classification.UNKNOWN,
        alternative="If it is safe, say why with `-- zdm:ignore unrecognized-statement <reason>` above it.",
    )


RULE = Rule(
    id=ID,
    title="Statement zdm cannot read",
    summary="A statement zdm cannot parse or does not model needs manual review; it is never assumed safe.",
    why=(
        "zdm only calls a statement safe when it knows what the statement locks. Procedural `DO` blocks, "
        "unusual syntax and statements the parser rejects are reported here instead of being skipped."
    ),
    instead="Check the statement's locks yourself, then suppress with a reason, or rewrite it in plain DDL.",
    operations=(op.Unrecognized,),
    check=check,
    examples=(
        Example(
            "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$;",
            Classification.UNKNOWN,
            STANDARD_SETUP,
        ),
    ),
)
