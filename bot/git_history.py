"""The history of each migrations root a change touches, for `zdm check --base REF`: the root at the merge base
(read from git) and in the working tree, as the history rules read it (`bot.analysis.history.RootHistory`).

A root is touched when the change adds, edits or deletes one of its migrations, its `migration_lock.toml`, or
a `*.prisma` file of its schema; package files are read for the rules but touch nothing on their own (a
dependency bump is not a schema change).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.history import PACKAGE_FILES, RootHistory, history_files, is_schema_path
from bot.analysis.prisma import LOCK_FILE, MIGRATION_FILE, lock_file_path, package_directories
from bot.analysis.roots import find_roots, provider_of, read_sql
from bot.analysis.snapshot import migration_root_of
from bot.git_changes import Changes, blobs_at

_SKIP_DIRS = {".git", "node_modules"}


def touched_histories(changes: Changes, targets: Iterable[Path], config: RepoConfig) -> list[RootHistory]:
    """One `RootHistory` per PostgreSQL root under `targets` that the change touches, in path order."""
    top = changes.top
    if top is None:
        return []
    changed = sorted(
        path.relative_to(top).as_posix()
        for path in (*changes.paths, *changes.deleted)
        if path.is_relative_to(top)
    )
    roots: set[str] = set()
    for path in changed:
        found = migration_root_of(path)
        if found is not None:
            roots.add(found[0])
        if posixpath.basename(path) == LOCK_FILE:
            roots.add(posixpath.dirname(path))
    schemas = [path for path in changed if path.endswith(".prisma")]
    if schemas:
        # Which roots a schema file belongs to: only the roots know (it lies under their parent directory).
        known = {_relative(root.path, top) for root in find_roots(top)} | roots
        roots |= {root for root in known for path in schemas if is_schema_path(root, path)}
    wanted_targets = [target.resolve() for target in targets]
    histories = []
    for root in sorted(roots):
        absolute = top / root
        if not config.wants_root(root) or not any(_related(absolute, target) for target in wanted_targets):
            continue
        history = read_history(top, changes.merge_base, root, config)
        base_lock = history.base_files.get(history.lock_path)
        head_lock = history.head_files.get(history.lock_path)
        if base_lock is None and head_lock is None:
            continue  # not a migrations root at either commit
        if "postgresql" not in (provider_of(base_lock), provider_of(head_lock)):
            continue
        histories.append(history)
    return histories


def _relative(path: Path, top: Path) -> str:
    relative = path.resolve().relative_to(top).as_posix()
    return "" if relative == "." else relative


def _related(root: Path, target: Path) -> bool:
    return root == target or root.is_relative_to(target) or target.is_relative_to(root)


def read_history(top: Path, merge_base: str, root: str, config: RepoConfig) -> RootHistory:
    parent = posixpath.dirname(root)
    packages = [
        posixpath.join(directory, name) for directory in package_directories(root) for name in PACKAGE_FILES
    ]
    prefix = f"{root}/" if root else ""

    def at_base(path: str) -> bool:
        if path.startswith(prefix) and path.count("/") == prefix.count("/") + 1:
            return path.endswith("/" + MIGRATION_FILE)
        return path in packages or path == lock_file_path(root) or is_schema_path(root, path)

    base_texts = blobs_at(top, merge_base, [parent, *packages] if parent else [], at_base)
    base: dict[str, str] = {}
    base_other: dict[str, str | None] = {}
    for path, text in base_texts.items():
        found = migration_root_of(path)
        if found is not None and found[0] == root:
            base[found[1]] = text
        else:
            base_other[path] = text
    return RootHistory(
        root,
        base,
        _working_tree_migrations(top / root),
        history_files(root, base_other),
        history_files(root, _working_tree_files(top, root, packages)),
        postgres_version=config.postgres_version,
    )


def _working_tree_migrations(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        entry.name: read_sql(Path(entry.path) / MIGRATION_FILE)
        for entry in os.scandir(root)
        if entry.is_dir() and (Path(entry.path) / MIGRATION_FILE).is_file()
    }


def _working_tree_files(top: Path, root: str, packages: list[str]) -> dict[str, str | None]:
    """The root's lock file, package files and schema files as they are in the working tree."""
    found: dict[str, str | None] = {}
    for path in [lock_file_path(root), *packages]:
        if (top / path).is_file():
            found[path] = read_sql(top / path)
    parent = top / posixpath.dirname(root)
    skip = top / root
    for directory, subdirs, files in os.walk(parent):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and here / d != skip)
        for name in files:
            if name.endswith(".prisma"):
                found[(here / name).relative_to(top).as_posix()] = read_sql(here / name)
    return found
