"""migration-edited: a change edits, renames or deletes a migration that exists at the base commit."""

from __future__ import annotations

import re

from bot.analysis.history import RootHistory
from bot.analysis.prisma import prisma_order
from bot.rules.base import HistoryExample, HistoryRule

ID = "migration-edited"

# Prisma's folder names: `<timestamp>_<name>`; what follows the digits names the migration.
_NUMBERED = re.compile(r"^\d+_")
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def checksum_matches(applied: str, current: str) -> bool:
    """Whether Prisma still finds `current` to be the migration it applied as `applied`.

    Prisma stores the SHA-256 of migration.sql's text and accepts the file when that checksum matches its text,
    its text with CRLF turned into LF, or with LF turned into CRLF (prisma-engines, schema engine,
    `checksum.rs`: `script_matches_checksum`): a switch of line endings is not an edit, anything else is.
    """
    return applied in (current, current.replace("\r\n", "\n"), current.replace("\n", "\r\n"))


def _significant(sql: str) -> list[tuple[str, str]]:
    """The file's tokens without comments or whitespace (what PostgreSQL would run)."""
    from sqlglot.dialects.postgres import Postgres
    from sqlglot.errors import SqlglotError

    try:
        return [(token.token_type.name, token.text) for token in Postgres().tokenizer().tokenize(sql)]
    except (SqlglotError, ValueError, IndexError):
        return [("text", word) for word in _SQL_COMMENT.sub(" ", sql).split()]


def only_comments_or_whitespace(before: str, after: str) -> bool:
    return _significant(before) == _significant(after)


def first_changed_line(before: str, after: str) -> int:
    """The first line of `after` that differs from `before` (1-based, within `after`)."""
    old, new = before.splitlines(), after.splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), 1):
        if a != b:
            return number
    return max(1, min(len(old), len(new)) + (1 if len(new) > len(old) else 0))


def _name(folder: str) -> str:
    return _NUMBERED.sub("", folder, count=1)


def _renames(history: RootHistory) -> dict[str, tuple[str, bool]]:
    """Added folder -> (the removed folder it is, whether its SQL changed too): same text under a new name
    first, then the same migration name under a new timestamp."""
    removed = list(history.removed)
    found: dict[str, tuple[str, bool]] = {}
    for folder in history.added:
        same = next(
            (old for old in removed if checksum_matches(history.base[old], history.head[folder])), None
        )
        if same is not None:
            found[folder] = (same, False)
            removed.remove(same)
    for folder in history.added:
        if folder in found:
            continue
        same = next((old for old in removed if _name(old) == _name(folder) and _name(old)), None)
        if same is not None:
            found[folder] = (same, True)
            removed.remove(same)
    return found


_APPLIED = "Prisma records each applied migration by folder name with a SHA-256 checksum of its migration.sql"
_NEW_MIGRATION = (
    "put the change in a new migration (`npx prisma migrate dev --create-only --name <name>` writes one that "
    "sorts after the latest)"
)


def renames(history: RootHistory) -> dict[str, str]:
    """Added folder -> the folder at the base commit it renames (other history rules leave renames to this one)."""
    return {new: old for new, (old, _) in _renames(history).items()}


