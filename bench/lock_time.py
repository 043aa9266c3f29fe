"""zdm's lock-time bands against the time PostgreSQL really holds the lock, on fresh tables, in one run.

    python bench/lock_time.py [--rows 150000,1500000] [--calibrate]

For each table (each size; narrow and wide rows; with and without indexes) built on the embedded PostgreSQL
(or ZDM_TEST_DATABASE_URL), then analysed and vacuumed as autovacuum leaves a production table: `zdm stats`'s
catalog reading gives the sizes, zdm analyses each statement against the table's DDL with those sizes and
gives its band, then the statement runs in its own transaction and the time it ran (the time its lock is
held) is printed next to the band. The constants are the committed ones, fitted on other tables in earlier
runs (`python -m bot.verify.lock_time`); `--calibrate` fits them first in this run, on tables of the
calibration sizes (100 k and 1 M rows) that are dropped before the measured ones are built.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.lock_time import (
    DEFAULT_CALIBRATION,
    Calibration,
    Duration,
    human_bytes,
    human_count,
)
from bot.verify.lock_time import (
    PARENT,
    Case,
    Shape,
    calibrate,
    measure,
    parent_ddl,
)
from bot.verify.server import running_server


@dataclass(frozen=True)
class Row:
    shape: Shape
    case: Case
    rows: int
    bytes: int
    measured: float
    band: Duration | None

    @property
    def inside(self) -> bool:
        return self.band is not None and self.band.low <= self.measured <= self.band.high


def zdm_band(shape: Shape, case: Case, config: RepoConfig) -> Duration | None:
    """What `zdm check` says about the statement, the table's DDL replayed first as an earlier migration."""
    setup = "\n".join(
        [parent_ddl(), shape.ddl(), *([case.prepare(shape.name) + ";"] if case.prepare else [])]
    )
    statement = analyze_sql(case.sql(shape.name) + ";", setup=setup, config=config).statements[0]
    return statement.lock_time if case.blocking else statement.online_time


def run(url: str, shapes: list[Shape], calibration: Calibration) -> list[Row]:
    rows: list[Row] = []
    for sample in measure(url, shapes, progress=lambda line: print(line, file=sys.stderr)):
        config = RepoConfig(
            tables={sample.shape.name: sample.size, PARENT: sample.parent}, calibration=calibration
        )
        band = zdm_band(sample.shape, sample.case, config)
        rows.append(
            Row(sample.shape, sample.case, sample.size.rows, sample.size.total_bytes, sample.seconds, band)
        )
    return rows


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def print_table(rows: list[Row], calibration: Calibration, elapsed: float) -> None:
    print(
        f"constants: {calibration.machine}; measured {calibration.measured_on}, PostgreSQL {calibration.postgres}"
    )
    print(
        f"band = estimate x {calibration.low:g} .. estimate x {calibration.high:g} x {calibration.production_factor:g} "
        "(managed instance)\n"
    )
    print("| table | statement | rows | size | measured s | zdm band s | in band | measured / estimate |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        band = row.band
        if band is None:
            shown, inside, ratio = "none", "no estimate", "-"
        else:
            estimate = band.low / calibration.low
            shown = f"{_seconds(band.low)}-{_seconds(band.high)}"
            inside = "yes" if row.inside else ("**below**" if row.measured < band.low else "**above**")
            ratio = f"{row.measured / estimate:.2f}" if estimate else "-"
        print(
            f"| {row.shape.label} | {row.case.label} | {human_count(row.rows)} | {human_bytes(row.bytes)} "
            f"| {_seconds(row.measured)} | {shown} | {inside} | {ratio} |"
        )
    covered = sum(row.inside for row in rows)
    widths = [row.band.high / row.band.low for row in rows if row.band is not None and row.band.low > 0]
    # The same bands without the allowance for a slower production instance: this machine's spread alone.
    here = sum(
        row.band is not None and row.band.low <= row.measured <= row.band.high / calibration.production_factor
        for row in rows
    )
    print(
        f"\ncoverage: {covered} of {len(rows)} measurements inside zdm's band ({100 * covered / len(rows):.0f}%, "
        f"target >= 90%); band width high/low {max(widths):.2f}x (aim <= 4x) = {calibration.high / calibration.low:.2f}x "
        f"this machine's spread x {calibration.production_factor:g} for a managed instance"
    )
    print(
        f"without the managed-instance allowance: {here} of {len(rows)} inside ({100 * here / len(rows):.0f}%); "
        f"bench took {elapsed:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="150000,1500000", help="table sizes to measure, comma-separated")
    parser.add_argument("--calibrate", action="store_true", help="fit the constants first, in this run")
    options = parser.parse_args()
    sizes = [int(value) for value in options.rows.split(",")]
    shapes = [
        Shape(rows, wide, indexed) for rows in sizes for wide in (False, True) for indexed in (False, True)
    ]
    start = time.perf_counter()
    with running_server() as server:
        calibration = DEFAULT_CALIBRATION
        if options.calibrate:
            with server.fresh_database() as scratch:
                calibration, _ = calibrate(scratch, progress=lambda line: print(line, file=sys.stderr))
        with server.fresh_database() as url:
            rows = run(url, shapes, calibration)
    print_table(rows, calibration, time.perf_counter() - start)


if __name__ == "__main__":
    main()
