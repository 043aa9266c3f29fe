"""`zdm check --format sarif`: SARIF 2.1.0, as GitHub code scanning reads it."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.analysis.history import Hazard
from bot.analysis.model import Classification, FileResult, Finding, Severity
from bot.report import located_findings
from bot.rules import ALL_RULES, HISTORY_RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_DEFAULT_LEVEL = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
    Severity.OFF: "none",
}


def level(finding: Finding) -> str:
    """error: fails the check; note: information (info severity, or safe and not breaking); else warning."""
    if finding.fails_check:
        return "error"
    if finding.severity is Severity.INFO or (
        finding.classification is Classification.SAFE and not finding.breaking
    ):
        return "note"
    return "warning"


def _rules() -> list[dict[str, object]]:
    return [
        {
            "id": rule.id,
            "name": rule.id,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.summary},
            "help": {
                "text": f"{rule.why}\n\nInstead: {rule.instead}",
                "markdown": f"{rule.why}\n\n**Instead:** {rule.instead}",
            },
            "defaultConfiguration": {"level": _DEFAULT_LEVEL[rule.severity]},
        }
        for rule in (*ALL_RULES, *HISTORY_RULES)
    ]


def _hazard_result(hazard: Hazard) -> dict[str, object]:
    location: dict[str, object] = {"artifactLocation": {"uri": hazard.path}}
    if hazard.line is not None:
        location["region"] = {"startLine": hazard.line}
    return {
        "ruleId": hazard.rule_id,
        "level": _DEFAULT_LEVEL[hazard.severity],
        "message": {"text": f"{hazard.message}\nFix: {hazard.fix}"},
        "locations": [{"physicalLocation": location}],
    }


def render_sarif(files: Sequence[FileResult], version: str = "0.1.0", hazards: Sequence[Hazard] = ()) -> str:
    results = [_hazard_result(hazard) for hazard in hazards]
    for file in files:
        for located in located_findings(file):
            finding = located.finding
            result: dict[str, object] = {
                "ruleId": finding.rule_id,
                "level": level(finding),
                "message": {"text": _message(finding)},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": file.path},
                            "region": {"startLine": located.line_start, "endLine": located.line_end},
                        }
                    }
                ],
                "properties": {
                    "classification": finding.classification.value,
                    "breaking": finding.breaking,
                    "table": finding.table,
                },
            }
            if finding.suppressed_reason is not None:
                result["suppressions"] = [{"kind": "inSource", "justification": finding.suppressed_reason}]
            results.append(result)
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "zdm", "version": version, "rules": _rules()}},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2)


def _message(finding: Finding) -> str:
    if finding.safe_alternative:
        return f"{finding.message}\nInstead: {finding.safe_alternative}"
    return finding.message
