"""Time each kind of work a blocking statement does on tables of known sizes, and fit the lock-time constants.

Tables are built on a scratch database (narrow and wide rows, with and without indexes, at a few sizes), then
analysed and vacuumed as autovacuum would have left them in production. Each statement runs in its own
transaction, timed from the statement's start to its end (the time its lock is held: nothing else runs in
the transaction), and is rolled back, so the same table serves every statement; the backfill runs last.

`calibrate` fits `bot.analysis.lock_time.Calibration` from those timings (`zdm stats --calibrate`, and the
committed constants); the benchmark (`bench/lock_time.py`) times fresh tables against zdm's bands.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from bot.analysis.lock_time import (
    FEATURES,
    GIB,
    Calibration,
    TableSize,
    Work,
    WorkCost,
    features,
    human_count,
    index_build_seconds,
    seconds,
)
from bot.stats import read_table_sizes, user_tables

PARENT = "zdm_parent"
PARENT_ROWS = 100_000
_WIDE_TEXT_REPEAT = 6  # md5 x 6: 192 characters, stored inline (under TOAST's 2 kB threshold)


class CalibrationRefused(RuntimeError):
    """The database holds tables of its own: calibration builds and drops tables, so only a scratch one."""


@dataclass(frozen=True)
class Shape:
    rows: int
    wide: bool
    indexed: bool

    @property
    def name(self) -> str:
        return f"zdm_t{self.rows}_{'wide' if self.wide else 'narrow'}_{'idx' if self.indexed else 'bare'}"

    @property
    def label(self) -> str:
        return f"{human_count(self.rows)} {'wide' if self.wide else 'narrow'}{', 3 indexes' if self.indexed else ''}"

    def ddl(self) -> str:
        """The table as a Prisma migration would have created it (zdm replays this to judge the statements)."""
        name = self.name
        lines = [
            f'CREATE TABLE "{name}" ("id" BIGINT NOT NULL, "n" INTEGER NOT NULL, "k" TEXT NOT NULL, '
            f'"ref" BIGINT, "w" TEXT);'
        ]
        if self.indexed:
            lines += [
                f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_pkey" PRIMARY KEY ("id");',
                f'CREATE INDEX "{name}_n_idx" ON "{name}"("n");',
                f'CREATE INDEX "{name}_k_idx" ON "{name}"("k");',
            ]
        return "\n".join(lines)


def parent_ddl() -> str:
    return f'CREATE TABLE "{PARENT}" ("id" BIGINT NOT NULL, CONSTRAINT "{PARENT}_pkey" PRIMARY KEY ("id"));'


@dataclass(frozen=True)
class Case:
    """One statement to time: its work, its SQL on a table, and what must exist first in the same transaction."""

    label: str
    work: Work
    sql: Callable[[str], str]
    prepare: Callable[[str], str] | None = None
    key_columns: tuple[str, ...] = ()
    # Blocks reads or writes while it runs (False: VALIDATE CONSTRAINT, reported apart).
    blocking: bool = True


CASES: tuple[Case, ...] = (
    Case(
        "CREATE INDEX (int)", Work.INDEX_BUILD, lambda t: f'CREATE INDEX "{t}_n2" ON "{t}"("n")', None, ("n",)
    ),
    Case(
        "CREATE INDEX (text)",
        Work.INDEX_BUILD,
        lambda t: f'CREATE INDEX "{t}_k2" ON "{t}"("k")',
        None,
        ("k",),
    ),
    Case(
        "CREATE UNIQUE INDEX",
        Work.INDEX_BUILD,
        lambda t: f'CREATE UNIQUE INDEX "{t}_id2" ON "{t}"("id")',
        None,
        ("id",),
    ),
    Case(
        "ALTER TYPE int -> bigint",
        Work.REWRITE,
        lambda t: f'ALTER TABLE "{t}" ALTER COLUMN "n" SET DATA TYPE BIGINT',
    ),
    Case(
        "ADD CHECK", Work.SCAN, lambda t: f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_n_check" CHECK ("n" >= 0)'
    ),
    Case("SET NOT NULL", Work.SCAN, lambda t: f'ALTER TABLE "{t}" ALTER COLUMN "ref" SET NOT NULL'),
    Case(
        "ADD FOREIGN KEY",
        Work.FOREIGN_KEY_SCAN,
        lambda t: (
            f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_ref_fkey" FOREIGN KEY ("ref") REFERENCES "{PARENT}"("id")'
        ),
    ),
    Case(
        "VALIDATE CHECK (online)",
        Work.SCAN,
        lambda t: f'ALTER TABLE "{t}" VALIDATE CONSTRAINT "{t}_n_nv"',
        lambda t: f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_n_nv" CHECK ("n" >= 0) NOT VALID',
        blocking=False,
    ),
    # Last: rolled back, it leaves a dead version of every row behind.
    Case("UPDATE every row", Work.BACKFILL, lambda t: f'UPDATE "{t}" SET "n" = "n" + 1'),
)


@dataclass(frozen=True)
class Sample:
    shape: Shape
    case: Case
    size: TableSize
    parent: TableSize
    # Every timing of the case on this table; `seconds` is their median.
    runs: tuple[float, ...]

    @property
    def seconds(self) -> float:
        ordered = sorted(self.runs)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def sizes(self) -> dict[str, float]:
        """The case's sizes in the units of `WorkCost` (what the constants multiply)."""
        size = self.size
        work = self.case.work
        if work is Work.INDEX_BUILD:
            columns = self.case.key_columns
            return features(
                size.rows,
                size.heap_bytes / GIB,
                key_width=size.key_width(columns),
                disorder=size.disorder(columns),
            )
        if work is Work.FOREIGN_KEY_SCAN:
            return features(size.rows + self.parent.rows, (size.heap_bytes + self.parent.heap_bytes) / GIB)
        if work is Work.BACKFILL:
            return features(size.rows, size.heap_bytes / GIB, indexes=len(size.indexes))
        if work is Work.REWRITE:
            return features(size.rows, (size.heap_bytes + size.toast_bytes) / GIB)
        return features(size.rows, size.heap_bytes / GIB)


