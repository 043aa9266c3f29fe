"""GitHub's merge queue as zdm sees it (pure): which pull requests a merge group holds, and which of them
changed each file.

GitHub builds a merge group as commits on top of the base branch, one step per queued pull request, on a
read-only branch `gh-readonly-queue/<base>/pr-<number>-<sha>` named after the last pull request added. The
group's pull requests are found without asking GitHub where the commits say them:

- the branch name gives the last one;
- a merge commit's message starts `Merge pull request #N from ...` (the "merge" method);
- a squashed commit's first line ends `(#N)` (the "squash" method, GitHub's default title).

Commits replayed by the "rebase" method keep their authors' messages, which name no pull request: the worker
asks GitHub which pull requests hold those commits, only while a changed file is still unaccounted for.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

QUEUE_REF = re.compile(r"(?:^|/)gh-readonly-queue/.+/pr-(?P<number>[0-9]+)-[0-9a-f]+$")
_MERGED = re.compile(r"^Merge pull request #(?P<number>[0-9]+) from \S")
_SQUASHED = re.compile(r"\(#(?P<number>[0-9]+)\)$")


def queued_pull(head_ref: str) -> int | None:
    """The pull request whose queueing made this group: the number in its branch's name."""
    match = QUEUE_REF.search(head_ref.strip())
    return int(match.group("number")) if match else None


def pull_named(message: str) -> int | None:
    """The pull request a merge queue's commit says it brings in, from the commit message's first line."""
    first = message.strip().split("\n", 1)[0].strip()
    match = _MERGED.match(first) or _SQUASHED.search(first)
    return int(match.group("number")) if match else None


def group_pulls(head_ref: str, messages: Iterable[str]) -> list[int]:
    """The pull requests a group's branch name and commit messages name, oldest in the queue first."""
    numbers = [n for n in (pull_named(m) for m in messages) if n is not None]
    last = queued_pull(head_ref)
    if last is not None:
        numbers.append(last)
    return list(dict.fromkeys(numbers))


def origins(paths: Iterable[str], pulls: Mapping[int, Iterable[str]]) -> dict[str, tuple[int, ...]]:
    """For each path the group changes, the group's pull requests that change it (none: not found)."""
    changed_by: dict[str, list[int]] = {}
    for number in sorted(pulls):
        for path in pulls[number]:
            changed_by.setdefault(path, []).append(number)
    return {path: tuple(changed_by.get(path, ())) for path in paths}


def root_changes(root: str, base: Mapping[str, str] | None, head: Mapping[str, str] | None) -> dict[str, str]:
    """The migration files of one root that differ between two commits, as GraphQL names the change (`ADDED`,
    `MODIFIED`, `DELETED`): read from the root's trees, so a comparison's file list (GitHub stops at 300 files)
    cannot hide one."""
    before, after = base or {}, head or {}
    found: dict[str, str] = {}
    for folder in sorted({*before, *after}):
        if before.get(folder) == after.get(folder):
            continue
        kind = "ADDED" if folder not in before else "DELETED" if folder not in after else "MODIFIED"
        found[posixpath.join(root, folder, "migration.sql")] = kind
    return found
