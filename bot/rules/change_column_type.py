"""change-column-type: ALTER COLUMN ... TYPE, judged against the column's previous type."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    quoted_name,
)
from bot.rules.online_column import KEPT_AS_WRITTEN, WHAT_ZDM_FIX_WRITES, NotOnline, online_type_change

ID = "change-column-type"

_SERIAL_STORAGE = {"serial": "int4", "bigserial": "int8", "smallserial": "int2"}
# Types whose modifier can grow (or be dropped) without touching the rows.
_WIDENABLE = {
    "varchar",
    "numeric",
    "timestamp",
    "timestamptz",
    "time",
    "timetz",
    "interval",
    "bit varying",
    "varbit",
}
# Changes PostgreSQL treats as binary-coercible relabelling (no rewrite, no scan).
_RELABEL = {
    ("varchar", "text"),
    ("text", "varchar"),
    ("cidr", "inet"),
    # citext's casts from and to text and varchar are declared WITHOUT FUNCTION.
    ("text", "citext"),
    ("varchar", "citext"),
    ("citext", "text"),
    ("citext", "varchar"),
}


# Binary-compatible changes that still move indexes on the column to another operator class: the rows stay,
# the indexes are rebuilt (a scan under ACCESS EXCLUSIVE).
_REBUILDS_INDEXES = {pair for pair in _RELABEL if "citext" in pair}


def needs_rewrite(
    old: op.TypeSpec | None,
    new: op.TypeSpec | None,
    using_expression: bool,
    casts: tuple[op.TypeSpec | None, ...] = (),
) -> bool | None:
    """True when the change rewrites the table, False when it is catalog-only, None when zdm cannot tell.

    PostgreSQL keeps the rows only when each new value is the old one relabelled: the column itself, through
    casts that are each binary-coercible or a widening the planner drops (`casts`, then the new type). Any
    other USING expression rewrites every row, and so does a cast through another type such as Prisma's
    `"c"::text::"E"`, even to the type the column already has.
    """
    if using_expression:
        return True
    steps = [_step_rewrites(a, b) for a, b in zip((old, *casts), (*casts, new), strict=True)]
    if True in steps:
        return True
    return None if None in steps else False


def _step_rewrites(old: op.TypeSpec | None, new: op.TypeSpec | None) -> bool | None:
    if old is None or new is None:
        return None
    old_base = _SERIAL_STORAGE.get(old.base, old.base)
    new_base = new.base
    if old.array_dims != new.array_dims:
        return True
    if old_base == new_base and old.params == new.params:
        return False
    if old.array_dims:
        return True
    if old_base == new_base and old_base in _WIDENABLE:
        return not _widens(old_base, old.params, new.params)
    if (old_base, new_base) in _RELABEL:
        return bool(new.params) and new_base == "varchar"
    return True


def _widens(base: str, old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if not new:
        return True
    if not old:
        return False
    if base == "numeric":
        old_scale = old[1] if len(old) > 1 else 0
        new_scale = new[1] if len(new) > 1 else 0
        return new_scale == old_scale and new[0] >= old[0]
    return new[0] >= old[0]


def check(o: op.AlterColumnType, ctx: Context) -> Effect | None:
    new = o.new_type
    if new is not None and new.user_defined and ctx.schema.is_new(new.base) and new.base in ctx.schema.enums:
        return None  # the enum-rebuild rule explains Prisma's enum swap
    effect = _type_change(o, ctx)
    return _refused_under_views(o, ctx, effect) if effect is not None else None


def _type_change(o: op.AlterColumnType, ctx: Context) -> Effect | None:
    new = o.new_type
    previous = ctx.schema.column(o.on, o.column)
    old = previous.type if previous else None
    table, column = quoted(o.on), quoted_name(o.column)
    rewrite = needs_rewrite(old, new, o.using_expression, o.using_casts)
    keys = _foreign_keys(o, ctx, rewrites=bool(rewrite))
    if rewrite is None and ctx.live(o.on):
        return claim(
            ID,
            ctx,
            f"zdm does not know the previous type of {table}.{column}, so it cannot tell whether changing it "
            f"to {new} rewrites the table under ACCESS EXCLUSIVE. Check it by hand.{keys.words}",
            keys.locks,
            table=o.on,
            classification=Classification.UNKNOWN,
        )
    if (
        not rewrite
        and old is not None
        and new is not None
        and ctx.schema.is_indexed(o.on, o.column)
        and (
            _SERIAL_STORAGE.get(old.base, old.base),
            new.base,
        )
        in _REBUILDS_INDEXES
    ):
        # The rows stay, but no index can be moved to the new operator class without reading the table: the
        # online change builds each one CONCURRENTLY on a shadow column instead.
        fix, online = _online(o, ctx, f"{old} to {new}")
        return claim(
            ID,
            ctx,
            f"Changing {table}.{column} from {old} to {new} keeps the rows, but every index on the column is "
            f"rebuilt (new operator class) by reading the whole table under ACCESS EXCLUSIVE.{keys.words}",
            keys.locks,
            scans=[o.on, *keys.scans],
            alternative=(
                "Create the new index concurrently on an expression (e.g. `lower(col)`) instead." + online
            ),
            table=o.on,
            fix=fix,
        )
    if not rewrite:
        return claim(
            ID,
            ctx,
            f"Changing {table}.{column} from {old} to {new} is catalog-only (no rewrite), under a brief ACCESS "
            f"EXCLUSIVE lock.{keys.words}",
            keys.locks,
            table=o.on,
        )
    fix, online = _online(o, ctx, f"{old or 'its previous type'} to {new}")
    if (o.using_expression or o.using_casts) and needs_rewrite(old, new, False) is False:
        same = old is not None and old == new
        return claim(
            ID,
            ctx,
            f"The USING expression computes every value of {table}.{column} anew"
            + (f" (the column is already {new})" if same else f" ({old} to {new} alone would keep the rows)")
            + ": PostgreSQL rewrites the whole table and its indexes while an ACCESS EXCLUSIVE lock blocks every "
            f"read and write.{keys.words}",
            keys.locks,
            rewrites=[o.on],
            scans=[o.on, *keys.scans],
            alternative=(
                f"The column already has type {new}: if USING only converts, drop the statement; if it changes "
                "values, change them with a batched UPDATE instead."
                if same
                else "If USING only converts, drop it: without it the type change is catalog-only. If it changes "
                "values, change them with a batched UPDATE instead."
            )
            + online,
            table=o.on,
            fix=fix,
        )
    return claim(
        ID,
        ctx,
        f"Changing {table}.{column} from {old or 'its previous type'} to {new} rewrites the whole table and its "
        f"indexes while an ACCESS EXCLUSIVE lock blocks every read and write.{keys.words}",
        keys.locks,
        rewrites=[o.on],
        scans=[o.on, *keys.scans],
        alternative=(
            "Where a wider type is enough (varchar(n) to varchar(m > n) or text, numeric(p,s) to numeric(q > p, "
            "s)), use it: it is catalog-only." + online
        ),
        table=o.on,
        fix=fix,
    )


def _online(o: op.AlterColumnType, ctx: Context, what: str) -> tuple[Fix | None, str]:
    """The online column change for a type change that rewrites, and the advice that goes with it."""
    try:
        fix = online_type_change(o, ctx, what)
    except NotOnline as reason:
        return None, (
            " Otherwise expand and contract by hand: a new column of the new type kept in step by a trigger, "
            "a batched backfill, indexes built CONCURRENTLY, then a swap of the columns. zdm writes no automatic "
            f"rewrite for it: {reason}."
        )
    return fix, (
        " Otherwise `zdm fix` writes it as an online column change: a shadow column of the new type kept in "
        "step by a trigger, a batched backfill, every index and constraint on the column built again without "
        "blocking, then one brief step that swaps the columns."
    )


@dataclass(frozen=True)
class _ForeignKeys:
    """What the foreign keys over the column add to a type change, on either side: PostgreSQL rebuilds each
    under ACCESS EXCLUSIVE on the table at its other end as well (measured on 15 and 18), held for as long as
    the change takes. When the referenced column's values are rewritten, every referencing table is read to
    check its key again."""

    locks: list[tuple[str, LockMode]]
    scans: list[str]
    words: str


def _foreign_keys(o: op.AlterColumnType, ctx: Context, *, rewrites: bool) -> _ForeignKeys:
    referenced = ctx.schema.referenced_tables(o.on, o.column)
    referencing = ctx.schema.tables_referencing_column(o.on, o.column)
    until = f"until the rewrite of {quoted(o.on)} finishes" if rewrites else "until the change commits"
    check = (
        (", and reads all of it to check the key", ", and reads each to check its key")
        if rewrites
        else ("", "")
    )
    return _ForeignKeys(
        locks=[(t, LockMode.ACCESS_EXCLUSIVE) for t in (o.on, *referenced, *referencing)],
        scans=referencing if rewrites else [],
        words=also_locks(
            ctx,
            referenced,
            ("the table its foreign key references", "the tables its foreign keys reference"),
            until,
        )
        + also_locks(
            ctx,
            referencing,
            (
                "whose foreign key references the column" + check[0],
                "whose foreign keys reference the column" + check[1],
            ),
            until,
        ),
    )


def _refused_under_views(o: op.AlterColumnType, ctx: Context, effect: Effect) -> Effect:
    """PostgreSQL refuses to change the type of a column a view or materialized view reads (`cannot alter type
    of a column used by a view or rule`). Where zdm knows the view reads the column, the migration fails;
    where it knows only that a view reads the table, it says so."""
    certain, possible = ctx.schema.views_reading_column(o.on, o.column)
    table, column = quoted(o.on), quoted_name(o.column)
    if certain:
        names = ", ".join(quoted(v) for v in certain)
        reads = "reads" if len(certain) == 1 else "read"
        drops = "\n".join(
            f"DROP {'MATERIALIZED ' if v in ctx.schema.materialized_views else ''}VIEW {quoted(v)};"
            for v in certain
        )
        return replace(
            effect,
            message=(
                f'PostgreSQL refuses this change: {names} {reads} {table}.{column} ("cannot alter type of a column '
                'used by a view or rule"), so `prisma migrate deploy` fails here. Without the view: '
                + effect.message
            ),
            safe_alternative=(
                "Drop the view before the type change and create it again after it, in the same migration "
                "(Prisma does not manage views: write both by hand):\n"
                f"{drops}\n-- the type change\n-- CREATE VIEW ... AS ... again, as it was\n"
                "With the drops right before the change, `zdm fix` can write it as an online column change "
                "that runs them in its swap: the view stays readable until then."
            ),
            fails_migration=True,
        )
    if possible:
        names = ", ".join(quoted(v) for v in possible)
        one = len(possible) == 1
        return replace(
            effect,
            message=(
                f"{effect.message} This may fail if a view reads the column: {names} "
                f"{'reads' if one else 'read'} {table}, and zdm cannot tell which columns; PostgreSQL refuses "
                f"to change the type of a column a view reads. If {'it reads' if one else 'one reads'} "
                f"{column}, drop the view before the change and create it again after it."
            ),
        )
    return effect


_SESSION = """
CREATE TABLE "Session" ("id" TEXT NOT NULL, "userId" INTEGER NOT NULL, CONSTRAINT "Session_pkey" PRIMARY KEY ("id"));
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");
"""
_CODES = """
CREATE TABLE "Account" ("code" VARCHAR(10) NOT NULL, CONSTRAINT "Account_pkey" PRIMARY KEY ("code"));
CREATE TABLE "Ref" ("id" INTEGER NOT NULL, "code" VARCHAR(10));
ALTER TABLE "Ref" ADD CONSTRAINT "Ref_code_fkey" FOREIGN KEY ("code") REFERENCES "Account"("code");
"""
_EVENTS = PARTITIONED_SETUP + EVENT_USER_FKEY
# Views over "User" whose columns zdm cannot tell (a sub-select's unqualified names, `e.*` of a sub-select):
# neither reads "score".
_UNREADABLE_VIEWS = """
CREATE VIEW "TopTippers" AS SELECT u."email", t."tips" FROM "User" u
    JOIN (SELECT "userId", count(*) AS "tips" FROM "Tip" GROUP BY "userId") t ON t."userId" = u."id";
