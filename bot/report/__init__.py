"""Findings into words and formats: text, JSON, SARIF, GitHub workflow annotations, rule documentation (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bot.analysis.model import FileResult, Finding


@dataclass(frozen=True, slots=True)
class Located:
    """A finding with the lines it is reported on."""

    line_start: int
    line_end: int
    finding: Finding


def located_findings(file: FileResult) -> Iterator[Located]:
    """Every finding of a file, statement by statement, then the file-level ones (reported on line 1)."""
    for statement in file.statements:
        for finding in statement.findings:
            yield Located(statement.line_start, statement.line_end, finding)
    for finding in file.file_findings:
        yield Located(1, 1, finding)


def annotation_message(finding: Finding) -> str:
    """A finding as one annotation's text: its class, what it does, and what to do instead."""
    message = f"{finding.classification.value}: {finding.message}"
    if finding.safe_alternative:
        message += f"\nInstead: {finding.safe_alternative}"
    return message
