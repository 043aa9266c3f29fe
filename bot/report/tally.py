"""What a report's summary counts, added up file by file.

A large run analyses files in worker processes; each sends back its file's tally with its part of the output,
so the summary needs no analysis results in the parent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.analysis.model import Classification, FileResult

_ORDER = tuple(Classification)
_POSITION = {classification: index for index, classification in enumerate(_ORDER)}


@dataclass(frozen=True, slots=True)
class Tally:
    files: int = 0
    # Statements per classification, in `Classification` order.
    statements: tuple[int, ...] = (0,) * len(_ORDER)
    breaking: int = 0
    failing_statements: int = 0
    failing_file_findings: int = 0
    failing_files: int = 0

    @classmethod
    def of_file(cls, file: FileResult) -> Tally:
        counts = [0] * len(_ORDER)
        breaking = failing = 0
        # One pass: every file of a whole-repository run is counted in the process that analysed it.
        for statement in file.statements:
            counts[_POSITION[statement.classification]] += 1
            breaking += statement.breaking
            if statement.findings and statement.fails_check:
                failing += 1
        failing_file_findings = sum(1 for f in file.file_findings if f.fails_check)
        return cls(
            1,
            tuple(counts),
            breaking,
            failing,
            failing_file_findings,
            1 if failing or failing_file_findings else 0,
        )

    @classmethod
    def of(cls, files: Iterable[FileResult]) -> Tally:
        return cls.total(cls.of_file(file) for file in files)

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        total = cls()
        for tally in tallies:
            total = total + tally
        return total

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.files + other.files,
            tuple(a + b for a, b in zip(self.statements, other.statements, strict=True)),
            self.breaking + other.breaking,
            self.failing_statements + other.failing_statements,
            self.failing_file_findings + other.failing_file_findings,
            self.failing_files + other.failing_files,
        )

    def by_classification(self) -> dict[str, int]:
        return {c.value: n for c, n in zip(_ORDER, self.statements, strict=True)}

    @property
    def fails_check(self) -> bool:
        return self.failing_files > 0

    def summary_line(self) -> str:
        failing = self.failing_statements + self.failing_file_findings
        parts = ", ".join(f"{n} {c}" for c, n in self.by_classification().items())
        verdict = f"{failing} need attention before deploying" if failing else "nothing blocks"
        return (
            f"{self.files} file(s), {sum(self.statements)} statement(s): {parts}; {self.breaking} breaking; "
            f"{verdict}."
        )
