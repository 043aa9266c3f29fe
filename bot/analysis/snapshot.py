"""Analysis of migrations held in memory, as read from a repository at a pull request's commits (pure).

The worker reads files through GitHub's API and hands them here as text: the earlier migrations of each root at
the base commit (replayed for the schema), the pull request's new or changed migration files at the head
commit (reported), and the package files that say which Prisma version deploys them.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import FileResult
from bot.analysis.prisma import (
    LOCKFILES,
    MIGRATION_FILE,
    PrismaVersion,
    package_directories,
    prisma_order,
    version_in,
)
from bot.analysis.schema import Schema

_MIGRATION_PATH = re.compile(r"^(?:(?P<root>.*)/)?(?P<folder>[^/]+)/migration\.sql$")


def migration_root_of(path: str) -> tuple[str, str] | None:
    """`prisma/migrations/20240101_add/migration.sql` -> (`prisma/migrations`, `20240101_add`)."""
    match = _MIGRATION_PATH.match(path)
    if match is None:
        return None
    return match.group("root") or "", match.group("folder")


def package_files(root: str) -> list[str]:
    files = []
    for directory in package_directories(root):
        for name in (*LOCKFILES, "package.json"):
            files.append(posixpath.join(directory, name))
    return files


def prisma_version_from(root: str, read: Callable[[str], str | None]) -> PrismaVersion | None:
    """As `detect_version`, over files read by repository path."""
    return version_in(
        package_directories(root), lambda directory, name: read(posixpath.join(directory, name))
    )


@dataclass
class RootSnapshot:
    path: str
    provider: str
    # folder name -> migration.sql text, at the base commit
    earlier: dict[str, str] = field(default_factory=dict)
    # folder name -> migration.sql text, at the head commit, for the files the pull request adds or changes
    changed: dict[str, str] = field(default_factory=dict)
    prisma: PrismaVersion | None = None


class SchemaStore(Protocol):
    """Schemas replayed earlier, by a digest of the settings and every migration text that built them."""

    def get(self, key: str) -> Schema | None: ...

    def put(self, key: str, schema: Schema) -> None:
        """Keep a copy of `schema` as it is now."""


def analyze_root_snapshot(
    root: RootSnapshot, config: RepoConfig, schemas: SchemaStore | None = None
) -> list[FileResult]:
    """Replay earlier migrations and report changed ones, in Prisma's order (folder names, byte-wise). With
    `schemas`, the schema the migrations before the first changed one build is taken from there when a review
    of the same root already replayed them, and kept there otherwise."""
    analyzer = Analyzer(config, prisma=root.prisma)
    results = []
    folders = sorted({*root.earlier, *root.changed}, key=prisma_order)
    first_changed = next((i for i, folder in enumerate(folders) if folder in root.changed), len(folders))
    if schemas is not None and first_changed:
        key = replay_key(config, root.prisma, [root.earlier[folder] for folder in folders[:first_changed]])
        kept = schemas.get(key)
        if kept is not None:
            analyzer.schema = kept
        else:
            for folder in folders[:first_changed]:
                analyzer.replay(root.earlier[folder])
            # Kept before the changed files are analysed (the analysis changes the schema it works on): `put`
            # stores a copy, serialised there and then.
            schemas.put(key, analyzer.schema)
        folders = folders[first_changed:]
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


def replay_key(config: RepoConfig, prisma: PrismaVersion | None, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{config!r}|{prisma}".encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()


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
