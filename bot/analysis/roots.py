"""Find Prisma migration roots and analyse them in Prisma's order.

A root is a folder holding `migration_lock.toml` and `<name>/migration.sql` folders. Prisma applies the
folders in lexical order of their names; zdm replays them in that order so each file is judged against the
schema the earlier ones built.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from bot.analysis.cache import AnalysisCache, advance
from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import FileResult
from bot.analysis.prisma import LOCK_FILE, MIGRATION_FILE, detect_version, prisma_order
from bot.analysis.schema import Schema

_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".next"}


@dataclass(frozen=True)
class MigrationRoot:
    path: Path
    provider: str
    migrations: tuple[Path, ...]  # migration.sql files, in Prisma's order


T = TypeVar("T")


@dataclass
class CheckRun(Generic[T]):
    # The files' results (or what `each` made of them), in Prisma's order root by root.
    files: list[T] = field(default_factory=list)
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
    ordered = sorted(folders, key=prisma_order)
    # Joined as strings, one Path per file: a root can hold hundreds of folders.
    base = str(root)
    files = (os.path.join(base, name, MIGRATION_FILE) for name in ordered)
    return tuple(Path(file) for file in files if os.path.isfile(file))


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


def shown_path(path: Path, base: Path | None) -> str:
    """`path` as the user reads it: relative to `base` (`../` when outside it), as given without a base."""
    if base is None:
        return str(path)
    return _relative(str(path.resolve()), str(base.resolve()))


def _relative(absolute: str, base: str) -> str:
    try:
        return os.path.relpath(absolute, base)
    except ValueError:  # another drive, on Windows
        return absolute


@dataclass
class _Target:
    """A root and which of its migration folders to report (None: all of them)."""

    root: MigrationRoot
    folders: set[str] | None


@overload
def check_paths(
    paths: Sequence[Path],
    config: RepoConfig,
    relative_to: Path | None = None,
    *,
    shown_from: Path | None = None,
    only: Collection[Path] | None = None,
    plans: bool = True,
    cache: AnalysisCache | None = None,
) -> CheckRun[FileResult]: ...


@overload
def check_paths(
    paths: Sequence[Path],
    config: RepoConfig,
    relative_to: Path | None = None,
    *,
    shown_from: Path | None = None,
    only: Collection[Path] | None = None,
    each: Callable[[FileResult], T],
    plans: bool = True,
    cache: AnalysisCache | None = None,
) -> CheckRun[T]: ...


def check_paths(
    paths: Sequence[Path],
    config: RepoConfig,
    relative_to: Path | None = None,
    *,
    shown_from: Path | None = None,
    only: Collection[Path] | None = None,
    each: Callable[[FileResult], Any] | None = None,
    plans: bool = True,
    cache: AnalysisCache | None = None,
) -> CheckRun[Any]:
    """Analyse what the user pointed at: repositories, migration roots, migration folders or .sql files.

    `relative_to` is the repository root: configuration globs and the Prisma version are read relative to it.
    Paths in the results and notes are shown relative to `shown_from` (default: `relative_to`). `only`:
    resolved migration.sql paths; when given, only those are reported, the rest of their roots are replayed
    for the schema, and a root holding none of them is not read at all. `each` is applied to every file's
    result in the process that analysed it (a worker, in a large run; it must pickle): what comes back is
    what it returns, far cheaper to send than the whole analysis when that is all the caller needs.
    `plans=False` when no plan will be made from the results (see `Analyzer`). `cache`: results and replayed
    schemas kept from earlier runs (bot/analysis/cache.py).
    """
    run: CheckRun[Any] = CheckRun()
    shown_base = shown_from or relative_to
    targets: dict[Path, _Target] = {}
    # Files of one root come one by one (a pre-commit hook, a list of changed files): read and resolve each
    # root once, keyed by the folder as given.
    # A pre-commit hook or a whole corpus passes thousands of files: their folders are read as strings.
    roots_by_folder: dict[str, tuple[Path, MigrationRoot] | None] = {}

    def add_file(sql: Path) -> None:
        migration_folder, _ = os.path.split(str(sql))
        folder, name = os.path.split(migration_folder)
        if folder not in roots_by_folder:
            root = root_of(sql)
            roots_by_folder[folder] = None if root is None else (root.path.resolve(), root)
        found = roots_by_folder[folder]
        if found is None:
            loose.append(sql)
            return
        resolved, root = found
        target = targets.setdefault(resolved, _Target(root, set()))
        if target.folders is not None:
            target.folders.add(name)

    loose: list[Path] = []
    for path in paths:
        if os.path.isfile(path):
            if path.name == MIGRATION_FILE:
                add_file(path)
            else:
                loose.append(path)
        elif (path / MIGRATION_FILE).is_file():
            add_file(path / MIGRATION_FILE)
        elif path.is_dir():
            for root in find_roots(path):
                if config.wants_root(shown_path(root.path, relative_to or path)):
                    targets[root.path.resolve()] = _Target(root, None)
        else:
            run.notes.append(f"{path}: no such file or directory")
    if only is not None:
        wanted = set(only)
        _keep_only(targets, wanted)
        loose = [sql for sql in loose if sql.resolve() in wanted]
    jobs = []
    for target in targets.values():
        if target.root.provider != "postgresql":
            run.notes.append(
                f"{shown_path(target.root.path, shown_base)}: provider is {target.root.provider!r}, "
                "not postgresql; skipped"
            )
            continue
        jobs.append(target)
    mapped = each or _as_analysed
    run.files.extend(_analyze_roots(jobs, config, relative_to, shown_base, mapped, plans, cache))
    for sql in loose:
        analyzer = Analyzer(config, plans=plans)
        run.files.append(mapped(analyzer.analyze(read_sql(sql), shown_path(sql, shown_base))))
    return run


def _as_analysed(result: FileResult) -> FileResult:
    return result


def _keep_only(targets: dict[Path, _Target], only: Collection[Path]) -> None:
    """Narrow each root's folders to the files in `only`; drop roots left with none."""
    folders_by_root: dict[Path, set[str]] = {}
    for sql in only:
        if sql.name == MIGRATION_FILE:
            folders_by_root.setdefault(sql.parent.parent, set()).add(sql.parent.name)
    for resolved, target in list(targets.items()):
        wanted = folders_by_root.get(resolved, set())
        target.folders = wanted if target.folders is None else target.folders & wanted
        if not target.folders:
            del targets[resolved]


