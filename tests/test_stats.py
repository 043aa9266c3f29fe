"""`zdm stats` reads row estimates from a real database; the committed file feeds the severities."""

from __future__ import annotations

from pathlib import Path

import psycopg

from bot.analysis.config import load_config
from bot.analysis.engine import analyze_sql
from bot.rules.base import STANDARD_SETUP
from bot.stats import read_table_sizes, write_stats
from bot.verify.server import Server


def test_stats_reads_estimates_and_marks_small_tables(pg_server: Server, tmp_path: Path) -> None:
    with pg_server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('CREATE TABLE "Small" (id int)')
            conn.execute('CREATE TABLE "Big" (id int)')
            conn.execute('INSERT INTO "Small" SELECT generate_series(1, 100)')
            conn.execute('INSERT INTO "Big" SELECT generate_series(1, 200000)')
            conn.execute('CREATE TABLE "NeverAnalysed" (id int)')
            conn.execute('ANALYZE "Small"')
            conn.execute('ANALYZE "Big"')
        # Row counts alone: the file older zdm versions wrote.
        rows = {table: size.rows for table, size in read_table_sizes(url).items()}
    assert rows["Small"] == 100
    assert rows["Big"] == 200000
    assert "NeverAnalysed" not in rows  # unknown sizes count as large

    write_stats(tmp_path, rows)
    config = load_config(tmp_path)
    assert config.known_small("Small")
    assert not config.known_small("Big")
    assert not config.known_small("NeverAnalysed")


def test_blocking_statement_on_a_known_small_table_is_a_warning(tmp_path: Path) -> None:
    write_stats(tmp_path, {"Tip": 500, "User": 5_000_000})
    config = load_config(tmp_path)
    small = analyze_sql('CREATE INDEX "a" ON "Tip"("note");', setup=STANDARD_SETUP, config=config)
    big = analyze_sql('CREATE INDEX "b" ON "User"("name");', setup=STANDARD_SETUP, config=config)
    assert small.statements[0].classification.value == "blocking"
    assert not small.fails_check
    assert big.fails_check
