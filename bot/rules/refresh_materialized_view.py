"""refresh-materialized-view: REFRESH without CONCURRENTLY blocks reads of the view while it recomputes."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "refresh-materialized-view"


def check(o: op.RefreshMaterializedView, ctx: Context) -> Effect:
    sources = ctx.schema.view_sources.get(o.name, ())
    locks = [(t, LockMode.ACCESS_SHARE) for t in sources]
    if o.concurrently:
        return claim(
            ID,
            ctx,
            f"Refreshing {quoted(o.name)} concurrently keeps it readable (EXCLUSIVE lock).",
            [*locks, (o.name, LockMode.EXCLUSIVE)],
            scans=[o.name, *sources],
            classification=Classification.SAFE,
        )
    return claim(
        ID,
        ctx,
        f"REFRESH MATERIALIZED VIEW rebuilds {quoted(o.name)} under ACCESS EXCLUSIVE: every read of the view "
        "waits until the query behind it has run in full.",
        [*locks, (o.name, LockMode.ACCESS_EXCLUSIVE)],
        rewrites=[o.name],
        scans=[o.name, *sources],
        alternative=f"REFRESH MATERIALIZED VIEW CONCURRENTLY {quoted(o.name)};  -- needs a unique index on the view",
        table=o.name,
    )


RULE = Rule(
    id=ID,
    title="Materialized view refreshed while locked",
    summary="`REFRESH MATERIALIZED VIEW` blocks reads of the view for the whole recomputation.",
    why="Without CONCURRENTLY the view is rebuilt into a new file under ACCESS EXCLUSIVE.",
    instead="`REFRESH MATERIALIZED VIEW CONCURRENTLY` (requires a unique index), in its own migration.",
    operations=(op.RefreshMaterializedView,),
    check=check,
    examples=(Example('REFRESH MATERIALIZED VIEW "TipTotals";', Classification.BLOCKING, STANDARD_SETUP),),
)
