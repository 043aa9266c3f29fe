"""Analysis of migrations held in memory, as read from a repository at a pull request's commits (pure).

The worker reads files through GitHub's API and hands them here as text: the earlier migrations of each root at
the base commit (replayed for the schema), the pull request's new or changed migration files at the head
commit (reported), and the package files that say which Prisma version deploys them.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import FileResult
from bot.analysis.prisma import PrismaVersion, version_from_lockfile, version_from_package_json
from bot.analysis.roots import LOCK_FILE, MIGRATION_FILE

LOCKFILES = ("package-lock.json", "pnpm-lock.yaml", "yarn.lock")
_MIGRATION_PATH = re.compile(r"^(?:(?P<root>.*)/)?(?P<folder>[^/]+)/migration\.sql$")


def migration_root_of(path: str) -> tuple[str, str] | None:
    """`prisma/migrations/20240101_add/migration.sql` -> (`prisma/migrations`, `20240101_add`)."""
    match = _MIGRATION_PATH.match(path)
    if match is None:
        return None
    return match.group("root") or "", match.group("folder")


def lock_file_path(root: str) -> str:
    return posixpath.join(root, LOCK_FILE) if root else LOCK_FILE


def package_directories(root: str) -> list[str]:
    """The directories whose package files may name the Prisma version of a root, nearest first."""
    directories = []
    directory = posixpath.dirname(root)
    while True:
        directories.append(directory)
        if not directory:
            return directories
        directory = posixpath.dirname(directory)


def package_files(root: str) -> list[str]:
    files = []
    for directory in package_directories(root):
        for name in (*LOCKFILES, "package.json"):
            files.append(posixpath.join(directory, name) if directory else name)
    return files


def provider_of(lock_text: str | None) -> str:
    if lock_text is None:
        return "missing"
    try:
        provider = tomllib.loads(lock_text).get("provider")
    except tomllib.TOMLDecodeError:
        return "unknown"
    return provider if isinstance(provider, str) else "unknown"


def prisma_version_from(root: str, read: Callable[[str], str | None]) -> PrismaVersion | None:
    """As `detect_version`, over files read by path: the nearest lockfile's exact version, else package.json."""
    found: PrismaVersion | None = None
    for directory in package_directories(root):
        for name in LOCKFILES:
            text = read(posixpath.join(directory, name) if directory else name)
            if text is not None and (version := version_from_lockfile(name, text)):
                return version
        package_json = read(posixpath.join(directory, "package.json") if directory else "package.json")
        if found is None and package_json is not None:
            found = version_from_package_json(package_json)
    return found


@dataclass
class RootSnapshot:
    path: str
    provider: str
    # folder name -> migration.sql text, at the base commit
    earlier: dict[str, str] = field(default_factory=dict)
    # folder name -> migration.sql text, at the head commit, for the files the pull request adds or changes
    changed: dict[str, str] = field(default_factory=dict)
    prisma: PrismaVersion | None = None


def analyze_root_snapshot(root: RootSnapshot, config: RepoConfig) -> list[FileResult]:
    """Replay earlier migrations and report changed ones, in Prisma's order (folder names, byte-wise)."""
    analyzer = Analyzer(config, prisma=root.prisma)
    results = []
    folders = sorted({*root.earlier, *root.changed}, key=lambda name: name.encode())
    remaining = set(root.changed)
    for folder in folders:
        if not remaining:
            break
        path = (
            posixpath.join(root.path, folder, MIGRATION_FILE) if root.path else f"{folder}/{MIGRATION_FILE}"
        )
        if folder in root.changed:
            remaining.discard(folder)
            results.append(analyzer.analyze(root.changed[folder], path))
        else:
            analyzer.replay(root.earlier[folder])
    return results


def roots_of(paths: Sequence[str]) -> dict[str, list[str]]:
    """Changed migration.sql paths grouped by root: root -> folders."""
    roots: dict[str, list[str]] = {}
    for path in paths:
        found = migration_root_of(path)
        if found is not None:
            roots.setdefault(found[0], []).append(found[1])
    return roots


def texts_reader(texts: Mapping[str, str | None]) -> Callable[[str], str | None]:
    return texts.get
