"""`zdm check`'s output one file at a time, made in the process that analysed the file.

A large run analyses roots in worker processes. What a worker sends back for a file is its part of the output
and its tally: on the whole corpus, pickling the analysis results there and unpickling them in the parent cost
more than rendering them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.analysis.model import FileResult
from bot.report.tally import Tally


@dataclass(frozen=True, slots=True)
class ShownFile:
    text: str
    tally: Tally
    # The analysis itself, only when the output needs it whole (SARIF) or something else does (a job summary).
    result: FileResult | None = None


@dataclass(frozen=True)
class ShowFile:
    """Makes a file's `ShownFile` for an output format (text, json, github, sarif)."""

    output: str
    color: bool = False
    width: int | None = None
    verbose: bool = False
    keep_result: bool = False

    def __call__(self, file: FileResult) -> ShownFile:
        text = ""
        if self.output == "json":
            from bot.report.json_report import file_json

            text = file_json(file, _fix_data(file))
        elif self.output == "github":
            from bot.report.github import render_github

            text = render_github([file])
        elif self.output == "text":
            from bot.report.text import render_file_text

            text = render_file_text(file, color=self.color, width=self.width, verbose=self.verbose)
        keep = self.keep_result or self.output == "sarif"
        return ShownFile(text, Tally.of_file(file), file if keep else None)


def _fix_data(file: FileResult) -> dict[str, object] | None:
    """The file's safe plan, shared by its statements that have a fix."""
    if not any(s.has_fix for s in file.statements):
        return None
    from bot.analysis.prisma import PrismaVersion
    from bot.fixes.plan import plan_as_data, plan_file

    return plan_as_data(
        plan_file(Path(file.path).parent.name, file, PrismaVersion.parse(file.prisma_version or ""))
    )