def check_history(history: RootHistory) -> list[tuple[str, int | None, str, str]]:
    hazards: list[tuple[str, int | None, str, str]] = []
    if history.base and not history.head:
        first = history.removed[0]
        hazards.append(
            (
                history.migration_path(first),
                None,
                f"Every migration of `{history.root}` ({len(history.base)}) is deleted. {_APPLIED}: "
                "databases that applied them keep their tables, and `prisma migrate dev` reports them missing "
                "from the migrations folder and asks to reset the database.",
                f"Restore `{history.root}` as it was at the base commit. If the migrations moved to another "
                "folder, keep the folder names and their SQL exactly as they were.",
            )
        )
        return hazards
    renamed = _renames(history)
    renamed_from = {old for old, _ in renamed.values()}
    for folder in history.edited:
        before, after = history.base[folder], history.head[folder]
        if checksum_matches(before, after):
            continue
        cosmetic = only_comments_or_whitespace(before, after)
        message = (
            f"`{folder}` exists at the base commit and this change edits it. {_APPLIED}: databases that "
            "already applied it never run the edit, `prisma migrate deploy` only warns that it was modified "
            "after it was applied, and `prisma migrate dev` asks to reset the database."
        )
        if cosmetic:
            message += (
                " Only comments or whitespace changed, but the checksum covers the file's exact text (only a "
                "switch between LF and CRLF line endings is ignored): this still counts as an edit."
            )
        fix = "Revert the edit" + (
            "." if cosmetic else f" (restore the file as it was at the base commit) and {_NEW_MIGRATION}."
        )
        hazards.append((history.migration_path(folder), first_changed_line(before, after), message, fix))
    for folder, (old, changed) in sorted(renamed.items(), key=lambda item: prisma_order(item[0])):
        edited = ", and its SQL changed too" if changed else ""
        hazards.append(
            (
                history.migration_path(folder),
                1,
                f"`{folder}` is renamed from `{old}`{edited}. {_APPLIED}: every database that applied "
                f"`{old}` runs this one again as a new migration (it fails where it creates what already "
                "exists, P3018, and blocks later deploys), and `prisma migrate dev` reports "
                f"`{old}` missing from the migrations folder.",
                f"Rename the folder back to `{old}`"
                + (f" and revert the edit; {_NEW_MIGRATION}." if changed else ".")
                + " What must run after a later migration goes in a new migration.",
            )
        )
    for folder in history.removed:
        if folder in renamed_from:
            continue
        path = history.migration_path(folder)
        hazards.append(
            (
                path,
                None,
                f"`{folder}` exists at the base commit and this change deletes it. {_APPLIED}: databases that "
                "applied it keep what it did while a fresh database no longer gets it, and `prisma migrate "
                "dev` reports it missing from the migrations folder and asks to reset the database.",
                f"Restore `{path}` as it was at the base commit (`git checkout <base> -- {path}`); to undo what "
                "it did, write a new migration that reverses it.",
            )
        )
    return hazards


_INIT = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);\n'
_INDEX = 'CREATE INDEX "User_email_idx" ON "User"("email");\n'

RULE = HistoryRule(
    id=ID,
    title="An applied migration edited, renamed or deleted",
    summary="A change edits, renames or deletes a `migration.sql` that exists at the base commit.",
    why=(
        "Prisma records every applied migration in `_prisma_migrations` by folder name, with a SHA-256 checksum "
        "of its `migration.sql`. A database that already applied a migration never runs it again: an edit "
        "reaches fresh databases only, so production and a new environment end up with different schemas, and "
        "zdm's own replay judges later migrations against a schema production does not have. `prisma migrate "
        "dev` finds the checksum changed (or the migration missing) and asks to reset the development database. "
        "A renamed folder is a new migration to Prisma: databases that applied the old name run it again. "
        "Comments and whitespace count too: the checksum is of the file's exact text (only a switch between LF "
        "and CRLF line endings is ignored)."
    ),
    instead=(
        "Leave migrations that exist on the base branch exactly as they are, and put every change in a new "
        "migration that sorts after the latest one (`npx prisma migrate dev --create-only --name <name>`). "
        "A migration nobody applied yet (created on this branch) is free to change: zdm only looks at the ones "
        "the base commit already has."
    ),
    check_history=check_history,
    examples=(
        HistoryExample(
            "an index added to an applied migration",
            base={"20240101000000_init": _INIT},
            head={"20240101000000_init": _INIT + _INDEX},
        ),
        HistoryExample(
            "a comment added to an applied migration",
            base={"20240101000000_init": _INIT},
            head={"20240101000000_init": "-- Users.\n" + _INIT},
        ),
        HistoryExample(
            "an applied migration renamed",
            base={"20240101000000_init": _INIT},
            head={"20240301000000_init": _INIT},
        ),
        HistoryExample(
            "line endings switched to CRLF: the same checksum to Prisma",
            base={"20240101000000_init": _INIT},
            head={"20240101000000_init": _INIT.replace("\n", "\r\n")},
            hazards=0,
        ),
    ),
)
