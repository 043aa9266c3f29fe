"""What a change does to a migrations root's history, beyond the SQL of its files (pure).

Prisma records every applied migration by folder name and checksum, and `schema.prisma` says what the code
expects the database to hold. A pull request (or `zdm check --base REF`) can therefore break deploys without a
single dangerous statement: by editing an applied migration, by adding one that sorts before migrations
production already ran, by changing the lock file's provider, or by changing the schema without a migration.
History rules read a `RootHistory` (the root at the base commit and at the head) and report `Hazard`s.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.analysis.model import Severity
from bot.analysis.prisma import MIGRATION_FILE, lock_file_path, package_directories, prisma_order

if TYPE_CHECKING:
    from bot.analysis.config import RepoConfig
    from bot.rules.base import HistoryRule

# Files that may say where a root's schema is (`"prisma": {"schema": ...}`, `schema:` in the config).
PACKAGE_FILES = ("package.json", "prisma.config.ts")


@dataclass(frozen=True)
class RootHistory:
    """One migrations root at the base commit (the merge base, for the CLI) and at the head.

    `base_files`/`head_files` hold the other files history rules read, by repository path: the root's
    `migration_lock.toml`, every `*.prisma` file under the root's parent directory (outside the root itself and
    any `node_modules`), and the `package.json` / `prisma.config.ts` files that may name the schema's location.
    A path missing from a mapping does not exist at that commit.
    """

    root: str
    base: Mapping[str, str]
    head: Mapping[str, str]
    base_files: Mapping[str, str] = field(default_factory=dict)
    head_files: Mapping[str, str] = field(default_factory=dict)
    postgres_version: int = 15

    def migration_path(self, folder: str) -> str:
        return posixpath.join(self.root, folder, MIGRATION_FILE)

    @property
    def added(self) -> list[str]:
        """Folders new at head, in Prisma's order (byte-wise)."""
        return _ordered(name for name in self.head if name not in self.base)

    @property
    def edited(self) -> list[str]:
        """Folders present at both commits whose migration.sql differs in any byte."""
        return _ordered(
            name for name in self.head if name in self.base and self.head[name] != self.base[name]
        )

    @property
    def removed(self) -> list[str]:
        """Folders whose migration.sql existed at base and is gone at head (deleted or renamed)."""
        return _ordered(name for name in self.base if name not in self.head)

    @property
    def lock_path(self) -> str:
        return lock_file_path(self.root)


@dataclass(frozen=True)
class Hazard:
    """One history finding: what is wrong with the change as a whole, where, and how to fix it.

    `path` is the repository path the hazard is about (it may not exist at head: a deleted migration);
    `line` is a 1-based line at head when the hazard points into a file that exists there.
    """

    rule_id: str
    severity: Severity
    path: str
    message: str
    fix: str
    line: int | None = None
    # A digest of the texts the hazard is about (its path at both commits): an approval of the hazard covers
    # exactly that content, so changing the file again needs a new one.
    content_digest: str = ""

    @property
    def fails_check(self) -> bool:
        return self.severity is Severity.ERROR


def history_files(root: str, texts: Mapping[str, str | None]) -> dict[str, str]:
    """The files of `texts` (repository path -> text, None: absent) that `RootHistory.base_files`/`head_files`
    hold for `root`: its lock file, the `*.prisma` files under its parent directory (outside the root and any
    `node_modules`), and the package files of the directories from the root's parent up to the top."""
    packages_in = set(package_directories(root))
    lock = lock_file_path(root)
    selected: dict[str, str] = {}
    for path, text in texts.items():
        if text is None:
            continue
        directory, name = posixpath.split(path)
        if (
            path == lock
            or (name in PACKAGE_FILES and directory in packages_in)
            or (name.endswith(".prisma") and is_schema_path(root, path))
        ):
            selected[path] = text
    return selected


def is_schema_path(root: str, path: str) -> bool:
    """A `*.prisma` path that may be part of `root`'s schema: under the root's parent, outside the root itself
    and outside `node_modules`."""
    parent = posixpath.dirname(root)
    inside_parent = not parent or path.startswith(parent + "/")
    inside_root = path.startswith(root + "/") if root else True
    return (
        path.endswith(".prisma")
        and inside_parent
        and not inside_root
        and "node_modules" not in path.split("/")[:-1]
    )


def find_hazards(
    history: RootHistory, config: RepoConfig, rules: Iterable[HistoryRule] | None = None
) -> list[Hazard]:
    """Every history rule's hazards for one root, at the severity `.github/zdm.yml` gives the rule (`off`
    drops them), each bound to the content it judged."""
    if rules is None:
        # The registry imports the rules, which import this module: read it when the rules run.
        from bot.rules import HISTORY_RULES

        rules = HISTORY_RULES
    hazards = []
    for rule in rules:
        severity = config.severity_of(rule.id, rule.severity)
        if severity is Severity.OFF:
            continue
        for path, line, message, fix in rule.check_history(history):
            hazard = Hazard(rule.id, severity, path, message, fix, line)
            hazards.append(replace(hazard, content_digest=_content_digest(history, hazard)))
    return hazards


def _content_digest(history: RootHistory, hazard: Hazard) -> str:
    texts = [hazard.rule_id, hazard.path, hazard.message]
    for migrations, files in ((history.base, history.base_files), (history.head, history.head_files)):
        folder = posixpath.basename(posixpath.dirname(hazard.path))
        in_root = posixpath.dirname(posixpath.dirname(hazard.path)) == history.root
        text = migrations.get(folder) if in_root else files.get(hazard.path)
        texts.append("\0absent" if text is None else text)
    import hashlib

    return hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(names, key=prisma_order)