# Below this many migration files, starting worker processes costs more than it saves.
_PARALLEL_FROM_FILES = 400


def _analyze_roots(
    jobs: list[_Target],
    config: RepoConfig,
    relative_to: Path | None,
    shown_from: Path | None,
    each: Callable[[FileResult], T],
    plans: bool,
    cache: AnalysisCache | None = None,
) -> list[T]:
    """Roots are independent: on a machine with several cores, analyse them in parallel, biggest first."""
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or sum(len(job.root.migrations) for job in jobs) < _PARALLEL_FROM_FILES:
        return [
            result
            for job in jobs
            for result in _analyze_root_list(
                job.root, config, job.folders, relative_to, shown_from, each, plans, cache
            )
        ]
    # Only a large run pays for the process pool's imports.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].root.migrations))
    results: list[list[T]] = [[] for _ in jobs]
    context = (
        multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    )
    # What the parent holds (imported modules, the configuration) outlives the run: frozen, no collection in
    # a worker walks it again, nor writes into the pages the workers share with the parent.
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, _paused_gc():
            futures = {
                pool.submit(
                    _analyze_root_list,
                    jobs[i].root,
                    config,
                    jobs[i].folders,
                    relative_to,
                    shown_from,
                    each,
                    plans,
                    cache,
                ): i
                for i in order
            }
            for future, index in futures.items():
                results[index] = future.result()
    finally:
        gc.unfreeze()
    return [result for per_root in results for result in per_root]


