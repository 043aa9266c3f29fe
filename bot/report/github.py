"""`zdm check --format github`: workflow commands that annotate the migration lines in a pull request."""

from __future__ import annotations

from collections.abc import Sequence

from bot.analysis.model import FileResult
from bot.report.sarif import level

_COMMANDS = {"error": "error", "warning": "warning", "note": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(files: Sequence[FileResult]) -> str:
    lines = []
    for file in files:
        for statement in file.statements:
            for finding in statement.findings:
                if finding.suppressed:
                    continue
                command = _COMMANDS[level(finding)]
                properties = ",".join(
                    [
                        f"file={_escape_property(file.path)}",
                        f"line={statement.line_start}",
                        f"endLine={statement.line_end}",
                        f"title={_escape_property(f'zdm {finding.rule_id} ({finding.classification.value})')}",
                    ]
                )
                message = finding.message
                if finding.safe_alternative:
                    message += f"\nInstead: {finding.safe_alternative}"
                lines.append(f"::{command} {properties}::{_escape_data(message)}")
    return "\n".join(lines) + ("\n" if lines else "")
