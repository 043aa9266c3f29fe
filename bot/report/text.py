"""`zdm check` for people: each risky statement with its locks, why it matters and what to write instead.

The report is built as styled segments and printed once, through rich only for a terminal: printing
thousands of findings one by one through rich costs seconds on a large repository.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from bot.analysis.history import Hazard
from bot.analysis.model import Classification, FileResult, Finding, Severity, StatementResult, worst
from bot.report.tally import Tally

_STYLE = {
    Classification.SAFE: "green",
    Classification.BRIEF: "yellow",
    Classification.BLOCKING: "bold red",
    Classification.UNKNOWN: "bold magenta",
}


class _Report:
    """Text with styles, rendered plain or, for a terminal, through rich."""

    def __init__(self) -> None:
        self.segments: list[tuple[str, str]] = []

    def append(self, text: str, style: str = "") -> None:
        self.segments.append((text, style))

    def plain(self) -> str:
        return "".join(text for text, _ in self.segments)

    def styled(self) -> str:
        from rich.console import Console
        from rich.text import Text

        rich_text = Text()
        for text, style in self.segments:
            rich_text.append(text, style=style or None)
        buffer = io.StringIO()
        console = Console(file=buffer, width=10_000, color_system="standard", highlight=False)
        console.print(rich_text, end="", soft_wrap=True)
        return buffer.getvalue()


def _locks(statement: StatementResult) -> str:
    parts = [f"{table}: {mode.sql_name}" for table, mode in sorted(statement.locks.items())]
    parts += [f"rewrites {t}" for t in sorted(statement.rewrites)]
    parts += [f"scans {t}" for t in sorted(statement.scans - statement.rewrites)]
    return ", ".join(parts) or "no lock on a live table"


def _wrapped(
    report: _Report, text: str, indent: int, width: int | None, first: str = "", style: str = ""
) -> None:
    """Append `first` (styled) then `text`, wrapped at `width` (None: not wrapped) with every line indented."""
    prefix = " " * indent
    if width is None:
        report.append(prefix)
        report.append(first, style=style)
        report.append(text.replace("\n", "\n" + prefix + " " * len(first)) + "\n")
        return
    for number, paragraph in enumerate(text.split("\n")):
        lead = first if number == 0 else ""
        lines = textwrap.wrap(
            lead + paragraph,
            width=width,
            initial_indent=prefix,
            subsequent_indent=prefix,
            break_on_hyphens=False,
        ) or [prefix]
        for index, line in enumerate(lines):
            if index == 0 and lead:
                report.append(prefix)
                report.append(lead, style=style)
                report.append(line[len(prefix) + len(lead) :] + "\n")
            else:
                report.append(line + "\n")


def render_text(
    files: Sequence[FileResult],
    notes: Sequence[str] = (),
    color: bool = False,
    width: int | None = 110,
    verbose: bool = False,
) -> str:
    """`width`: wrap long messages (for a terminal); None keeps one line per message (for pipes and logs)."""
    shown = "".join(render_file_text(file, color=color, width=width, verbose=verbose) for file in files)
    return shown + render_text_end(Tally.of(files), notes, color=color)


def render_file_text(
    file: FileResult, color: bool = False, width: int | None = 110, verbose: bool = False
) -> str:
    """One file's block of the report: empty when it has nothing to show."""
    shown = [s for s in file.statements if verbose or s.findings]
    if not shown and not file.file_findings:
        return ""
    report = _Report()
    report.append(file.path + "\n", style="bold")
    for statement in shown:
        lines = (
            f"line {statement.line_start}"
            if statement.line_start == statement.line_end
            else f"lines {statement.line_start}-{statement.line_end}"
        )
        report.append(f"  {lines:<14}")
        report.append(f"{statement.classification.value:<9}", style=_STYLE[statement.classification])
        if statement.breaking:
            report.append("breaking ", style="bold red")
        report.append(_locks(statement) + "\n")
        for band in (statement.lock_time, statement.online_time):
            if band is not None:
                _wrapped(report, band.describe(), 4, width)
        for finding in statement.findings:
            _finding(report, finding, width)
    if file.file_findings:
        report.append(f"  {'whole file':<14}")
        overall = worst([finding.classification for finding in file.file_findings])
        report.append(f"{overall.value:<9}", style=_STYLE[overall])
        report.append("\n")
        for finding in file.file_findings:
            _finding(report, finding, width)
    report.append("\n")
    return report.styled() if color else report.plain()


def render_hazards_text(hazards: Sequence[Hazard], color: bool = False, width: int | None = 110) -> str:
    """What the change does to its roots' history (an edited or reordered migration), one block per hazard."""
    report = _Report()
    for hazard in hazards:
        report.append(hazard.path + "\n", style="bold")
        where = f"line {hazard.line}" if hazard.line else "whole file"
        report.append(f"  {where:<14}")
        style = "bold red" if hazard.severity is Severity.ERROR else "yellow"
        report.append(f"{hazard.severity.value}\n", style=style)
        _wrapped(report, hazard.message, 4, width, f"[{hazard.rule_id}] ", "cyan")
        _wrapped(report, hazard.fix, 6, width, "fix: ", "green")
        report.append("\n")
    return report.styled() if color else report.plain()


def render_text_end(
    tally: Tally, notes: Sequence[str] = (), color: bool = False, hazards: Sequence[Hazard] = ()
) -> str:
    """The notes and the summary line, after every file's block."""
    report = _Report()
    for note in notes:
        report.append(f"note: {note}\n", style="dim")
    report.append(tally.summary_line() + "\n")
    if hazards:
        failing = sum(1 for hazard in hazards if hazard.fails_check)
        verdict = f"{failing} need attention before merging" if failing else "none fails the check"
        report.append(
            f"{len(hazards)} history finding(s) (edited, reordered or relocked migrations, schema drift): {verdict}.\n"
        )
    return report.styled() if color else report.plain()


def _finding(report: _Report, finding: Finding, width: int | None) -> None:
    marker = f" (suppressed: {finding.suppressed_reason})" if finding.suppressed_reason else ""
    _wrapped(report, f"{finding.message}{marker}", 4, width, f"[{finding.rule_id}] ", "cyan")
    if finding.safe_alternative and not finding.suppressed:
        _wrapped(report, finding.safe_alternative, 6, width, "instead: ", "green")


def summary_line(files: Sequence[FileResult]) -> str:
    return Tally.of(files).summary_line()
