"""`zdm stats`: table sizes from a database's catalog, written to a file the repository commits.

Only the catalog is read (`pg_class.reltuples`/`relpages`, `pg_relation_size`, `pg_total_relation_size`,
`pg_index`, `pg_stats.avg_width`): no table is scanned and no data leaves the database but table, column and
index names and sizes. The session sets a short `lock_timeout`: reading a relation's size waits behind an
ACCESS EXCLUSIVE lock, and zdm would rather fail than queue in front of production traffic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.analysis.config import STATS_PATH, ConfigError, parse_config
from bot.analysis.lock_time import Calibration, IndexSize, TableSize
from bot.analysis.parser import DEFAULT_SCHEMA, qualified

_USER_RELATIONS = """
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
"""

_TABLES = f"""
SELECT n.nspname, c.relname, c.reltuples::bigint, pg_relation_size(c.oid), pg_total_relation_size(c.oid),
       COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') {_USER_RELATIONS}
ORDER BY 1, 2
"""

# Per column: the planner's average width when ANALYZE has run, else the type's fixed length (-1: variable).
_COLUMNS = f"""
SELECT n.nspname, c.relname, a.attname, s.avg_width, a.attlen, s.correlation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped {_USER_RELATIONS}
"""

_INDEXES = f"""
SELECT n.nspname, c.relname, i.relname, pg_relation_size(i.oid), x.indisunique,
       array(SELECT coalesce(a.attname, '') FROM unnest(x.indkey[0:x.indnkeyatts - 1]) k
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') {_USER_RELATIONS}
ORDER BY 1, 2, 3
"""

# Any table outside the system schemas: a database `--calibrate` must not touch.
USER_TABLES = f"""
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f') {_USER_RELATIONS}
ORDER BY 1 LIMIT 5
"""

# Variable-width columns without statistics: a short text or a uuid's worth.
_UNKNOWN_WIDTH = 16


def _connect(database_url: str) -> Any:
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("zdm stats needs psycopg: pip install 'zdm[db]'") from error
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("SET lock_timeout = '2s'")
    conn.execute("SET statement_timeout = '60s'")
    return conn


def read_table_sizes(database_url: str) -> dict[str, TableSize]:
    """Sizes per table; tables never analysed (estimate -1) are left out, so they count as large."""
    with _connect(database_url) as conn:
        tables = conn.execute(_TABLES).fetchall()
        columns = conn.execute(_COLUMNS).fetchall()
        indexes = conn.execute(_INDEXES).fetchall()
    widths: dict[tuple[str, str], dict[str, int]] = {}
    correlations: dict[tuple[str, str], dict[str, float]] = {}
    for schema, table, column, avg_width, fixed_length, correlation in columns:
        width = avg_width if avg_width is not None else fixed_length if fixed_length > 0 else _UNKNOWN_WIDTH
        widths.setdefault((schema, table), {})[str(column)] = int(width)
        if correlation is not None:
            correlations.setdefault((schema, table), {})[str(column)] = round(float(correlation), 3)
    by_table: dict[tuple[str, str], list[IndexSize]] = {}
    for schema, table, name, size, unique, key_columns in indexes:
        known = widths.get((schema, table), {})
        first_column_order = correlations.get((schema, table), {}).get(
            key_columns[0] if key_columns else "", 0.0
        )
        by_table.setdefault((schema, table), []).append(
            IndexSize(
                name=str(name),
                bytes=int(size),
                key_width=sum(known.get(c, _UNKNOWN_WIDTH) for c in key_columns) or _UNKNOWN_WIDTH,
                unique=bool(unique),
                columns=tuple(str(c) for c in key_columns if c),
                disorder=round(1.0 - min(abs(first_column_order), 1.0), 3),
            )
        )
    sizes: dict[str, TableSize] = {}
    for schema, table, estimate, heap, total, toast in tables:
        if estimate is None or int(estimate) < 0:
            continue
        key = qualified(str(table), None if schema == DEFAULT_SCHEMA else str(schema))
        sizes[key] = TableSize(
            rows=int(estimate),
            heap_bytes=int(heap),
            total_bytes=int(total),
            toast_bytes=int(toast),
            column_widths=dict(sorted(widths.get((schema, table), {}).items())),
            column_correlations=dict(sorted(correlations.get((schema, table), {}).items())),
            indexes=tuple(by_table.get((schema, table), ())),
        )
    return sizes


def user_tables(database_url: str) -> list[str]:
    """Up to five tables of the database outside the system schemas."""
    with _connect(database_url) as conn:
        return [str(row[0]) for row in conn.execute(USER_TABLES).fetchall()]


def _table_data(size: TableSize) -> dict[str, object]:
    data = dataclasses.asdict(size)
    data["indexes"] = [
        {**dataclasses.asdict(index), "columns": list(index.columns)} for index in size.indexes
    ]
    return data


def render_stats(
    tables: Mapping[str, TableSize | int],
    now: datetime | None = None,
    calibration: Calibration | None = None,
) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    header = (
        f"# Written by `zdm stats` on {stamp} from the catalog (pg_class, pg_index, pg_stats; no table was "
        "scanned).\n"
        "# Commit it: zdm uses these sizes to estimate how long a blocking statement holds its lock.\n"
    )
    rows = {t: s if isinstance(s, int) else s.rows for t, s in sorted(tables.items())}
    text = yaml.safe_dump({"table_rows": rows}, sort_keys=False, default_flow_style=False)
    data: dict[str, object] = {}
    sized = {t: _table_data(s) for t, s in sorted(tables.items()) if isinstance(s, TableSize)}
    if sized:
        data["tables"] = sized
    if calibration is not None:
        data["calibration"] = {
            name: {unit: cost for unit, cost in value.items() if cost} if isinstance(value, dict) else value
            for name, value in dataclasses.asdict(calibration).items()
        }
    if data:
        # Mappings and lists of plain values on one line each: a table in a few lines, a diff line per change.
        text += yaml.safe_dump(data, sort_keys=False, width=120, default_flow_style=None)
    return header + text


def read_stats_file(repo_root: Path) -> tuple[dict[str, TableSize | int], Calibration | None]:
    """What an earlier `zdm stats` wrote (any version of the file), to keep what this run does not replace."""
    path = repo_root / STATS_PATH
    if not path.is_file():
        return {}, None
    try:
        config = parse_config(path.read_text(encoding="utf-8"), str(path))
    except ConfigError:
        return {}, None
    tables: dict[str, TableSize | int] = dict(config.table_rows)
    tables.update(config.tables)
    return tables, config.calibration


def write_stats(
    repo_root: Path,
    tables: Mapping[str, TableSize | int],
    calibration: Calibration | None = None,
) -> Path:
    """Write the sizes (and a calibration, else the one the file already has)."""
    path = repo_root / STATS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = calibration or read_stats_file(repo_root)[1]
    path.write_text(render_stats(tables, calibration=kept), encoding="utf-8")
    return path