CREATE MATERIALIZED VIEW "Emails" AS SELECT e.* FROM (SELECT "id", "email" FROM "User") e;
CREATE UNIQUE INDEX "Emails_id_key" ON "Emails"("id");
"""
_USER_EMAILS = 'CREATE VIEW "UserEmails" AS SELECT "id", "email" FROM "User";'

RULE = Rule(
    id=ID,
    title="Column type change",
    summary="`ALTER COLUMN ... TYPE` rewrites the table unless the new type is a binary-compatible widening.",
    why=(
        "Most type changes (int to bigint, text to varchar(n), timestamp to timestamptz) rewrite every row and "
        "rebuild every index while holding ACCESS EXCLUSIVE. A few are catalog-only: varchar(n) to a longer "
        "varchar or text, numeric(p,s) to a larger precision with the same scale, a longer timestamp precision. "
        "zdm judges the change against the column's type from earlier migrations. A USING clause keeps the rows "
        "only when it is the column itself, through binary-coercible casts; any other expression (a function, "
        'a cast through text such as `"c"::text::"E"`) rewrites the table, even when the column already has the '
        "new type (an enum renamed earlier in the file). A foreign key over the column is rebuilt with it: the "
        "table at its other end is locked ACCESS EXCLUSIVE for as long as the change takes (changing "
        '"Session"."userId" stops every query on "User" during the rewrite of "Session"), and when the '
        "referenced column is rewritten, each referencing table is read to check its key again. PostgreSQL "
        "refuses to change the type of a column a view or materialized view reads (`SELECT *` reads every "
        "column the table had when the view was created): `prisma migrate deploy` fails."
    ),
    instead=(
        "Pick a binary-compatible widening when one exists: it is catalog-only, and zdm says so (a USING that is "
        "the column itself, through binary-coercible casts, keeps the rows too). Drop the views that read the "
        "column before the change and create them again after it, in the same migration.\n\n"
        + WHAT_ZDM_FIX_WRITES
        + "\n\n"
        + KEPT_AS_WRITTEN
    ),
    operations=(op.AlterColumnType,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "amount" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE VARCHAR(20);',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE TEXT;', Classification.BRIEF, STANDARD_SETUP
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(20);',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "price" SET DATA TYPE DECIMAL(12,2);',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "price" SET DATA TYPE DECIMAL(12,4);',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "createdAt" SET DATA TYPE TIMESTAMPTZ(3);',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "createdAt" SET DATA TYPE TIMESTAMP(6);',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "amount" SET DATA TYPE TEXT USING ("amount"::text);',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TYPE "Role" RENAME TO "UserRole";\n'
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "UserRole" USING ("role"::text::"UserRole");',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="enum renamed earlier: same type, cast through text",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role" USING "role"::text::"Role";',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="same type, cast through text",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role" USING "role"::"Role";',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="same type, USING the column",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET DATA TYPE TEXT USING lower("bio");',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="same type, USING a function",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET DATA TYPE TEXT USING "bio"::varchar;',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="same type, binary-coercible casts",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE TEXT USING "name"::text;',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(80) USING "name"::text::varchar(80);',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="a widening, but cast through text",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "createdAt" SET DATA TYPE TIMESTAMPTZ(3) USING "createdAt" AT TIME ZONE '
            "'UTC';",
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="a NOT NULL column with a default, USING AT TIME ZONE: zdm fix writes an online column change",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "discordId" SET DATA TYPE INTEGER USING ("discordId"::integer);',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="text to integer with USING",
        ),
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE VARCHAR(5);',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="an indexed column: its index is built again CONCURRENTLY on the new column",
        ),
        Example(
            'ALTER TABLE "Session" ALTER COLUMN "userId" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP + _SESSION,
            title="a foreign key column: the referenced table is locked for the whole rewrite",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "id" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="a referenced column: each referencing table is locked and read to check its key",
        ),
        Example(
            'ALTER TABLE "Ref" ALTER COLUMN "code" SET DATA TYPE VARCHAR(20);',
            Classification.BRIEF,
            STANDARD_SETUP + _CODES,
            title="a catalog-only change of a foreign key column still locks the referenced table",
        ),
        Example(
            'ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE VARCHAR(20);',
            Classification.BRIEF,
            STANDARD_SETUP + _CODES,
            title="a catalog-only change of a referenced column locks the referencing table, reads nothing",
        ),
        Example(
            'ALTER TABLE "Node" ALTER COLUMN "parentId" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP
            + 'CREATE TABLE "Node" ("id" INTEGER NOT NULL, "parentId" INTEGER, CONSTRAINT "Node_pkey" PRIMARY KEY ("id"));\n'
            'ALTER TABLE "Node" ADD CONSTRAINT "Node_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Node"("id");',
            title="a foreign key to its own table",
        ),
        Example(
            'ALTER TABLE "Event" ALTER COLUMN "userId" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP + _EVENTS,
            title="a partitioned table: every partition is locked and rewritten, and the referenced table locked",
        ),
        Example(
            'ALTER TABLE "Event" ALTER COLUMN "kind" SET DATA TYPE VARCHAR(20);',
            Classification.BLOCKING,
            STANDARD_SETUP + _EVENTS,
            title="a partitioned table: the rows are the partitions'",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "email" SET DATA TYPE VARCHAR(100);',
            Classification.BLOCKING,
            STANDARD_SETUP + 'CREATE VIEW "UserEmails" AS SELECT "id", "email" FROM "User";',
            title="a column a view reads: PostgreSQL refuses the change",
            refused_with="cannot alter type of a column used by a view or rule",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET DATA TYPE VARCHAR(100);',
            Classification.BLOCKING,
            STANDARD_SETUP + 'CREATE VIEW "AllUsers" AS SELECT * FROM "User";',
            title="SELECT * reads every column the table had when the view was created",
            refused_with="cannot alter type of a column used by a view or rule",
        ),
        Example(
            'ALTER TABLE "Tip" ALTER COLUMN "userId" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="a column a materialized view reads: PostgreSQL refuses the change",
            refused_with="cannot alter type of a column used by a view or rule",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET DATA TYPE VARCHAR(100);',
            Classification.BLOCKING,
            STANDARD_SETUP + _USER_EMAILS,
            title="a column no view reads",
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "score" SET DATA TYPE BIGINT;',
            Classification.BLOCKING,
            STANDARD_SETUP + _UNREADABLE_VIEWS,
            title="views over the table whose columns zdm cannot tell: zdm fix leaves them as they are, and its "
            "first step fails as this would if one read the column",
        ),
        Example(
            'DROP VIEW "UserEmails";\n'
            'ALTER TABLE "User" ALTER COLUMN "email" SET DATA TYPE VARCHAR(100);\n' + _USER_EMAILS,
            Classification.BLOCKING,
            STANDARD_SETUP + _USER_EMAILS,
            title="the view over the column dropped before the change and created again after it: zdm fix drops "
            "it in the swap",
        ),
    ),
)
