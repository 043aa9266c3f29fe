"""trigger: creating, dropping, enabling or disabling a trigger locks the table briefly."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "trigger"

_LOCKS = {
    "create": LockMode.SHARE_ROW_EXCLUSIVE,
    "enable": LockMode.SHARE_ROW_EXCLUSIVE,
    "disable": LockMode.SHARE_ROW_EXCLUSIVE,
}


def check(o: op.Trigger, ctx: Context) -> Effect:
    mode = _LOCKS.get(o.action, LockMode.ACCESS_EXCLUSIVE)
    return claim(
        ID,
        ctx,
        f"This {o.action} of a trigger takes a brief {mode.sql_name} lock on {quoted(o.on)}; from then on the "
        "trigger runs inside every matching write.",
        {o.on: mode},
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Trigger changed (brief lock)",
    summary="`CREATE/DROP TRIGGER` and `ENABLE/DISABLE TRIGGER` lock the table against writes briefly.",
    why="Catalog-only, but the lock blocks writes and waits behind running transactions.",
    instead="Keep it; run it with a `lock_timeout`.",
    operations=(op.Trigger,),
    check=check,
    examples=(
        Example(
            'CREATE TRIGGER noop BEFORE INSERT ON "Tip" FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
    ),
)
