"""`zdm stats`: row estimates from a database, written to a file the repository commits.

Only `pg_class.reltuples` (the planner's estimate) is read: no table is scanned and no data leaves the
database but table names and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from bot.analysis.config import STATS_PATH
from bot.analysis.parser import DEFAULT_SCHEMA, qualified

_ESTIMATES = """
SELECT n.nspname, c.relname, c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""


def read_table_rows(database_url: str) -> dict[str, int]:
    """Estimated rows per table; tables never analysed (estimate -1) are left out, so they count as large."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("zdm stats needs psycopg: pip install 'zdm[db]'") from error
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(_ESTIMATES).fetchall()
    return {
        qualified(str(name), None if schema == DEFAULT_SCHEMA else str(schema)): int(estimate)
        for schema, name, estimate in rows
        if estimate is not None and int(estimate) >= 0
    }


def render_stats(table_rows: dict[str, int], now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    header = (
        f"# Written by `zdm stats` on {stamp} from pg_class estimates (no table was scanned).\n"
        "# Commit it: zdm uses these sizes to tell a blocking statement on a small table from one on a big table.\n"
    )
    return header + yaml.safe_dump({"table_rows": dict(sorted(table_rows.items()))}, sort_keys=False)


def write_stats(repo_root: Path, table_rows: dict[str, int]) -> Path:
    path = repo_root / STATS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_stats(table_rows), encoding="utf-8")
    return path
