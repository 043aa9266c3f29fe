"""drop-table: DROP TABLE breaks code that still uses it and locks the tables its foreign keys join."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import (
    EVENT_USER_FKEY,
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    also_locks,
    claim,
    quoted,
)

ID = "drop-table"

_UNTIL = "until the drop commits"


def check(o: op.DropTable, ctx: Context) -> Effect:
    schema = ctx.schema
    # Dropping a foreign key's table removes the key's triggers from the table at its other end.
    referenced = schema.referenced_tables(o.name)
    referencing = schema.referencing_tables(o.name)
    dropped_views = schema.dependent_views(o.name) if o.cascade else []
    model = schema.tables.get(o.name)
    parent = model.partition_of if model is not None else None
    locks = [
        (t, LockMode.ACCESS_EXCLUSIVE)
        for t in (o.name, *referenced, *referencing, *dropped_views, *([parent] if parent else []))
    ]
    also = (
        also_locks(
            ctx,
            referenced,
            ("the table its foreign key references", "the tables its foreign keys reference"),
            _UNTIL,
        )
        + also_locks(
            ctx,
            referencing,
            ("whose foreign key references it", "whose foreign keys reference it"),
            _UNTIL,
        )
        + also_locks(
            ctx, dropped_views, ("a view CASCADE drops with it", "views CASCADE drops with it"), _UNTIL
        )
        + also_locks(
            ctx,
            [parent] if parent else [],
            ("the partitioned table it belongs to", "the partitioned tables it belongs to"),
            _UNTIL,
        )
    )
    return claim(
        ID,
        ctx,
        f"Dropping {quoted(o.name)} loses its data and breaks any running code that still queries it.{also}",
        locks,
        breaking=True,
        alternative="Deploy code that no longer uses the table first, then drop it in a later migration.",
        table=o.name,
        fix=Fix(
            "Drop the table in a later migration, after the code that stopped using it is deployed.",
            later=(ctx.sql,),
            deploy_first=f"code that no longer uses {quoted(o.name)}",
        )
        if ctx.sql
        else None,
    )


_SESSION = """
CREATE TABLE "Session" (
    "id" TEXT NOT NULL,
    "userId" INTEGER NOT NULL,
    CONSTRAINT "Session_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"""
_EVENTS = PARTITIONED_SETUP + EVENT_USER_FKEY
_NODES = """
CREATE TABLE "Node" ("id" INTEGER NOT NULL, "parentId" INTEGER, CONSTRAINT "Node_pkey" PRIMARY KEY ("id"));
ALTER TABLE "Node" ADD CONSTRAINT "Node_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Node"("id");
"""

RULE = Rule(
    id=ID,
    title="Table dropped",
    summary="`DROP TABLE` is irreversible and breaks code still using the table.",
    why=(
        "The drop is quick under ACCESS EXCLUSIVE, but the data is gone and the application version still "
        "running fails on every query of that model. The lock reaches further than the table: dropping a "
        "table with a foreign key also takes ACCESS EXCLUSIVE on the table the key references (dropping "
        '"Session" locks "User", often the busiest table), and on the tables whose foreign keys reference '
        "it; `CASCADE` locks the views it drops; dropping a partition locks its partitioned table; dropping "
        "a partitioned table locks every partition."
    ),
    instead="Remove the model from the code and deploy; drop the table in a later migration.",
    operations=(op.DropTable,),
    check=check,
    examples=(
        Example('DROP TABLE "Old";', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'DROP TABLE "Session";',
            Classification.BRIEF,
            STANDARD_SETUP + _SESSION,
            title="a table with a foreign key: the referenced table is locked too",
        ),
        Example(
            'DROP TABLE "Tip" CASCADE;',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="CASCADE: the referenced table and the materialized view it drops are locked too",
        ),
        Example(
            'DROP TABLE "User" CASCADE;',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="CASCADE of a referenced table: the tables whose foreign keys it drops are locked",
        ),
        Example(
            'DROP TABLE "Node";',
            Classification.BRIEF,
            STANDARD_SETUP + _NODES,
            title="a foreign key to itself locks nothing else",
        ),
        Example(
            'DROP TABLE "Event";',
            Classification.BRIEF,
            STANDARD_SETUP + _EVENTS,
            title="a partitioned table: every partition and the referenced table are locked",
        ),
        Example(
            'DROP TABLE "Event_1";',
            Classification.BRIEF,
            STANDARD_SETUP + _EVENTS,
            title="a partition: its partitioned table is locked, not the table the inherited key references",
        ),
    ),
)
