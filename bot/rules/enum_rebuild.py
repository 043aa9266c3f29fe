"""enum-rebuild: Prisma's enum value removal (`X_new` type swap) rewrites every table using the enum."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name
from bot.rules.online_column import KEPT_AS_WRITTEN, WHAT_ZDM_FIX_WRITES, NotOnline, online_type_change

ID = "enum-rebuild"


def check(o: op.AlterColumnType, ctx: Context) -> Effect | None:
    new = o.new_type
    if (
        new is None
        or not new.user_defined
        or not ctx.schema.is_new(new.base)
        or new.base not in ctx.schema.enums
    ):
        return None
    try:
        fix = online_type_change(o, ctx, f"the rebuilt enum {quoted(new.base)}")
        online = (
            " Or let `zdm fix` write it as an online column change: a shadow column of the new enum kept in "
            "step by a trigger, a batched backfill, indexes built again CONCURRENTLY, then one brief step that "
            "swaps the columns; Prisma's renames and DROP TYPE follow as written."
        )
    except NotOnline as reason:
        fix, online = None, f" zdm writes no automatic rewrite for it: {reason}."
    return claim(
        ID,
        ctx,
        f"Moving {quoted(o.on)}.{quoted_name(o.column)} to the rebuilt enum {quoted(new.base)} rewrites the table "
        "under ACCESS EXCLUSIVE: this is how Prisma removes an enum value, and every table using the enum "
        "pays for it.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        rewrites=[o.on],
        scans=[o.on],
        breaking=True,
        alternative=(
            "Keep the old value in the database enum (remove it from the Prisma schema's usage only, or leave "
            "it unused), and forbid it with `CHECK (col <> 'OLD') NOT VALID` + `VALIDATE CONSTRAINT` if needed."
            + online
        ),
        table=o.on,
        fix=fix,
    )


RULE = Rule(
    id=ID,
    title="Enum value removed by rebuilding the type",
    summary="Prisma removes an enum value by creating `X_new` and converting every column: a full rewrite of each table.",
    why=(
        "PostgreSQL cannot drop a value from an enum, so Prisma creates a new type, converts every column "
        'with `USING (col::text::"X_new")`, and swaps the names. Each conversion rewrites its table under '
        "ACCESS EXCLUSIVE, and code still writing the removed value fails."
    ),
    instead=(
        "Leave the value in the database type; stop writing it in code. If it must be forbidden, add a "
        "`CHECK ... NOT VALID` constraint and validate it separately.\n\n"
        "When the value must go, each column's conversion can be done online. "
        + WHAT_ZDM_FIX_WRITES
        + "\n\nPrisma drops an enum column's default before the conversion and sets it after: in the online "
        "change the old column gets it back in the expand step, so inserts that leave the column out keep "
        "working until the swap. Code still writing the removed value fails from the expand step on (the "
        "trigger cannot convert it), as it would after Prisma's rebuild: deploy the code that stops writing it "
        "first.\n\n" + KEPT_AS_WRITTEN
    ),
    operations=(op.AlterColumnType,),
    check=check,
    examples=(
        Example(
            "CREATE TYPE \"Role_new\" AS ENUM ('USER');\n"
            'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\n'
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'ALTER TYPE "Role" RENAME TO "Role_old";\n'
            'ALTER TYPE "Role_new" RENAME TO "Role";\n'
            'DROP TYPE "Role_old";\n'
            'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\';',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            "BEGIN;\n"
            "CREATE TYPE \"Role_new\" AS ENUM ('USER');\n"
            'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\n'
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'DROP TYPE "Role";\n'
            'ALTER TYPE "Role_new" RENAME TO "Role";\n'
            'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\';\n'
            "COMMIT;",
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="old type dropped, then the new one renamed",
        ),
        Example(
            "CREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\n"
            'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\n'
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'ALTER TABLE "Member" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'ALTER TYPE "Role" RENAME TO "Role_old";\n'
            'ALTER TYPE "Role_new" RENAME TO "Role";\n'
            'DROP TYPE "Role_old";\n'
            'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\';',
            Classification.BLOCKING,
            STANDARD_SETUP
            + 'CREATE TABLE "Member" ("id" SERIAL NOT NULL, "role" "Role", CONSTRAINT "Member_pkey" PRIMARY KEY ("id"));\n'
            'CREATE INDEX "Member_role_idx" ON "Member"("role");',
            title="an enum used by two tables, one column indexed: zdm fix changes each column online",
        ),
    ),
)
