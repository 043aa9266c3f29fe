"""`zdm check` for people: each risky statement with its locks, why it matters and what to write instead.

The report is built as styled segments and printed once, through rich only for a terminal: printing
thousands of findings one by one through rich costs seconds on a large repository.
"""

from __future__ import annotations

import io
import textwrap
from collections import Counter
from collections.abc import Sequence

from bot.analysis.model import Classification, FileResult, Finding, StatementResult, worst

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
    report = _Report()
    for file in files:
        shown = [s for s in file.statements if verbose or s.findings]
        if not shown and not file.file_findings:
            continue
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
    for note in notes:
        report.append(f"note: {note}\n", style="dim")
    report.append(summary_line(files) + "\n")
    return report.styled() if color else report.plain()


def _finding(report: _Report, finding: Finding, width: int | None) -> None:
    marker = f" (suppressed: {finding.suppressed_reason})" if finding.suppressed_reason else ""
    _wrapped(report, f"{finding.message}{marker}", 4, width, f"[{finding.rule_id}] ", "cyan")
    if finding.safe_alternative and not finding.suppressed:
        _wrapped(report, finding.safe_alternative, 6, width, "instead: ", "green")


def summary_line(files: Sequence[FileResult]) -> str:
    counts: Counter[Classification] = Counter(s.classification for f in files for s in f.statements)
    failing = sum(1 for f in files for s in f.statements if s.fails_check) + sum(
        1 for f in files for finding in f.file_findings if finding.fails_check
    )
    breaking = sum(1 for f in files for s in f.statements if s.breaking)
    total = sum(counts.values())
    parts = ", ".join(f"{counts.get(c, 0)} {c.value}" for c in Classification)
    verdict = f"{failing} need attention before deploying" if failing else "nothing blocks"
    return f"{len(files)} file(s), {total} statement(s): {parts}; {breaking} breaking; {verdict}."
