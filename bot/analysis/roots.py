"""Find Prisma migration roots and analyse them in Prisma's order.

A root is a folder holding `migration_lock.toml` and `<name>/migration.sql` folders. Prisma applies the
folders in lexical order of their names; zdm replays them in that order so each file is judged against the
schema the earlier ones built.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import FileResult
from bot.analysis.prisma import detect_version

LOCK_FILE = "migration_lock.toml"
MIGRATION_FILE = "migration.sql"
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".next"}


@dataclass(frozen=True)
class MigrationRoot:
    path: Path
    provider: str
    migrations: tuple[Path, ...]  # migration.sql files, in Prisma's order


@dataclass
class CheckRun:
    files: list[FileResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def provider_of(lock_text: str | None) -> str:
    """The `provider` of a migration_lock.toml's text; "missing" without one, "unknown" when unreadable."""
    if lock_text is None:
        return "missing"
    try:
        provider = tomllib.loads(lock_text).get("provider")
    except tomllib.TOMLDecodeError:
        return "unknown"
    return provider if isinstance(provider, str) else "unknown"


def read_provider(lock_file: Path) -> str:
    try:
        text = lock_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    return provider_of(text)


def migrations_of(root: Path, folders: list[str] | None = None) -> tuple[Path, ...]:
    """The root's migration.sql files in Prisma's order (folder names, byte-wise)."""
    if folders is None:
        folders = [entry.name for entry in os.scandir(root) if entry.is_dir()]
    ordered = sorted(folders, key=lambda name: name.encode())
    return tuple(
        root / name / MIGRATION_FILE for name in ordered if os.path.isfile(root / name / MIGRATION_FILE)
    )


def find_roots(base: Path) -> list[MigrationRoot]:
    roots = []
    for directory, subdirs, files in os.walk(base):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        if LOCK_FILE in files:
            path = Path(directory)
            roots.append(MigrationRoot(path, read_provider(path / LOCK_FILE), migrations_of(path, subdirs)))
            # Migration folders hold migration.sql and nothing zdm looks for: no need to walk them.
            subdirs[:] = []
    return roots


def root_of(migration_sql: Path) -> MigrationRoot | None:
    candidate = migration_sql.parent.parent
    if (candidate / LOCK_FILE).is_file():
        return MigrationRoot(candidate, read_provider(candidate / LOCK_FILE), migrations_of(candidate))
    return None


def _display(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return str(path.resolve().relative_to(relative_to.resolve()))
        except ValueError:
            pass
    return str(path)


def check_paths(paths: Sequence[Path], config: RepoConfig, relative_to: Path | None = None) -> CheckRun:
    """Analyse what the user pointed at: repositories, migration roots, migration folders or .sql files."""
    run = CheckRun()
    targets_by_root: dict[Path, tuple[MigrationRoot, set[Path] | None]] = {}
    loose: list[Path] = []
    for path in paths:
        if path.is_file():
            root = root_of(path) if path.name == MIGRATION_FILE else None
            if root is None:
                loose.append(path)
                continue
            _, wanted = targets_by_root.setdefault(root.path, (root, set()))
            if wanted is not None:
                wanted.add(path.resolve())
        elif (path / MIGRATION_FILE).is_file():
            root = root_of(path / MIGRATION_FILE)
            if root is None:
                loose.append(path / MIGRATION_FILE)
                continue
            _, wanted = targets_by_root.setdefault(root.path, (root, set()))
            if wanted is not None:
                wanted.add((path / MIGRATION_FILE).resolve())
        elif path.is_dir():
            for root in find_roots(path):
                if config.wants_root(_display(root.path, relative_to or path)):
                    targets_by_root[root.path] = (root, None)
        else:
            run.notes.append(f"{path}: no such file or directory")
    jobs = []
    for root, wanted in targets_by_root.values():
        if root.provider != "postgresql":
            run.notes.append(
                f"{_display(root.path, relative_to)}: provider is {root.provider!r}, not postgresql; skipped"
            )
            continue
        jobs.append((root, wanted))
    run.files.extend(_analyze_roots(jobs, config, relative_to))
    for sql in loose:
        analyzer = Analyzer(config)
        text = read_sql(sql)
        run.files.append(analyzer.analyze(text, _display(sql, relative_to)))
    return run


# Below this many migration files, starting worker processes costs more than it saves.
_PARALLEL_FROM_FILES = 400


def _analyze_roots(
    jobs: list[tuple[MigrationRoot, set[Path] | None]], config: RepoConfig, relative_to: Path | None
) -> list[FileResult]:
    """Roots are independent: on a machine with several cores, analyse them in parallel, biggest first."""
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or sum(len(root.migrations) for root, _ in jobs) < _PARALLEL_FROM_FILES:
        return [
            result
            for root, wanted in jobs
            for result in _analyze_root_list(root, config, wanted, relative_to)
        ]
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0].migrations))
    results: list[list[FileResult]] = [[] for _ in jobs]
    context = (
        multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, _paused_gc():
        futures = {
            pool.submit(_analyze_root_list, jobs[i][0], config, jobs[i][1], relative_to): i for i in order
        }
        for future, index in futures.items():
            results[index] = future.result()
    return [result for per_root in results for result in per_root]


def _analyze_root_list(
    root: MigrationRoot, config: RepoConfig, wanted: set[Path] | None, relative_to: Path | None
) -> list[FileResult]:
    with _paused_gc():
        return list(analyze_root(root, config, wanted, relative_to))


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cycle collector during a batch: sqlglot allocates so many short-lived objects that
    collections cost a third of the analysis. It runs again (and frees the batch's cycles) right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def analyze_root(
    root: MigrationRoot, config: RepoConfig, wanted: set[Path] | None = None, relative_to: Path | None = None
) -> Iterable[FileResult]:
    """Replay `root` in order; report every file, or only `wanted` ones (stopping after the last)."""
    analyzer = Analyzer(config, prisma=detect_version(root.path, relative_to or root.path))
    remaining = set(wanted) if wanted is not None else None
    for sql in root.migrations:
        if remaining is not None and not remaining:
            return
        text = read_sql(sql)
        if remaining is None or sql.resolve() in remaining:
            if remaining is not None:
                remaining.discard(sql.resolve())
            yield analyzer.analyze(text, _display(sql, relative_to))
        else:
            analyzer.replay(text)


def read_sql(path: Path) -> str:
    # Invalid UTF-8 is replaced rather than fatal: the statement around it is then reported, not the file.
    return path.read_bytes().decode("utf-8", errors="replace")
