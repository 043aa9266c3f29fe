"""`zdm fix`: compute a migration's plan from its root and write it to disk, the way `ruff --fix` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.model import FileResult
from bot.analysis.prisma import MIGRATION_FILE, PrismaVersion, detect_version
from bot.analysis.roots import analyze_root, root_of
from bot.fixes.plan import FilePlan, plan_file


class FixError(ValueError):
    """Why a fix cannot be planned or written; worded for the person running `zdm fix`."""


@dataclass(frozen=True)
class FixOutcome:
    plan: FilePlan
    prisma: PrismaVersion | None
    result: FileResult
    written: tuple[Path, ...] = ()


def plan_migration(migration_dir: Path, config: RepoConfig, repo_root: Path) -> FixOutcome:
    sql = migration_dir / MIGRATION_FILE
    if not sql.is_file():
        raise FixError(
            f"{migration_dir}: no {MIGRATION_FILE} here; pass a migration folder such as prisma/migrations/<name>"
        )
    root = root_of(sql)
    if root is None:
        raise FixError(
            f"{migration_dir}: its parent has no migration_lock.toml, so zdm cannot replay the earlier migrations"
        )
    if root.provider != "postgresql":
        raise FixError(f"{root.path}: provider is {root.provider!r}; zdm fixes PostgreSQL migrations only")
    results = list(analyze_root(root, config, {sql.resolve()}, repo_root))
    if not results:
        raise FixError(f"{sql}: not found among the migrations of {root.path}")
    prisma = PrismaVersion.parse(config.prisma_version) if config.prisma_version else None
    prisma = prisma or detect_version(root.path, repo_root)
    return FixOutcome(plan_file(migration_dir.name, results[0], prisma), prisma, results[0])


def write_plan(migration_dir: Path, outcome: FixOutcome) -> FixOutcome:
    """Rewrite the migration and create the follow-up folders beside it. Existing folders are never touched."""
    migrations = outcome.plan.migrations
    root = migration_dir.parent
    for migration in migrations[1:]:
        if (root / migration.name).exists():
            raise FixError(f"{root / migration.name} already exists; remove it or rename it first")
    written = []
    for migration in migrations:
        folder = root / migration.name
        folder.mkdir(exist_ok=migration.name == migration_dir.name)
        path = folder / MIGRATION_FILE
        path.write_text(migration.sql, encoding="utf-8")
        written.append(path)
    return FixOutcome(outcome.plan, outcome.prisma, outcome.result, tuple(written))


def applied_migrations(database_url: str) -> set[str]:
    """Names of migrations Prisma recorded as applied in that database (`_prisma_migrations`)."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise FixError("--database-url needs psycopg: pip install 'zdm[db]'") from error
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
        ).fetchall()
    return {str(row[0]) for row in rows}
