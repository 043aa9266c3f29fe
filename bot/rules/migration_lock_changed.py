"""migration-lock-changed: the provider in migration_lock.toml changes, or the file goes."""

from __future__ import annotations

from bot.analysis.history import RootHistory
from bot.rules.base import HistoryExample, HistoryRule

ID = "migration-lock-changed"


def check_history(history: RootHistory) -> list[tuple[str, int | None, str, str]]:
    # bot.analysis.roots imports the engine, which imports the rule registry: read it when the rule runs.
    from bot.analysis.roots import provider_of

    path = history.lock_path
    before, after = history.base_files.get(path), history.head_files.get(path)
    if before is None:
        return []  # a new root: nothing was applied with another provider
    old, new = provider_of(before), provider_of(after)
    if old == new:
        return []
    restore = (
        f'Restore `{path}` with `provider = "{old}"`' if old not in ("unknown", "missing") else "Revert it"
    )
    if after is None:
        kept = f" while `{history.root}` keeps its migrations" if history.head else ""
        return [
            (
                path,
                None,
                f"`{path}` is deleted{kept}. Prisma compares the "
                "provider of the migrations folder with the schema's datasource before it runs anything; "
                "without the lock file the next `prisma migrate dev` writes a new one for whatever provider the "
                "schema names, so nothing stops migrations written for "
                f"{old} from being run against another database.",
                f"{restore}. Moving to another database is a new migration history (a new folder, baselined "
                "with `prisma migrate diff` and `prisma migrate resolve --applied`), not an edit of this one.",
            )
        ]
    return [
        (
            path,
            _provider_line(after),
            f"The provider of `{history.root}` changes from `{old}` to `{new}`. Its migrations were written for "
            f"{old}: `prisma migrate deploy` and `prisma migrate dev` refuse to run them against a schema whose "
            "datasource says otherwise (P3019), and the SQL already applied cannot be replayed on the other "
            "database.",
            f"{restore}. Moving to another database is a new migration history (a new folder, baselined with "
            "`prisma migrate diff` and `prisma migrate resolve --applied`), not an edit of this one.",
        )
    ]


def _provider_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("provider"):
            return number
    return 1


_MIGRATIONS = {"20240101000000_init": 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY);\n'}
_LOCK = "prisma/migrations/migration_lock.toml"

RULE = HistoryRule(
    id=ID,
    title="The migrations' provider changed",
    summary="The provider in `migration_lock.toml` changes between the base commit and the head, or the file is deleted.",
    why=(
        "`migration_lock.toml` records which database the migrations folder was written for. Prisma checks it "
        "against the schema's datasource and refuses to go on when they differ (P3019, \"The datasource "
        'provider ... specified in your schema does not match the one specified in the migration_lock.toml"): '
        "deploys stop. Editing or deleting the file only hides that the SQL in the folder was written for the "
        "old database, and the databases that applied it still hold what it built."
    ),
    instead=(
        "Keep the lock file as it is. Moving to another database starts a new migration history: a new "
        "migrations folder with one baseline migration (`prisma migrate diff --from-empty --to-schema-datamodel "
        "prisma/schema.prisma --script`), marked applied where the schema already exists (`prisma migrate "
        "resolve --applied <name>`)."
    ),
    check_history=check_history,
    examples=(
        HistoryExample(
            "postgresql to cockroachdb",
            base=_MIGRATIONS,
            head=_MIGRATIONS,
            base_files={_LOCK: 'provider = "postgresql"\n'},
            head_files={_LOCK: 'provider = "cockroachdb"\n'},
        ),
        HistoryExample(
            "the lock file deleted",
            base=_MIGRATIONS,
            head=_MIGRATIONS,
            base_files={_LOCK: 'provider = "postgresql"\n'},
        ),
    ),
)