def refuse_unless_scratch(database_url: str) -> None:
    found = user_tables(database_url)
    if found:
        raise CalibrationRefused(
            "refusing to calibrate on a database that holds tables of its own "
            f"({', '.join(found)}): calibration creates, fills and drops tables. Give it a scratch database "
            "(CREATE DATABASE zdm_scratch) on the same kind of server as production, never production itself."
        )


def _execute(conn: psycopg.Connection[Any], sql: str) -> None:
    conn.execute(sql.encode())  # bytes: psycopg takes it as is, without looking for placeholders


def build(conn: psycopg.Connection[Any], shape: Shape) -> None:
    name = shape.name
    wide = f"repeat(md5(g::text), {_WIDE_TEXT_REPEAT})" if shape.wide else "NULL"
    _execute(conn, f'DROP TABLE IF EXISTS "{name}"')
    _execute(conn, shape.ddl().split(";")[0])
    _execute(
        conn,
        f'INSERT INTO "{name}" SELECT g, (random() * 2e9)::int, md5(g::text), 1 + g % {PARENT_ROWS}, {wide} '
        f"FROM generate_series(1, {shape.rows}) g",
    )
    for statement in shape.ddl().split(";")[1:]:
        if statement.strip():
            _execute(conn, statement)
    # What autovacuum leaves in production: hint bits set, visibility map and statistics up to date.
    _execute(conn, f'VACUUM ANALYZE "{name}"')


def build_parent(conn: psycopg.Connection[Any]) -> None:
    _execute(conn, f'DROP TABLE IF EXISTS "{PARENT}"')
    _execute(conn, parent_ddl())
    _execute(conn, f'INSERT INTO "{PARENT}" SELECT generate_series(1, {PARENT_ROWS})')
    _execute(conn, f'VACUUM ANALYZE "{PARENT}"')


def time_case(conn: psycopg.Connection[Any], table: str, case: Case) -> float:
    """Seconds the statement ran in its own transaction (rolled back afterwards)."""
    with conn.transaction(force_rollback=True):
        if case.prepare is not None:
            _execute(conn, case.prepare(table))
        start = time.perf_counter()
        _execute(conn, case.sql(table))
        return time.perf_counter() - start


