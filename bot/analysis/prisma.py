"""What zdm knows about Prisma itself: its versions' execution models and the warnings it writes.

Before Prisma 7.4 the schema engine sends a whole `migration.sql` as one simple-query batch, which PostgreSQL
runs as one implicit transaction. From 7.4 it splits the file and runs each statement in its own transaction.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

SPLITS_STATEMENTS_FROM = (7, 4, 0)

# How Prisma lays out a migrations root: a folder per migration holding migration.sql, and the lock file
# naming the provider beside them.
LOCK_FILE = "migration_lock.toml"
MIGRATION_FILE = "migration.sql"


def lock_file_path(root: str) -> str:
    """The lock file of a root given by repository path (`""`: the repository's top)."""
    return posixpath.join(root, LOCK_FILE)


def prisma_order(folder: str) -> bytes:
    """Sort key of migration folders: Prisma applies them in byte-wise order of their names."""
    return folder.encode()


def package_directories(root: str) -> list[str]:
    """The directories whose package files may name the Prisma version (or the schema's place) of a root,
    nearest first: from the root's parent up to the repository's top (`""`)."""
    directories = []
    directory = posixpath.dirname(root)
    while True:
        directories.append(directory)
        if not directory:
            return directories
        directory = posixpath.dirname(directory)


D = TypeVar("D")


@dataclass(frozen=True, order=True)
class PrismaVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> PrismaVersion | None:
        match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
        if match is None:
            return None
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))

    @property
    def splits_statements(self) -> bool:
        """7.4+: each statement runs in its own transaction; the file is no longer atomic."""
        return (self.major, self.minor, self.patch) >= SPLITS_STATEMENTS_FROM

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


_PACKAGES = ("prisma", "@prisma/client")


def version_from_package_json(text: str) -> PrismaVersion | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for section in ("devDependencies", "dependencies"):
        deps = data.get(section)
        if isinstance(deps, dict):
            for package in _PACKAGES:
                spec = deps.get(package)
                if isinstance(spec, str) and (version := PrismaVersion.parse(spec)):
                    return version
    return None


def version_from_lockfile(name: str, text: str) -> PrismaVersion | None:
    """The installed version, from package-lock.json, pnpm-lock.yaml or yarn.lock."""
    if name == "package-lock.json":
        try:
            packages = json.loads(text).get("packages", {})
        except (json.JSONDecodeError, AttributeError):
            return None
        for package in _PACKAGES:
            entry = packages.get(f"node_modules/{package}") if isinstance(packages, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                return PrismaVersion.parse(entry["version"])
        return None
    if name == "pnpm-lock.yaml":
        match = re.search(r"^\s+'?/?prisma@(\d+\.\d+\.\d+)", text, re.MULTILINE)
        return PrismaVersion.parse(match.group(1)) if match else None
    if name == "yarn.lock":
        match = re.search(r'^"?prisma@[^\n]*:\n\s+version:? "?(\d+\.\d+\.\d+)', text, re.MULTILINE)
        return PrismaVersion.parse(match.group(1)) if match else None
    return None


LOCKFILES = ("package-lock.json", "pnpm-lock.yaml", "yarn.lock")


def version_in(directories: Iterable[D], read: Callable[[D, str], str | None]) -> PrismaVersion | None:
    """The nearest lockfile's exact version, else the nearest package.json's range, over `directories`
    (nearest first; monorepos keep the lockfile at the top). `read(directory, name)` is None for no file."""
    found: PrismaVersion | None = None
    for directory in directories:
        for lockfile in LOCKFILES:
            text = read(directory, lockfile)
            if text is not None and (version := version_from_lockfile(lockfile, text)):
                return version
        package_json = read(directory, "package.json")
        if found is None and package_json is not None:
            found = version_from_package_json(package_json)
    return found


def detect_version(start: Path, stop: Path) -> PrismaVersion | None:
    """The Prisma version of the package owning `start`, looking in `start` and its parents up to `stop`."""
    directory = start.resolve()
    stop = stop.resolve()
    directories = [directory]
    while directory != stop and directory.parent != directory:
        directory = directory.parent
        directories.append(directory)
    return version_in(directories, lambda d, name: _read(d / name) if (d / name).is_file() else None)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class PrismaWarning:
    """One item of the `/* Warnings: ... */` header `prisma migrate dev` writes."""

    text: str
    kind: str  # data-loss | required-column | unique | enum-values | other
    table: str | None = None
    column: str | None = None


_WARNING_SHAPES = (
    (re.compile(r"drop the column `(?P<column>[^`]+)` on the `(?P<table>[^`]+)` table"), "data-loss"),
    (re.compile(r"drop the `(?P<table>[^`]+)` table"), "data-loss"),
    (
        re.compile(r"Added the required column `(?P<column>[^`]+)` to the `(?P<table>[^`]+)` table"),
        "required-column",
    ),
    (re.compile(r"unique constraint covering the columns `[^`]*` on the table `(?P<table>[^`]+)`"), "unique"),
    (re.compile(r"values \[[^\]]*\] on the enum `(?P<table>[^`]+)` will be removed"), "enum-values"),
    (re.compile(r"alter the column `(?P<column>[^`]+)` on the `(?P<table>[^`]+)` table"), "data-loss"),
)


def header_warnings(text: str) -> list[PrismaWarning]:
    match = re.match(r"\s*/\*\s*Warnings:(?P<body>.*?)\*/", text, re.DOTALL)
    if match is None:
        return []
    warnings = []
    for item in re.split(r"\n\s*-\s+", "\n" + match.group("body")):
        item = " ".join(item.split())
        if not item:
            continue
        kind, table, column = "other", None, None
        for pattern, shape in _WARNING_SHAPES:
            found = pattern.search(item)
            if found:
                kind = shape
                table = found.groupdict().get("table")
                column = found.groupdict().get("column")
                break
        warnings.append(PrismaWarning(item, kind, table, column))
    return warnings