def _analyze_root_list(
    root: MigrationRoot,
    config: RepoConfig,
    folders: set[str] | None,
    relative_to: Path | None,
    shown_from: Path | None,
    each: Callable[[FileResult], T],
    plans: bool = True,
    cache: AnalysisCache | None = None,
) -> list[T]:
    with _paused_gc():
        analysed = _analyze_folders(root, config, folders, relative_to, shown_from, plans, cache)
        return [each(result) for result in analysed]


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
    root: MigrationRoot,
    config: RepoConfig,
    wanted: set[Path] | None = None,
    relative_to: Path | None = None,
    shown_from: Path | None = None,
) -> Iterable[FileResult]:
    """Replay `root` in order; report every file, or only `wanted` ones (resolved paths), stopping after the
    last. Paths are shown relative to `shown_from` (default: `relative_to`)."""
    folders = (
        None if wanted is None else {sql.parent.name for sql in root.migrations if sql.resolve() in wanted}
    )
    return _analyze_folders(root, config, folders, relative_to, shown_from or relative_to)


def _analyze_folders(
    root: MigrationRoot,
    config: RepoConfig,
    folders: set[str] | None,
    relative_to: Path | None,
    shown_from: Path | None,
    plans: bool = True,
    cache: AnalysisCache | None = None,
) -> Iterator[FileResult]:
    analyzer = Analyzer(config, prisma=detect_version(root.path, relative_to or root.path), plans=plans)
    # Resolving a path costs a system call per component: once per root, then only string operations.
    root_path = str(root.path.resolve()) if shown_from is not None else str(root.path)
    base = str(shown_from.resolve()) if shown_from is not None else None
    remaining = set(folders) if folders is not None else None
    chain = None
    if cache is not None:
        chain = cache.chain()
        chain.update(f"{analyzer.prisma}|{plans}".encode())
    # With a cache, a migration's effect on the schema is replayed only once a later result is missing:
    # `behind` holds (key, text) of those the analyzer's schema does not hold yet.
    behind: list[tuple[str, str]] = []
    key = ""
    for sql in root.migrations:
        if remaining is not None and not remaining:
            break
        data = read_bytes(sql)
        text = data.decode("utf-8", errors="replace")
        name = sql.parent.name
        wanted = remaining is None or name in remaining
        if remaining is not None:
            remaining.discard(name)
        if cache is None or chain is None:
            if wanted:
                path = os.path.join(root_path, name, MIGRATION_FILE)
                yield analyzer.analyze(text, path if base is None else _relative(path, base))
            else:
                analyzer.replay(text)
            continue
        key = advance(chain, data)
        if not wanted:
            behind.append((key, text))
            continue
        path = os.path.join(root_path, name, MIGRATION_FILE)
        shown = path if base is None else _relative(path, base)
        found = cache.result(key)
        if isinstance(found, FileResult):
            behind.append((key, text))
            yield dataclasses.replace(found, path=shown)
            continue
        _catch_up(analyzer, cache, behind)
        result = analyzer.analyze(text, shown)
        cache.store_result(key, result)
        yield result
    if cache is not None and key and not behind:
        cache.store_schema(key, analyzer.schema)


def _catch_up(analyzer: Analyzer, cache: AnalysisCache, behind: list[tuple[str, str]]) -> None:
    """Bring the analyzer's schema up to the migration before the one to analyse: the schema a run kept
    there, else the skipped migrations replayed."""
    if not behind:
        return
    kept = cache.schema(behind[-1][0])
    if isinstance(kept, Schema):
        analyzer.schema = kept
    else:
        for _, text in behind:
            analyzer.replay(text)
    behind.clear()


def read_bytes(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def read_sql(path: Path) -> str:
    # Invalid UTF-8 is replaced rather than fatal: the statement around it is then reported, not the file.
    with open(path, "rb") as file:
        return file.read().decode("utf-8", errors="replace")