def measure(
    database_url: str,
    shapes: Sequence[Shape],
    cases: Sequence[Case] = CASES,
    progress: Callable[[str], None] | None = None,
    repeat: int = 1,
) -> Iterator[Sample]:
    """Build each shape, time every case on it (`repeat` times, but a backfill once: its rollback leaves dead
    rows behind), drop it; the parent table lives for the whole run."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _execute(conn, "SET lock_timeout = '10s'")
        build_parent(conn)
        try:
            for shape in shapes:
                if progress:
                    progress(f"building {shape.label}")
                build(conn, shape)
                sizes = read_table_sizes(database_url)
                for case in cases:
                    times = 1 if case.work is Work.BACKFILL else repeat
                    runs = tuple(time_case(conn, shape.name, case) for _ in range(times))
                    yield Sample(shape, case, sizes[shape.name], sizes[PARENT], runs)
                _execute(conn, f'DROP TABLE "{shape.name}"')
        finally:
            for shape in shapes:
                _execute(conn, f'DROP TABLE IF EXISTS "{shape.name}"')
            _execute(conn, f'DROP TABLE IF EXISTS "{PARENT}"')


CALIBRATION_SHAPES = tuple(
    Shape(rows, wide, indexed)
    for rows in (100_000, 1_000_000)
    for wide in (False, True)
    for indexed in (False, True)
)

# The sizes each kind of work is fitted on (the others stay 0).
_FITTED: dict[Work, tuple[str, ...]] = {
    Work.SCAN: ("fixed", "per_gib", "per_million_rows"),
    Work.FOREIGN_KEY_SCAN: ("fixed", "per_gib", "per_million_rows"),
    Work.INDEX_BUILD: (
        "fixed",
        "per_gib",
        "per_million_rows",
        "per_million_sorted_rows",
        "per_gib_of_sorted_keys",
    ),
    Work.REWRITE: ("fixed", "per_gib", "per_million_rows"),
    Work.BACKFILL: ("fixed", "per_gib", "per_million_rows", "per_million_index_entries"),
}
# The band covers the single runs between these quantiles of measured / estimated, widened by the margin:
# runs on another day, under other load, differ more than one calibration shows.
_BAND_QUANTILES = (0.04, 0.96)
_SPREAD_MARGIN = 1.1


def fit(samples: Sequence[Sample], machine: str = "", postgres: str = "") -> Calibration:
    """Non-negative constants per kind of work minimising the relative error, and the band's spread."""
    costs: dict[Work, WorkCost] = {}
    for work in (Work.INDEX_BUILD, Work.SCAN, Work.FOREIGN_KEY_SCAN, Work.BACKFILL, Work.REWRITE):
        rows = [s for s in samples if s.case.work is work]
        targets = [s.seconds for s in rows]
        if work is Work.REWRITE:
            # A rewrite rebuilds every index after copying the heap: fit the copy on what the builds leave.
            interim = Calibration(
                "", "", "", WorkCost(), WorkCost(), costs[Work.INDEX_BUILD], WorkCost(), WorkCost()
            )
            targets = [
                max(
                    s.seconds
                    - sum(
                        index_build_seconds(s.size, i.key_width, interim, i.disorder) for i in s.size.indexes
                    ),
                    1e-4,
                )
                for s in rows
            ]
        costs[work] = _fit_relative(_FITTED[work], [s.sizes() for s in rows], targets)
    calibration = Calibration(
        measured_on=datetime.now(UTC).strftime("%Y-%m-%d"),
        machine=machine or describe_machine(),
        postgres=postgres,
        scan=costs[Work.SCAN],
        foreign_key_scan=costs[Work.FOREIGN_KEY_SCAN],
        index_build=costs[Work.INDEX_BUILD],
        rewrite=costs[Work.REWRITE],
        backfill=costs[Work.BACKFILL],
    )
    # The spread of single runs, not of medians: a deployment is one run.
    ratios = [
        run / predicted for s in samples if (predicted := estimate(s, calibration)) > 0 for run in s.runs
    ]
    ratios.sort()
    low, high = (ratios[min(int(q * len(ratios)), len(ratios) - 1)] for q in _BAND_QUANTILES)
    return replace(calibration, low=round(low / _SPREAD_MARGIN, 2), high=round(high * _SPREAD_MARGIN, 2))


def estimate(sample: Sample, calibration: Calibration) -> float:
    """The fitted seconds for a sample (without the band)."""
    cost = calibration.cost(sample.case.work)
    own = seconds(cost, sample.sizes())
    if sample.case.work is Work.REWRITE:
        own += sum(
            index_build_seconds(sample.size, i.key_width, calibration, i.disorder)
            for i in sample.size.indexes
        )
    return own


