"""`zdm check --format json`: per file, per statement, what zdm found; a summary; notes.

`locks` maps each live table to the strongest mode taken (`"ACCESS EXCLUSIVE"`); `rewrite`/`scan` say whether
any live table is rewritten or scanned (`rewrites`/`scans` name them); `rules` are the ids of the findings.
`lock_seconds` is the band (`low`, `high`) of seconds a blocking lock is held, from the tables' sizes (null
when there is no blocking work or a size is unknown); `runs_seconds` the same for work that blocks neither
reads nor writes (`VALIDATE CONSTRAINT`). Per file, `rollback` holds the steps that undo it, newest statement
first: each with its `sql`, or null and the `reason` it cannot be undone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from bot.analysis.history import Hazard
from bot.analysis.lock_time import Duration
from bot.analysis.model import FileResult, Finding, StatementResult
from bot.analysis.rollback import RollbackPlan
from bot.report.tally import Tally


def finding_data(finding: Finding) -> dict[str, object]:
    return {
        "rule": finding.rule_id,
        "classification": finding.classification.value,
        "severity": finding.severity.value,
        "breaking": finding.breaking,
        "fails_migration": finding.fails_migration,
        "table": finding.table,
        "message": finding.message,
        "safe_alternative": finding.safe_alternative,
        "suppressed": finding.suppressed,
        "suppressed_reason": finding.suppressed_reason,
        "fails_check": finding.fails_check,
    }


def statement_data(statement: StatementResult, fix: Mapping[str, object] | None) -> dict[str, object]:
    data: dict[str, object] = {
        "line_start": statement.line_start,
        "line_end": statement.line_end,
        "classification": statement.classification.value,
        "breaking": statement.breaking,
        "locks": {table: mode.sql_name for table, mode in sorted(statement.locks.items())},
        "rewrite": bool(statement.rewrites),
        "scan": bool(statement.scans),
        "rewrites": sorted(statement.rewrites),
        "scans": sorted(statement.scans),
        "rules": statement.rule_ids,
        "lock_seconds": _band(statement.lock_time),
        "runs_seconds": _band(statement.online_time),
        "fails_check": statement.fails_check,
        "findings": [finding_data(f) for f in statement.findings],
    }
    if fix is not None and statement.has_fix:
        data["fix"] = fix
    return data


def _band(duration: Duration | None) -> dict[str, float] | None:
    return None if duration is None else {"low": round(duration.low, 3), "high": round(duration.high, 3)}


def render_json(
    files: Sequence[FileResult],
    notes: Sequence[str] = (),
    fixes: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """`fixes`: per file path, the plan (see `bot.fixes.plan.plan_as_data`) that statements with a fix share."""
    pieces = [file_json(f, (fixes or {}).get(f.path)) for f in files]
    return render_json_document(pieces, Tally.of(files), notes)


def rollback_data(plan: RollbackPlan) -> dict[str, object]:
    return {
        "complete": plan.complete,
        "steps": [
            {
                "line": step.line,
                "sql": step.sql,
                "reason": step.reason,
                "caution": step.caution,
                "outside_transaction": step.outside_transaction,
            }
            for step in plan.steps
        ],
    }


def file_json(file: FileResult, fix: Mapping[str, object] | None = None) -> str:
    """One entry of the document's `files`, as JSON text."""
    data: dict[str, object] = {
        "path": file.path,
        "classification": file.classification.value,
        "fails_check": file.fails_check,
        "prisma_version": file.prisma_version,
        "statements": [statement_data(s, fix) for s in file.statements],
        "file_findings": [finding_data(finding) for finding in file.file_findings],
    }
    if file.rollback is not None:
        data["rollback"] = rollback_data(file.rollback)
    return json.dumps(data, separators=(",", ":"))


def hazard_data(hazard: Hazard) -> dict[str, object]:
    return {
        "rule": hazard.rule_id,
        "severity": hazard.severity.value,
        "path": hazard.path,
        "line": hazard.line,
        "message": hazard.message,
        "fix": hazard.fix,
        "fails_check": hazard.fails_check,
    }


def render_json_document(
    files_json: Sequence[str], tally: Tally, notes: Sequence[str] = (), hazards: Sequence[Hazard] = ()
) -> str:
    """The document around its files' entries (from `file_json`), which may have been made in other processes.
    `hazards`: what the change does to its roots' history (`zdm check --base`), under `history`."""
    by_classification = tally.by_classification()
    rest = {
        "fails_check": tally.fails_check or any(hazard.fails_check for hazard in hazards),
        "history": [hazard_data(hazard) for hazard in hazards],
        "summary": {
            "files": tally.files,
            "statements": sum(tally.statements),
            "by_classification": {c: by_classification[c] for c in ("safe", "brief", "blocking", "unknown")},
            "breaking": tally.breaking,
            "failing": tally.failing_statements,
            "failing_files": tally.failing_files,
        },
        "notes": list(notes),
    }
    # Compact: Python's C encoder only runs without indent (4 s against 0.3 s on the whole corpus).
    return '{"files":[' + ",".join(files_json) + "]," + json.dumps(rest, separators=(",", ":"))[1:]
