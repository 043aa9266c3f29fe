"""zdm's start-up, speed and memory against sqlglot's import, squawk and pgfence, in one run.

    python bench/run.py [--runs 5] [--corpus ../shared/corpus/prisma]

Prints two tables. Timings on a shared machine are noisy: read the medians and the ratios, not single runs.
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
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "prisma"
SMALL_REPOSITORY = REPO / "examples" / "shop"
PGFENCE = "@flvmnt/pgfence@0.1.5"

# Runs a command and prints its wall time and peak memory (max RSS of that child alone) as JSON.
_MEASURE_CHILD = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

# Which files pgfence can analyse: it stops the whole run at the first file its parser refuses, so the
# comparison is on the files it accepts. Its own analyzer, one file at a time (untimed).
_PGFENCE_REFUSES = """
import { readFileSync } from 'node:fs';
const [analyzer, list] = process.argv.slice(1);
const { analyze } = await import(analyzer);
const config = { format: 'prisma', output: 'cli', minPostgresVersion: 11, maxAllowedRisk: 'high',
                 requireLockTimeout: true, requireStatementTimeout: true };
for (const file of readFileSync(list, 'utf8').split('\\n').filter(Boolean)) {
  try { await analyze([file], config); } catch { console.log(file); }
}
"""


@dataclass
class Row:
    name: str
    seconds: list[float] = field(default_factory=list)
    memory_kb: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def run_measured(command: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_CHILD, *command],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cwd,
    )
    data = json.loads(out.stdout)
    return float(data["seconds"]), int(data["max_rss_kb"])


def measure_alternating(
    commands: Sequence[tuple[Row, Sequence[str]]], runs: int, env: dict[str, str], cwd: Path | None = None
) -> None:
    """One untimed warm-up each (file cache, bytecode), then the commands in turn, so that machine noise hits
    them alike."""
    for _, command in commands:
        run_measured(command, env, cwd)
    for _ in range(runs):
        for row, command in commands:
            seconds, rss = run_measured(command, env, cwd)
            row.seconds.append(seconds)
            row.memory_kb = max(row.memory_kb or 0, rss)


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


def installed_environment(pycache: Path) -> dict[str, str]:
    """Python as an installed package runs: bytecode compiled once and reused (pip compiles it at install;
    an editable install writes it on first run), here into a temporary folder instead of the source tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def install_pgfence(prefix: Path) -> Path | None:
    """pgfence from npm into `prefix`; None (said on stderr) when npm is not on this machine."""
    npm = shutil.which("npm")
    if npm is None:
        print(f"pgfence: skipped, npm is not installed (it would run {PGFENCE})", file=sys.stderr)
        return None
    subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", PGFENCE], check=True
    )
    return prefix / "node_modules" / ".bin" / "pgfence"


