"""How long a blocking statement holds its lock: sizes from zdm-stats.yml, bands from the fitted constants,
severities from `max_lock_seconds`, and the band where reviewers decide (text, JSON, checklist, the App)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from bot.analysis.config import load_config, parse_config, with_stats
from bot.analysis.engine import Analyzer, analyze_sql
from bot.analysis.lock_time import (
    DEFAULT_CALIBRATION,
    IndexSize,
    TableSize,
    Work,
    WorkItem,
    estimate_work,
    human_band,
)
from bot.analysis.model import Severity
from bot.analysis.prisma import PrismaVersion
from bot.cli import app
from bot.fixes.checklist import checklist
from bot.report.json_report import render_json
from bot.report.pull_request import ChangedMigration, build_report
from bot.report.text import render_text
from bot.rules.base import STANDARD_SETUP
from bot.stats import read_table_sizes, render_stats, user_tables, write_stats
from bot.verify.lock_time import CASES, CalibrationRefused, Shape, calibrate, estimate, refuse_unless_scratch
from bot.verify.server import Server
from tests.test_app import INITIAL, MIGRATIONS

INDEX = 'CREATE INDEX "Tip_note_idx2" ON "Tip"("note");'


def _table(rows: int, row_bytes: int = 120, indexes: int = 2) -> TableSize:
    return TableSize(
        rows=rows,
        heap_bytes=rows * row_bytes,
        total_bytes=rows * (row_bytes + 40 * indexes),
        column_widths={"note": 10, "id": 4, "amount": 4, "userId": 4},
        indexes=tuple(IndexSize(f"i{n}", rows * 40, key_width=4) for n in range(indexes)),
    )


def _config(**tables: TableSize) -> str:
    return render_stats(tables)


def test_the_stats_file_keeps_every_size_and_the_old_format_still_loads(tmp_path: Path) -> None:
    sizes = {"Tip": _table(48_000_000), "auth.users": _table(10, indexes=0)}
    write_stats(tmp_path, sizes)
    config = load_config(tmp_path)
    assert config.tables == sizes
    assert config.table_rows == {"Tip": 48_000_000, "auth.users": 10}

    old = "# Written by `zdm stats` on 2026-01-01 from pg_class estimates.\ntable_rows:\n  Tip: 500\n  User: 5000000\n"
    (tmp_path / ".github" / "zdm-stats.yml").write_text(old, encoding="utf-8")
    config = load_config(tmp_path)
    assert config.table_rows == {"Tip": 500, "User": 5_000_000} and config.tables == {}
    # Row counts alone keep deciding as before: a known small table is a warning, a big one an error.
    small = analyze_sql(INDEX, setup=STANDARD_SETUP, config=config).statements[0]
    assert small.lock_time is None and not small.fails_check


def test_a_calibration_in_the_stats_file_is_kept_when_sizes_are_read_again(tmp_path: Path) -> None:
    calibration = replace(DEFAULT_CALIBRATION, machine="the user's db.r6g.large", low=0.5)
    write_stats(tmp_path, {"Tip": _table(1000)}, calibration)
    write_stats(tmp_path, {"Tip": _table(2000)})
    config = load_config(tmp_path)
    assert config.calibration == calibration and config.tables["Tip"].rows == 2000


@pytest.mark.parametrize("work", list(Work))
def test_bands_grow_with_the_table(work: Work) -> None:
    previous = 0.0
    for rows in (1_000, 100_000, 1_000_000, 50_000_000, 1_000_000_000):
        for row_bytes in (40, 400):
            sizes = {"T": _table(rows, row_bytes), "P": _table(rows // 10 + 1)}
            item = WorkItem(work, "T", ("note",), looks_up="P" if work is Work.FOREIGN_KEY_SCAN else None)
            seconds = estimate_work([item], sizes)
            assert seconds is not None
            if row_bytes == 40:
                assert seconds >= previous, (work, rows)
                wide = estimate_work([item], {**sizes, "T": _table(rows, 400)})
                assert wide is not None and wide >= seconds
                previous = seconds
    assert previous > 30  # a billion rows is at least half a minute of work for every kind, even cached


def test_severity_follows_max_lock_seconds_when_sizes_are_known() -> None:
    stats = _config(Tip=_table(1_000), User=_table(1_000))
    small = analyze_sql(INDEX, setup=STANDARD_SETUP, config=with_stats(parse_config(""), stats))
    (finding,) = [f for f in small.statements[0].findings if f.rule_id == "create-index"]
    assert finding.severity is Severity.WARNING and not small.fails_check
    assert "under max_lock_seconds 2 s" in finding.message

    big_stats = _config(Tip=_table(200_000_000), User=_table(1_000))
    big = analyze_sql(INDEX, setup=STANDARD_SETUP, config=with_stats(parse_config(""), big_stats))
    assert big.fails_check and big.statements[0].lock_time is not None
    assert big.statements[0].lock_time.high > 2

    patient = with_stats(parse_config("max_lock_seconds: 100000"), big_stats)
    assert not analyze_sql(INDEX, setup=STANDARD_SETUP, config=patient).fails_check

    unknown = analyze_sql(
        INDEX, setup=STANDARD_SETUP, config=with_stats(parse_config(""), _config(User=_table(5)))
    )
    assert unknown.fails_check and unknown.statements[0].lock_time is None
    # A table the repository calls large stays an error whatever its measured size.
    forced = with_stats(parse_config("large_tables: [Tip]"), stats)
    assert analyze_sql(INDEX, setup=STANDARD_SETUP, config=forced).fails_check


def test_a_row_hint_written_by_hand_scales_the_measured_size() -> None:
    config = with_stats(
        parse_config("table_rows: {Tip: 100000000}"), _config(Tip=_table(1_000), User=_table(5))
    )
    statement = analyze_sql(INDEX, setup=STANDARD_SETUP, config=config).statements[0]
    assert statement.lock_time is not None and statement.lock_time.rows == 100_000_000


def test_json_gives_lock_seconds_or_null() -> None:
    config = with_stats(parse_config(""), _config(Tip=_table(5_000_000), User=_table(1_000)))
    sql = INDEX + '\nALTER TABLE "Log" ADD CONSTRAINT "Log_pkey" PRIMARY KEY ("id");\nSELECT 1;'
    result = analyze_sql(sql, setup=STANDARD_SETUP, config=config)
    statements = json.loads(render_json([result]))["files"][0]["statements"]
    band = statements[0]["lock_seconds"]
    assert 0 < band["low"] < band["high"]
    assert (
        statements[1]["classification"] == "blocking" and statements[1]["lock_seconds"] is None
    )  # Log: unknown
    assert statements[2]["lock_seconds"] is None  # nothing blocking
    validate = analyze_sql(
        'ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_userId_fkey";', setup=STANDARD_SETUP, config=config
    )
    online = json.loads(render_json([validate]))["files"][0]["statements"][0]
    assert online["lock_seconds"] is None and online["runs_seconds"]["high"] > 0


def test_text_output_and_checklist_give_the_number() -> None:
    config = with_stats(parse_config(""), _config(Tip=_table(48_000_000), User=_table(1_000)))
    result = analyze_sql(INDEX, setup=STANDARD_SETUP, config=config)
    band = result.statements[0].lock_time
    assert band is not None
    described = f'blocks writes on "Tip" for about {human_band(band.low, band.high)} (48 M rows, '
    assert described in render_text([result], width=None)
    (estimate, *_) = checklist([result])
    assert described in estimate.text and not estimate.query

    unknown = analyze_sql(INDEX, setup=STANDARD_SETUP)
    (advice, *_) = checklist([unknown])
    assert advice.text.startswith("Estimate the migration time") and "pg_total_relation_size" in advice.query


def test_the_app_comment_and_summary_table_give_the_band() -> None:
    config = with_stats(
        parse_config(""),
        _config(Order=_table(48_000_000), User=_table(2_000_000)),
    )
    analyzer = Analyzer(config, prisma=PrismaVersion(6, 19, 0))
    analyzer.analyze(INITIAL, "init.sql")
    sql = 'CREATE INDEX "Order_userId_idx" ON "Order"("userId");\n'
    path = f"{MIGRATIONS}/20240201000000_change/migration.sql"
    report = build_report([ChangedMigration(path, sql, analyzer.analyze(sql, path))], PrismaVersion(6, 19, 0))
    (comment,) = report.comments
    assert 'blocks writes on "Order" for about' in comment.body and "(48 M rows," in comment.body
    row = next(
        line for line in report.summary_comment.splitlines() if line.startswith("| `20240201000000_change`")
    )
    assert 'blocks writes on "Order" for about' in row
    assert "Plan for the time under lock" in report.summary_comment


def test_stats_read_sizes_indexes_and_key_widths_from_the_catalog(pg_server: Server) -> None:
    with pg_server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('CREATE TABLE "Order" (id bigint PRIMARY KEY, code text, note text)')
            conn.execute('CREATE UNIQUE INDEX "Order_code_key" ON "Order"(code)')
            conn.execute(
                "INSERT INTO \"Order\" SELECT g, md5(g::text), (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 100)) FROM generate_series(1, 2000) g"
            )
            conn.execute('ANALYZE "Order"')
        sizes = read_table_sizes(url)
    order = sizes["Order"]
    assert order.rows == 2000 and order.heap_bytes > 0 and order.total_bytes > order.heap_bytes
    assert order.toast_bytes > 0  # 3 kB values go to TOAST
    assert order.column_widths["code"] == 33
    by_name = {index.name: index for index in order.indexes}
    assert by_name["Order_code_key"].unique and by_name["Order_code_key"].key_width == 33
    assert by_name["Order_pkey"].columns == ("id",) and by_name["Order_pkey"].key_width == 8


def test_calibrate_refuses_a_database_that_holds_tables(pg_server: Server, tmp_path: Path) -> None:
    with pg_server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA app")
            conn.execute("CREATE TABLE app.customers (id int)")
        with pytest.raises(CalibrationRefused, match=r"app\.customers"):
            refuse_unless_scratch(url)
        outcome = CliRunner().invoke(
            app, ["stats", "--calibrate", "--database-url", url, "--repo", str(tmp_path)]
        )
    assert outcome.exit_code == 2
    assert "refusing to calibrate" in outcome.output
    assert not (tmp_path / ".github" / "zdm-stats.yml").exists()


def test_calibration_times_every_kind_of_work_fits_and_leaves_no_table(pg_server: Server) -> None:
    shapes = (Shape(2_000, wide=False, indexed=False), Shape(20_000, wide=True, indexed=True))
    with pg_server.fresh_database() as url:
        calibration, samples = calibrate(url, shapes, repeat=1)
        assert user_tables(url) == []
    assert len(samples) == len(shapes) * len(CASES)
    assert {s.case.work for s in samples} == set(Work)
    assert all(run > 0 for s in samples for run in s.runs)
    assert calibration.low <= 1 <= calibration.high and calibration.production_factor == 1
    assert estimate(samples[-1], calibration) > 0


def test_zdm_stats_writes_sizes_that_zdm_check_turns_into_bands(
    pg_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no git repository here: zdm stats writes under the current directory
    with pg_server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(STANDARD_SETUP.encode())
            conn.execute(
                b'INSERT INTO "Tip" ("amount", "note") SELECT g, left(md5(g::text), 10) FROM generate_series(1, 20000) g'
            )
            conn.execute(b"ANALYZE")
        outcome = CliRunner().invoke(app, ["stats", "--database-url", url])
    assert outcome.exit_code == 0, outcome.output
    config = load_config(tmp_path)
    tip = config.tables["Tip"]
    assert tip.rows == 20_000 and {i.name for i in tip.indexes} == {
        "Tip_pkey",
        "Tip_amount_idx",
        "Tip_note_idx",
    }
    statement = analyze_sql(INDEX, setup=STANDARD_SETUP, config=config).statements[0]
    assert statement.lock_time is not None and statement.lock_time.high < 2 and not statement.fails_check
