"""`zdm check --format json`: per file, per statement, what zdm found; a summary; notes.

`locks` maps each live table to the strongest mode taken (`"ACCESS EXCLUSIVE"`); `rewrite`/`scan` say whether
any live table is rewritten or scanned (`rewrites`/`scans` name them); `rules` are the ids of the findings.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

from bot.analysis.model import FileResult, Finding, StatementResult


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
        "fails_check": statement.fails_check,
        "findings": [finding_data(f) for f in statement.findings],
    }
    if fix is not None and statement.has_fix:
        data["fix"] = fix
    return data


def render_json(
    files: Sequence[FileResult],
    notes: Sequence[str] = (),
    fixes: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """`fixes`: per file path, the plan (see `bot.fixes.plan.plan_as_data`) that statements with a fix share."""
    counts: Counter[str] = Counter(s.classification.value for f in files for s in f.statements)
    document = {
        "files": [
            {
                "path": f.path,
                "classification": f.classification.value,
                "fails_check": f.fails_check,
                "prisma_version": f.prisma_version,
                "statements": [statement_data(s, (fixes or {}).get(f.path)) for s in f.statements],
                "file_findings": [finding_data(finding) for finding in f.file_findings],
            }
            for f in files
        ],
        "fails_check": any(f.fails_check for f in files),
        "summary": {
            "files": len(files),
            "statements": sum(counts.values()),
            "by_classification": {c: counts.get(c, 0) for c in ("safe", "brief", "blocking", "unknown")},
            "breaking": sum(1 for f in files for s in f.statements if s.breaking),
            "failing": sum(1 for f in files for s in f.statements if s.fails_check),
            "failing_files": sum(1 for f in files if f.fails_check),
        },
        "notes": list(notes),
    }
    # Compact: Python's C encoder only runs without indent (4 s against 0.3 s on the whole corpus).
    return json.dumps(document, separators=(",", ":"))
