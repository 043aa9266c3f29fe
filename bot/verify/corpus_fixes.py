"""Pick real corpus migrations that zdm can rewrite, for proving the rewrites on a real server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import Classification, FileResult
from bot.analysis.roots import find_roots, read_sql


@dataclass(frozen=True)
class FixCase:
    root: Path
    earlier: tuple[str, ...]
    path: Path
    text: str
    result: FileResult


def fix_cases(corpus: Path, per_root: int = 1, config: RepoConfig | None = None) -> list[FixCase]:
    """The first `per_root` migrations of each root whose blocking statements all have a rewrite."""
    cases: list[FixCase] = []
    for root in find_roots(corpus):
        if root.provider != "postgresql":
            continue
        analyzer = Analyzer(config or RepoConfig())
        earlier: list[str] = []
        found = 0
        for path in root.migrations:
            text = read_sql(path)
            result = analyzer.analyze(text, str(path))
            blocking = [s for s in result.statements if s.classification is Classification.BLOCKING]
            # Files whose every blocking statement has a rewrite: after the fix nothing may block.
            if blocking and all(s.has_fix for s in blocking):
                cases.append(FixCase(root.path, tuple(earlier), path, text, result))
                found += 1
                if found >= per_root:
                    break
            earlier.append(text)
    return cases
