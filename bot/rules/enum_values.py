"""enum-values: adding an enum value is safe; renaming one breaks running code."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "enum-values"


def check(o: op.AddEnumValue | op.RenameEnumValue, ctx: Context) -> Effect:
    if isinstance(o, op.AddEnumValue):
        return claim(
            ID,
            ctx,
            f"Adding {o.value!r} to enum {quoted(o.type_name)} locks no table. The new value cannot be used in "
            "the same transaction (before Prisma 7.4, the same migration file).",
            {},
        )
    return claim(
        ID,
        ctx,
        f"Renaming enum value {o.value!r} to {o.new_value!r} locks no table, but the running application "
        f"still reads and writes {o.value!r} and fails on it until the new code is deployed.",
        {},
        breaking=True,
        table=o.type_name,
        alternative="Add the new value, deploy code that writes it, migrate rows in batches, then stop using the old one.",
    )


RULE = Rule(
    id=ID,
    title="Enum values added or renamed",
    summary="`ALTER TYPE ... ADD VALUE` is safe; `RENAME VALUE` breaks code still using the old value.",
    why=(
        "Adding a value only touches the catalog. Renaming one is instant too, but the value is part of the "
        "application's contract: the running version sends the old spelling."
    ),
    instead="Add the new value; migrate data and code to it; keep the old value until nothing uses it.",
    operations=(op.AddEnumValue, op.RenameEnumValue),
    check=check,
    examples=(
        Example("ALTER TYPE \"Role\" ADD VALUE 'OWNER';", Classification.SAFE, STANDARD_SETUP),
        Example("ALTER TYPE \"Role\" RENAME VALUE 'ADMIN' TO 'SUPER';", Classification.SAFE, STANDARD_SETUP),
    ),
)
