"""The report formats, as pure functions of analysis results, and the generated rule documentation."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.analysis.engine import Analyzer
from bot.analysis.model import Classification, FileResult, Finding, LockMode, Severity, StatementResult
from bot.report.docs import is_rule_page, render_index, render_rule_page, rule_pages
from bot.report.github import escape_data, escape_property, render_github
from bot.report.json_report import render_json
from bot.report.sarif import render_sarif
from bot.report.text import render_text
from bot.rules import ALL_RULES, FILE_RULES, HISTORY_RULES, RULES
from bot.rules.base import STANDARD_SETUP

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules"
PATH = "prisma/migrations/20240201000000_change/migration.sql"
# Line 1: a suppression; 2: a blocking index (suppressed); 3-4: a blocking index; 5: a breaking drop.
MIGRATION = (
    "-- zdm:ignore create-index Tip has 40 rows\n"
    'CREATE INDEX "a" ON "Tip"("note");\n'
    'CREATE INDEX "b"\n  ON "Tip"("amount");\n'
    'ALTER TABLE "User" DROP COLUMN "bio";\n'
)


def _analyzed(sql: str = MIGRATION, path: str = PATH) -> FileResult:
    analyzer = Analyzer()
    analyzer.replay(STANDARD_SETUP)
    return analyzer.analyze(sql, path)


def _finding(message: str = "m", **changes: Any) -> Finding:
    base = Finding(
        rule_id="create-index",
        classification=Classification.BLOCKING,
        severity=Severity.ERROR,
        message=message,
        safe_alternative="",
        breaking=False,
        table="Tip",
    )
    return replace(base, **changes)


def _file(*findings: Finding, path: str = PATH, file_findings: tuple[Finding, ...] = ()) -> FileResult:
    statement = StatementResult(
        index=0,
        line_start=3,
        line_end=4,
        sql='CREATE INDEX "b" ON "Tip"("amount")',
        classification=Classification.BLOCKING,
        breaking=False,
        locks={"Tip": LockMode.SHARE},
        rewrites=frozenset(),
        scans=frozenset({"Tip"}),
        findings=findings,
        kind="CREATE INDEX",
    )
    return FileResult(path=path, statements=(statement,), file_findings=file_findings)


# JSON


def test_json_has_the_documented_shape_per_statement() -> None:
    document = json.loads(render_json([_analyzed()]))
    [file] = document["files"]
    assert file["path"] == PATH
    suppressed, blocking, drop = file["statements"]
    for statement in (suppressed, blocking, drop):
        assert {
            "line_start",
            "line_end",
            "classification",
            "breaking",
            "locks",
            "rewrite",
            "scan",
            "rules",
        } <= statement.keys()
        assert isinstance(statement["rewrite"], bool) and isinstance(statement["scan"], bool)
    assert (blocking["line_start"], blocking["line_end"]) == (3, 4)
    assert blocking["classification"] == "blocking"
    assert blocking["locks"] == {"Tip": "SHARE"}
    assert blocking["scan"] is True and blocking["rewrite"] is False
    assert blocking["scans"] == ["Tip"] and blocking["rewrites"] == []
    assert "create-index" in blocking["rules"] and blocking["rules"] == sorted(blocking["rules"])
    assert blocking["fails_check"] is True


def test_json_names_lock_modes_as_sql_does() -> None:
    document = json.loads(render_json([_analyzed()]))
    drop = document["files"][0]["statements"][2]
    assert drop["locks"] == {"User": "ACCESS EXCLUSIVE"}
    assert drop["breaking"] is True


def test_json_findings_carry_severity_alternative_and_suppression_reason() -> None:
    document = json.loads(render_json([_analyzed()]))
    suppressed, blocking, _ = document["files"][0]["statements"]
    [index] = [f for f in suppressed["findings"] if f["rule"] == "create-index"]
    assert index["suppressed"] is True and index["suppressed_reason"] == "Tip has 40 rows"
    assert index["fails_check"] is False
    assert suppressed["fails_check"] is False
    [live] = [f for f in blocking["findings"] if f["rule"] == "create-index"]
    assert live["severity"] == "error" and live["suppressed_reason"] is None
    assert "CONCURRENTLY" in live["safe_alternative"]


def test_json_summary_counts_and_notes() -> None:
    document = json.loads(render_json([_analyzed()], notes=["db/migrations: provider is 'mysql'"]))
    summary = document["summary"]
    assert summary["files"] == 1 and summary["statements"] == 3
    assert summary["by_classification"] == {"safe": 0, "brief": 1, "blocking": 2, "unknown": 0}
    assert summary["failing"] == 1 and summary["breaking"] == 1
    assert document["notes"] == ["db/migrations: provider is 'mysql'"]
    assert document["fails_check"] is True and document["files"][0]["fails_check"] is True


def test_json_reports_file_level_findings() -> None:
    document = json.loads(render_json([_file(file_findings=(_finding("whole file"),))]))
    [finding] = document["files"][0]["file_findings"]
    assert finding["message"] == "whole file" and finding["fails_check"] is True


# SARIF


def test_sarif_is_structurally_valid_2_1_0() -> None:
    document = json.loads(render_sarif([_analyzed()]))
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-2.1.0.json")
    [run] = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "zdm"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert rule_ids == [r.id for r in (*ALL_RULES, *HISTORY_RULES)]
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == PATH
        assert 1 <= physical["region"]["startLine"] <= physical["region"]["endLine"]


def test_sarif_rules_describe_themselves_from_the_registry() -> None:
    driver = json.loads(render_sarif([]))["runs"][0]["tool"]["driver"]
    by_id = {r["id"]: r for r in driver["rules"]}
    for rule in ALL_RULES:
        described = by_id[rule.id]
        assert described["shortDescription"]["text"] == rule.title
        assert described["fullDescription"]["text"] == rule.summary
        assert rule.why in described["help"]["text"] and rule.instead in described["help"]["text"]


def test_sarif_levels_and_regions_follow_the_findings() -> None:
    results = json.loads(render_sarif([_analyzed()]))["runs"][0]["results"]
    [live] = [r for r in results if r["ruleId"] == "create-index" and "suppressions" not in r]
    assert live["level"] == "error"
    assert live["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "endLine": 4}
    assert "Instead: CREATE INDEX CONCURRENTLY" in live["message"]["text"]
    info = json.loads(render_sarif([_file(_finding(severity=Severity.INFO))]))["runs"][0]["results"]
    assert info[0]["level"] == "note"
    warning = _finding(severity=Severity.WARNING)
    assert json.loads(render_sarif([_file(warning)]))["runs"][0]["results"][0]["level"] == "warning"


def test_sarif_marks_suppressed_findings_in_source_with_their_reason() -> None:
    results = json.loads(render_sarif([_analyzed()]))["runs"][0]["results"]
    [suppressed] = [r for r in results if "suppressions" in r]
    assert suppressed["ruleId"] == "create-index"
    assert suppressed["suppressions"] == [{"kind": "inSource", "justification": "Tip has 40 rows"}]
    assert suppressed["locations"][0]["physicalLocation"]["region"]["startLine"] == 2


# GitHub workflow commands

_COMMAND = re.compile(
    r"^::(?P<level>error|warning|notice) file=(?P<file>[^,:]+),line=(?P<line>\d+),endLine=(?P<end>\d+),"
    r"title=zdm (?P<rule>[a-z-]+)::(?P<message>.+)$"
)


def test_github_prints_one_command_per_unsuppressed_finding() -> None:
    file = _analyzed()
    output = render_github([file])
    lines = output.splitlines()
    unsuppressed = [f for s in file.statements for f in s.findings if not f.suppressed]
    assert len(lines) == len(unsuppressed)
    commands = [_COMMAND.match(line) for line in lines]
    assert all(commands), lines
    index = next(c for c in commands if c and c["rule"] == "create-index")
    assert (index["level"], index["file"], index["line"], index["end"]) == ("error", PATH, "3", "4")
    assert output.endswith("\n")


def test_github_skips_suppressed_findings() -> None:
    assert render_github([_file(_finding(suppressed_reason="tiny table"))]) == ""


def test_github_escapes_newlines_and_percent_in_the_message() -> None:
    finding = _finding("50% of\r\nthe table", safe_alternative="first\nsecond")
    [line] = render_github([_file(finding)]).splitlines()
    assert line.endswith("::blocking: 50%25 of%0D%0Athe table%0AInstead: first%0Asecond")


def test_github_escapes_colons_and_commas_in_properties() -> None:
    [line] = render_github([_file(_finding(), path="db:one,two/migration.sql")]).splitlines()
    assert line.startswith(
        "::error file=db%3Aone%2Ctwo/migration.sql,line=3,endLine=4,title=zdm create-index::"
    )


def test_github_escape_functions_follow_the_actions_toolkit() -> None:
    assert escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"


def test_github_levels_map_to_workflow_commands() -> None:
    output = render_github(
        [_file(_finding(severity=Severity.WARNING), _finding(rule_id="drop-index", severity=Severity.INFO))]
    )
    assert [line.split(" ", 1)[0] for line in output.splitlines()] == ["::warning", "::notice"]


def test_github_reports_file_level_findings_on_line_one() -> None:
    output = render_github([_file(file_findings=(_finding("whole file"),))])
    assert output.startswith(f"::error file={PATH},line=1,endLine=1,title=zdm create-index::")


# Text


def test_text_shows_each_risky_statement_with_locks_findings_and_alternative() -> None:
    text = render_text([_analyzed()], width=None)
    assert PATH in text
    assert re.search(r"lines 3-4\s+blocking\s+Tip: SHARE, scans Tip", text)
    assert re.search(r"line 5\s+brief\s+breaking User: ACCESS EXCLUSIVE", text)
    assert "[create-index] Building this index" in text
    assert 'instead: CREATE INDEX CONCURRENTLY "b" ON "Tip"' in text
    assert "(suppressed: Tip has 40 rows)" in text


def test_text_ends_with_a_summary_and_lists_notes() -> None:
    text = render_text([_analyzed()], notes=["db: provider is 'mysql', not postgresql; skipped"])
    assert "note: db: provider is 'mysql', not postgresql; skipped" in text
    assert text.splitlines()[-1] == (
        "1 file(s), 3 statement(s): 0 safe, 1 brief, 0 unknown, 2 blocking; 1 breaking; "
        "1 need attention before deploying."
    )


def test_text_has_no_colour_codes_unless_asked() -> None:
    assert "\x1b[" not in render_text([_analyzed()])
    assert "\x1b[" in render_text([_analyzed()], color=True)


def test_text_leaves_out_files_with_nothing_to_say_unless_verbose() -> None:
    quiet = _analyzed('CREATE TABLE "New" ("id" INTEGER);\n', path="quiet.sql")
    assert "quiet.sql" not in render_text([quiet])
    assert "quiet.sql" in render_text([quiet], verbose=True)
    assert render_text([quiet]).strip().endswith("nothing blocks.")


def test_text_wraps_long_messages_for_a_terminal() -> None:
    text = render_text([_analyzed()], width=60)
    assert max(len(line) for line in text.splitlines()[:-1]) <= 60


def test_text_reports_file_level_findings() -> None:
    text = render_text([_file(file_findings=(_finding("whole file"),))], width=None)
    assert re.search(r"whole file\s+blocking", text)
    assert "[create-index] whole file" in text


# Rule documentation


def test_rule_page_has_the_ruff_shape() -> None:
    rule = next(r for r in RULES if r.id == "create-index")
    page = render_rule_page(rule)
    assert page.startswith(f"# create-index: {rule.title}\n\n{rule.summary}\n")
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == ["## Why is this bad?", "## Example", "## Use instead", "## Lock behaviour"]
    first_problem = next(e for e in rule.examples if e.classification is not Classification.SAFE)
    assert f"## Example\n\n```sql\n{first_problem.sql}\n```" in page
    table = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(table) == len(rule.examples)
    assert [line.rsplit("| ", 1)[1].split()[0] for line in table] == [
        e.classification.value for e in rule.examples
    ]
    assert is_rule_page(page)


def test_index_links_every_statement_and_file_rule() -> None:
    index = render_index(ALL_RULES)
    for rule_id in [r.id for r in RULES] + [r.id for r in FILE_RULES]:
        assert f"| [{rule_id}]({rule_id}.md) |" in index
    assert not is_rule_page(index)


def test_committed_rule_docs_equal_the_generator() -> None:
    expected = rule_pages()
    committed = {page.name: page.read_text(encoding="utf-8") for page in DOCS.glob("*.md")}
    assert sorted(committed) == sorted(expected), "run `zdm docs --output docs/rules`"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert not stale, f"out of date: {stale}; run `zdm docs --output docs/rules`"
