"""zdm's analysis speed and memory against squawk on the real corpus, in one run.

    python bench/run.py [--runs 5] [--corpus ../shared/corpus/prisma]

Prints a table. Timings on a shared machine are noisy: read the medians and the ratio, not single runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "prisma"

# Runs a command and prints its wall time and peak memory (max RSS of that child alone) as JSON.
_MEASURE_CHILD = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


@dataclass
class Row:
    name: str
    seconds: list[float]
    target: str = ""
    memory_kb: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def run_measured(command: list[str]) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_CHILD, *command], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout)
    return float(data["seconds"]), int(data["max_rss_kb"])


def timed(function: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def largest_file(corpus: Path) -> tuple[Path, list[Path]]:
    """The biggest migration.sql by bytes, and the earlier migrations of its root (replayed, not timed)."""
    from bot.analysis.roots import find_roots

    best: tuple[int, Path, list[Path]] | None = None
    for root in find_roots(corpus):
        for index, path in enumerate(root.migrations):
            size = path.stat().st_size
            if best is None or size > best[0]:
                best = (size, path, list(root.migrations[:index]))
    assert best is not None, "no migration found"
    return best[1], best[2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("ZDM_CORPUS", DEFAULT_CORPUS)))
    args = parser.parse_args()
    corpus: Path = args.corpus.resolve()
    if not corpus.is_dir():
        print(f"corpus not found at {corpus}: pass --corpus or set ZDM_CORPUS", file=sys.stderr)
        return 2
    zdm = shutil.which("zdm")
    squawk = shutil.which("squawk")
    if zdm is None or squawk is None:
        print("needs `zdm` and `squawk` on PATH: pip install -e '.[dev]'", file=sys.stderr)
        return 2

    from bot.analysis.config import RepoConfig
    from bot.analysis.engine import Analyzer
    from bot.analysis.roots import check_paths, read_sql

    files = sorted(corpus.rglob("migration.sql"))
    statements = sum(len(f.statements) for f in check_paths([corpus], RepoConfig()).files)

    zdm_cli = Row("zdm check (CLI, whole corpus, text)", [], "<= 2x squawk")
    zdm_json = Row("zdm check --format json (CLI)", [])
    squawk_cli = Row("squawk (CLI, same files)", [])
    # Alternate the tools so that machine noise hits both alike.
    for _ in range(args.runs):
        for row, command in (
            (zdm_cli, [zdm, "check", str(corpus)]),
            (zdm_json, [zdm, "check", "--format", "json", str(corpus)]),
            (squawk_cli, [squawk, f"{corpus}/**/migration.sql"]),
        ):
            seconds, rss = run_measured(command)
            row.seconds.append(seconds)
            row.memory_kb = max(row.memory_kb or 0, rss)

    in_process = Row(
        "zdm analysis in-process (no start-up, no output)",
        timed(lambda: check_paths([corpus], RepoConfig()), args.runs),
    )

    big, earlier = largest_file(corpus)
    prepared = Analyzer(RepoConfig())
    for path in earlier:
        prepared.replay(read_sql(path))
    text = read_sql(big)

    def analyse_largest() -> None:
        # A copy of the replayed schema each run: the timed part is the file itself.
        analyzer = Analyzer(RepoConfig(), schema=copy.deepcopy(prepared.schema))
        analyzer.analyze(text, str(big))

    largest = Row(
        f"largest file ({big.stat().st_size / 1024:.0f} KiB, {big.parent.name[:30]})",
        timed(analyse_largest, max(args.runs, 20)),
        "< 100 ms",
    )

    print(
        f"corpus: {len(files)} files, {statements} statements; {args.runs} runs each; {os.cpu_count()} cores"
    )
    print(f"{'measurement':<52} {'median':>9} {'best':>9} {'runs':>5} {'peak RSS':>10}  target / ratio")
    ratio = zdm_cli.median / squawk_cli.median
    ratio_json = zdm_json.median / squawk_cli.median
    for row, note in (
        (zdm_cli, f"{row_target(zdm_cli)}: {ratio:.2f}x squawk"),
        (zdm_json, f"{ratio_json:.2f}x squawk"),
        (squawk_cli, "baseline"),
        (in_process, f"{in_process.median / squawk_cli.median:.2f}x squawk"),
        (largest, f"{row_target(largest)}: {largest.median * 1000:.1f} ms"),
    ):
        memory = f"{row.memory_kb / 1024:.0f} MiB" if row.memory_kb else "-"
        print(
            f"{row.name:<52} {row.median:>8.3f}s {row.best:>8.3f}s {len(row.seconds):>5} {memory:>10}  {note}"
        )
    return 0


def row_target(row: Row) -> str:
    return row.target or "-"


if __name__ == "__main__":
    raise SystemExit(main())