def _fit_relative(
    names: Sequence[str], rows: Sequence[dict[str, float]], targets: Sequence[float]
) -> WorkCost:
    """Constants whose relative error is smallest: least squares weighted by the estimate, refined a few times
    (weighting by the measurement instead would favour estimates that are too low)."""
    weights = list(targets)
    cost = WorkCost()
    for _ in range(6):
        cost = _nnls(names, rows, targets, weights)
        weights = [max(seconds(cost, row), 1e-4) for row in rows]
    return cost


def _nnls(
    names: Sequence[str],
    rows: Sequence[dict[str, float]],
    targets: Sequence[float],
    weights_of: Sequence[float],
) -> WorkCost:
    """Least squares of the relative error over every subset of `names`, keeping the best solution whose
    constants are all non-negative (few names: the subsets are few)."""
    best: tuple[float, dict[str, float]] | None = None
    for mask in range(1, 1 << len(names)):
        chosen = [n for i, n in enumerate(names) if mask >> i & 1]
        matrix = [[row[n] / w for n in chosen] for row, w in zip(rows, weights_of, strict=True)]
        rhs = [t / w for t, w in zip(targets, weights_of, strict=True)]
        solution = _least_squares(matrix, rhs)
        if solution is None or any(value < 0 for value in solution):
            continue
        error = sum(
            (sum(a * x for a, x in zip(line, solution, strict=True)) - b) ** 2
            for line, b in zip(matrix, rhs, strict=True)
        )
        if best is None or error < best[0] - 1e-12:
            best = (error, dict(zip(chosen, solution, strict=True)))
    found = best[1] if best else {}
    return WorkCost(**{name: _rounded(found.get(name, 0.0)) for name in FEATURES})


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


def _least_squares(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Solve the normal equations by Gaussian elimination; None when singular."""
    size = len(matrix[0])
    normal = [[sum(r[i] * r[j] for r in matrix) for j in range(size)] for i in range(size)]
    vector = [sum(r[i] * b for r, b in zip(matrix, rhs, strict=True)) for i in range(size)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(normal[r][col]))
        if abs(normal[pivot][col]) < 1e-12 * max(1.0, max(abs(v) for row in normal for v in row)):
            return None
        normal[col], normal[pivot] = normal[pivot], normal[col]
        vector[col], vector[pivot] = vector[pivot], vector[col]
        for r in range(size):
            if r != col:
                factor = normal[r][col] / normal[col][col]
                normal[r] = [a - factor * b for a, b in zip(normal[r], normal[col], strict=True)]
                vector[r] -= factor * vector[col]
    solution = [vector[i] / normal[i][i] for i in range(size)]
    return None if any(math.isnan(v) or math.isinf(v) for v in solution) else solution


def describe_machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            kib = int(info.readline().split()[1])
        memory = f", {kib / (1 << 20):.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} CPU{memory}, {platform.system()} {platform.release()}"


def server_version(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else ""


def calibrate(
    database_url: str,
    shapes: Sequence[Shape] = CALIBRATION_SHAPES,
    progress: Callable[[str], None] | None = None,
    repeat: int = 3,
) -> tuple[Calibration, list[Sample]]:
    """Time every case on every shape of a scratch database and fit the constants (refuses any other)."""
    refuse_unless_scratch(database_url)
    samples = list(measure(database_url, shapes, progress=progress, repeat=repeat))
    return fit(samples, postgres=server_version(database_url)), samples


def main() -> None:  # pragma: no cover - run by hand to refit the committed constants
    import json
    import sys

    from bot.verify.server import running_server

    with running_server() as server, server.fresh_database() as url:
        calibration, samples = calibrate(url, progress=print)
    for sample in samples:
        fitted = estimate(sample, calibration)
        runs = " ".join(f"{run:.3f}" for run in sample.runs)
        print(f"{sample.shape.label:<24} {sample.case.label:<26} {runs:<20} fit {fitted:8.3f} s")
    print(calibration)
    if len(sys.argv) > 1:  # keep the timings, to try other fits without measuring again
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            json.dump([dataclasses.asdict(s) | {"case": s.case.label} for s in samples], out)


if __name__ == "__main__":  # pragma: no cover
    main()
