"""`zdm check` for people: each risky statement with its locks, why it matters and what to write instead."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from bot.analysis.model import Classification, FileResult, StatementResult

_STYLE = {
    Classification.SAFE: "green",
    Classification.BRIEF: "yellow",
    Classification.BLOCKING: "bold red",
    Classification.UNKNOWN: "bold magenta",
}


def _locks(statement: StatementResult) -> str:
    parts = [f"{table}: {mode.sql_name}" for table, mode in sorted(statement.locks.items())]
    parts += [f"rewrites {t}" for t in sorted(statement.rewrites)]
    parts += [f"scans {t}" for t in sorted(statement.scans - statement.rewrites)]
    return ", ".join(parts) or "no lock on a live table"


def render_text(
    files: Sequence[FileResult],
    notes: Sequence[str] = (),
    color: bool = False,
    width: int = 110,
    verbose: bool = False,
) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system="standard" if color else None, highlight=False)
    for file in files:
        shown = [s for s in file.statements if verbose or s.findings]
        if not shown:
            continue
        console.print(Text(file.path, style="bold"))
        for statement in shown:
            lines = (
                f"line {statement.line_start}"
                if statement.line_start == statement.line_end
                else f"lines {statement.line_start}-{statement.line_end}"
            )
            header = Text("  ")
            header.append(f"{lines:<14}")
            header.append(f"{statement.classification.value:<9}", style=_STYLE[statement.classification])
            if statement.breaking:
                header.append("breaking ", style="bold red")
            header.append(_locks(statement))
            console.print(header)
            for finding in statement.findings:
                marker = f" (suppressed: {finding.suppressed_reason})" if finding.suppressed_reason else ""
                console.print(Padding(Text(f"[{finding.rule_id}] {finding.message}{marker}"), (0, 0, 0, 4)))
                if finding.safe_alternative and not finding.suppressed:
                    instead = Text("instead: ", style="cyan")
                    instead.append(finding.safe_alternative)
                    console.print(Padding(instead, (0, 0, 0, 6)))
        console.print()
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print(Text(summary_line(files)))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def summary_line(files: Sequence[FileResult]) -> str:
    counts: Counter[Classification] = Counter(s.classification for f in files for s in f.statements)
    failing = sum(1 for f in files for s in f.statements if s.fails_check)
    breaking = sum(1 for f in files for s in f.statements if s.breaking)
    total = sum(counts.values())
    parts = ", ".join(f"{counts.get(c, 0)} {c.value}" for c in Classification)
    verdict = f"{failing} need attention before deploying" if failing else "nothing blocks"
    return f"{len(files)} file(s), {total} statement(s): {parts}; {breaking} breaking; {verdict}."
