"""What a change does to a migrations root's history, beyond the SQL of its files (pure).

Prisma records every applied migration by folder name and checksum, and `schema.prisma` says what the code
expects the database to hold. A pull request (or `zdm check --base REF`) can therefore break deploys without a
single dangerous statement: by editing an applied migration, by adding one that sorts before migrations
production already ran, by changing the lock file's provider, or by changing the schema without a migration.
History rules read a `RootHistory` (the root at the base commit and at the head) and report `Hazard`s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.analysis.model import Severity
from bot.analysis.schema import Schema


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
        return f"{self.root}/{folder}/migration.sql" if self.root else f"{folder}/migration.sql"

    @property
    def added(self) -> list[str]:
        """Folders new at head, in Prisma's order (byte-wise)."""
        return _ordered(name for name in self.head if name not in self.base)

    @property
    def edited(self) -> list[str]:
        """Folders present at both commits whose migration.sql differs in any byte."""
        return _ordered(name for name in self.head if name in self.base and self.head[name] != self.base[name])

    @property
    def removed(self) -> list[str]:
        """Folders whose migration.sql existed at base and is gone at head (deleted or renamed)."""
        return _ordered(name for name in self.base if name not in self.head)

    def head_schema(self) -> Schema:
        """The schema zdm's replay builds from every migration at head, in Prisma's order."""
        from bot.analysis.engine import Analyzer

        analyzer = Analyzer()
        for folder in _ordered(self.head):
            analyzer.replay(self.head[folder])
        return analyzer.schema


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

    @property
    def fails_check(self) -> bool:
        return self.severity is Severity.ERROR


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda name: name.encode())