def pgfence_refuses(pgfence: Path, files: list[Path], scratch: Path) -> set[Path]:
    node = shutil.which("node")
    assert node is not None, "npm without node"
    analyzer = pgfence.parent.parent / "@flvmnt" / "pgfence" / "dist" / "analyzer.js"
    listing = scratch / "files.txt"
    listing.write_text("".join(f"{path}\n" for path in files))
    out = subprocess.run(
        [node, "--input-type=module", "-e", _PGFENCE_REFUSES, str(analyzer), str(listing)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {Path(line) for line in out.stdout.splitlines() if line}


def small_repository(scratch: Path) -> Path:
    """The example app's repository (two migrations), as a user has it."""
    repo = scratch / "shop"
    shutil.copytree(SMALL_REPOSITORY, repo)
    (repo / ".git").mkdir()
    return repo


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

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        env = installed_environment(scratch / "pycache")

        # Start-up: any sqlglot-based tool first imports sqlglot; a small repository's check costs little more.
        sqlglot_import = Row('python -c "import sqlglot"')
        zdm_small = Row("zdm check (2 migrations, text)")
        repo = small_repository(scratch)
        startup_runs = max(args.runs * 4, 20)
        measure_alternating(
            [(sqlglot_import, [sys.executable, "-c", "import sqlglot"]), (zdm_small, [zdm, "check"])],
            startup_runs,
            env,
            cwd=repo,
        )

        all_files = sorted(corpus.rglob("migration.sql"))
        pgfence = install_pgfence(scratch / "npm")
        refused = pgfence_refuses(pgfence, all_files, scratch) if pgfence is not None else set()
        files = [path for path in all_files if path not in refused]
        paths = [str(path) for path in files]

        zdm_cli = Row("zdm check (text, cold: --no-cache)")
        zdm_json = Row("zdm check --format json (cold)")
        zdm_warm = Row("zdm check (text, warm cache)")
        zdm_json_warm = Row("zdm check --format json (warm cache)")
        squawk_cli = Row("squawk")
        pgfence_cli = Row(f"pgfence {PGFENCE.rsplit('@', 1)[1]}")
        commands: list[tuple[Row, Sequence[str]]] = [
            (zdm_cli, [zdm, "check", "--no-cache", *paths]),
            (zdm_json, [zdm, "check", "--no-cache", "--format", "json", *paths]),
            (zdm_warm, [zdm, "check", *paths]),
            (zdm_json_warm, [zdm, "check", "--format", "json", *paths]),
            (squawk_cli, [squawk, *paths]),
        ]
        if pgfence is not None:
            commands.append((pgfence_cli, [str(pgfence), "analyze", "--format", "prisma", *paths]))
        # The cache goes to the repository the run is in: a scratch one, warmed by the untimed first run.
        cached = scratch / "cached"
        (cached / ".git").mkdir(parents=True)
        measure_alternating(
            commands, args.runs, {**env, "XDG_CACHE_HOME": str(scratch / "user-cache")}, cwd=cached
        )

    statements = sum(len(f.statements) for f in check_paths(files, RepoConfig()).files)
    in_process = Row(
        "zdm analysis in-process (no start-up, no output)",
        timed(lambda: check_paths(files, RepoConfig()), args.runs),
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
    )

    print(f"{os.cpu_count()} cores; a shared machine: compare the ratios, not the absolute numbers.")
    print()
    print(f"start-up: examples/shop, {startup_runs} runs each, alternating")
    _print_rows(
        [
            (sqlglot_import, "baseline: the floor of any sqlglot-based tool"),
            (zdm_small, f"target <= 2x: {zdm_small.median / sqlglot_import.median:.2f}x"),
        ]
    )
    print()
    skipped = f" (leaving out {len(refused)} that pgfence's parser refuses)" if refused else ""
    print(
        f"corpus: {len(files)} of {len(all_files)} migration.sql files{skipped}, {statements} statements; "
        f"the same files for every tool, {args.runs} runs each, alternating"
    )
    rows: list[tuple[Row, str]] = [
        (
            zdm_cli,
            f"target <= 1.0x squawk: {zdm_cli.median / squawk_cli.median:.2f}x"
            + (
                f"; target < pgfence: {zdm_cli.median / pgfence_cli.median:.2f}x"
                if pgfence is not None
                else "; pgfence skipped"
            ),
        ),
        (
            zdm_json,
            f"{zdm_json.median / squawk_cli.median:.2f}x squawk; target <= 1.1x text: "
            f"{zdm_json.median / zdm_cli.median:.2f}x",
        ),
        (zdm_warm, f"target <= 0.2x squawk: {zdm_warm.median / squawk_cli.median:.2f}x"),
        (zdm_json_warm, f"{zdm_json_warm.median / squawk_cli.median:.2f}x squawk"),
        (squawk_cli, "baseline"),
    ]
    if pgfence is not None:
        rows.append((pgfence_cli, f"{pgfence_cli.median / squawk_cli.median:.2f}x squawk"))
    rows += [
        (in_process, f"{in_process.median / squawk_cli.median:.2f}x squawk"),
        (largest, f"target < 100 ms: {largest.median * 1000:.1f} ms"),
    ]
    _print_rows(rows)
    return 0


def _print_rows(rows: Sequence[tuple[Row, str]]) -> None:
    print(f"{'measurement':<52} {'median':>9} {'best':>9} {'runs':>5} {'peak RSS':>10}  target / ratio")
    for row, note in rows:
        memory = f"{row.memory_kb / 1024:.0f} MiB" if row.memory_kb else "-"
        print(
            f"{row.name:<52} {row.median:>8.3f}s {row.best:>8.3f}s {len(row.seconds):>5} {memory:>10}  {note}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
