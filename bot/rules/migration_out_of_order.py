"""migration-out-of-order: a new migration sorts before the latest migration of the base commit."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timedelta

from bot.analysis.history import RootHistory
from bot.analysis.prisma import prisma_order
from bot.rules.base import HistoryExample, HistoryRule
from bot.rules.migration_edited import renames

ID = "migration-out-of-order"

# `prisma migrate dev` names folders `YYYYMMDDHHMMSS_<name>` (UTC); other numbered schemes keep their width.
_PREFIX = re.compile(r"^(?P<digits>\d+)(?:_|$)")
_TIMESTAMP = "%Y%m%d%H%M%S"


def _name_part(folder: str) -> str:
    match = _PREFIX.match(folder)
    return folder[match.end() :] if match else folder


def _next_prefix(latest: str) -> str | None:
    """A numeric prefix that sorts after `latest`'s, in its format; None when `latest` has none."""
    match = _PREFIX.match(latest)
    if match is None:
        return None
    digits = match.group("digits")
    if len(digits) == 14:
        try:
            return (datetime.strptime(digits, _TIMESTAMP) + timedelta(seconds=1)).strftime(_TIMESTAMP)
        except ValueError:
            pass  # not a real date: count on
    return str(int(digits) + 1).zfill(len(digits))


def name_after(latest: str, folder: str, taken: Collection[str]) -> str:
    """`folder` renamed to sort after `latest` (Prisma's byte-wise order), its own name kept: the next timestamp
    after `latest`'s, or `latest` extended when it has no number to count from. Never a name in `taken`."""
    name = _name_part(folder) or folder
    candidate = latest
    while True:
        prefix = _next_prefix(candidate)
        candidate = f"{prefix}_{name}" if prefix is not None else f"{candidate}_{name}"
        if candidate not in taken and prisma_order(candidate) > prisma_order(latest):
            return candidate


def check_history(history: RootHistory) -> list[tuple[str, int | None, str, str]]:
    if not history.base:
        return []
    latest = max(history.base, key=prisma_order)
    renamed = renames(history)  # reported by migration-edited, with their own fix
    hazards: list[tuple[str, int | None, str, str]] = []
    taken = set(history.head) | set(history.base)
    after = latest
    for folder in history.added:
        if prisma_order(folder) > prisma_order(latest) or folder in renamed:
            continue
        suggested = name_after(after, folder, taken)
        taken.add(suggested)
        after = suggested
        hazards.append(
            (
                history.migration_path(folder),
                1,
                f"`{folder}` is new but sorts before `{latest}`, the latest migration at the base commit. "
                "Prisma applies migrations in the order of their folder names: a database that already "
                f"applied `{latest}` applies this one after it, while a fresh database (and zdm's replay) runs "
                "it before. The two can end up with different schemas, or it fails on one of them.",
                f"Rename the folder to `{suggested}` so it sorts last, and check it still does what it should "
                f"after `{latest}`.",
            )
        )
    return hazards


_INIT = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);\n'
_LATER = 'ALTER TABLE "User" ADD COLUMN "name" TEXT;\n'
_BRANCH = 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'

RULE = HistoryRule(
    id=ID,
    title="A new migration sorts before an applied one",
    summary="A new migration folder sorts before the latest migration folder of the base commit.",
    why=(
        "Prisma applies the migrations it has not applied yet in the order of their folder names. A branch "
        "that created its migration before another one reached the base branch gets a folder name that sorts "
        "before it. Production, which already applied the later migration, runs the new one last; a fresh "
        "database, a CI database and zdm's own replay run it in folder order. The two orders can disagree about "
        "the schema (a column one migration adds and the other drops or relies on), and "
        "`prisma migrate dev` reports the history as diverged."
    ),
    instead=(
        "Rename the new folder with a timestamp after the latest migration of the base branch (zdm names one), "
        "or recreate it: delete the folder and run `npx prisma migrate dev` again after merging the base branch."
    ),
    check_history=check_history,
    examples=(
        HistoryExample(
            "a branch's migration, older than the one merged meanwhile",
            base={"20240101000000_init": _INIT, "20240301000000_user_name": _LATER},
            head={
                "20240101000000_init": _INIT,
                "20240201000000_email_index": _BRANCH,
                "20240301000000_user_name": _LATER,
            },
        ),
        HistoryExample(
            "a new migration after the latest: in order",
            base={"20240101000000_init": _INIT},
            head={"20240101000000_init": _INIT, "20240201000000_email_index": _BRANCH},
            hazards=0,
        ),
    ),
)
