"""`zdm check --format github`: workflow commands that annotate the migration lines in a pull request.

One command per unsuppressed finding: `::error file=PATH,line=START,endLine=END,title=zdm RULE::MESSAGE`
(`warning` and `notice` for lower levels), escaped as the Actions toolkit escapes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.analysis.history import Hazard
from bot.analysis.model import FileResult
from bot.report import annotation_message, located_findings
from bot.report.sarif import level

_COMMANDS = {"error": "error", "warning": "warning", "note": "notice"}


def escape_data(text: str) -> str:
    """A command's message: `%`, CR and LF would end or corrupt the command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value: also `:` (ends the properties) and `,` (separates them)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(files: Sequence[FileResult]) -> str:
    lines = []
    for file in files:
        for located in located_findings(file):
            finding = located.finding
            if finding.suppressed:
                continue
            properties = ",".join(
                [
                    f"file={escape_property(file.path)}",
                    f"line={located.line_start}",
                    f"endLine={located.line_end}",
                    f"title={escape_property(f'zdm {finding.rule_id}')}",
                ]
            )
            message = escape_data(annotation_message(finding))
            lines.append(f"::{_COMMANDS[level(finding)]} {properties}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_github_hazards(hazards: Sequence[Hazard]) -> str:
    """One workflow command per history hazard, on its line when the file exists at head."""
    lines = []
    for hazard in hazards:
        properties = [f"file={escape_property(hazard.path)}"]
        if hazard.line is not None:
            properties.append(f"line={hazard.line}")
        properties.append(f"title={escape_property(f'zdm {hazard.rule_id}')}")
        command = _COMMANDS.get(hazard.severity.value, "notice")
        message = escape_data(f"{hazard.message}\nFix: {hazard.fix}")
        lines.append(f"::{command} {','.join(properties)}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")
