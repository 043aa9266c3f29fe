"""What `zdm fix` leaves blocking on the whole corpus, read from the server's locks, in one run.

    python bench/fix_outcome.py [--postgres-bin /usr/lib/postgresql/15/bin] [--prisma 6.19.0,7.4.0]
                                [--corpus ../shared/corpus/prisma] [--out FILE] [--compare BASELINE.tsv]

The whole-corpus fix proof (`bot/verify/corpus_fixes.py`) walks every PostgreSQL root of the corpus on one
server (the embedded PostgreSQL, ZDM_TEST_DATABASE_URL, or one started from `--postgres-bin`). For every
migration zdm calls blocking (or cannot read) or rewrites, the original's statements are measured one by one
(truly blocking: a write-blocking lock on a table that existed before the migration while that table is
rewritten or scanned), and every statement of the plan's folders is measured as each Prisma model runs them
(still blocking, the same definition; a migration the plan does not rewrite runs as written). Prints, per
model, truly blocking, still blocking and the share that no longer blocks; `--out` writes the TSV (one row
per migration and model with something truly or still blocking, each residual with the plan's reason), and
`--compare` sets the rows of Prisma 6.19 beside a baseline in the same format (`../shared/corpus/
fix-outcome-baseline.tsv`: migration, truly_blocking, still_blocking, folders_after_fix, statements).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.analysis.prisma import PrismaVersion
from bot.verify.corpus_fixes import BEFORE_SPLIT, MODELS, MigrationOutcome, Proof, prove_corpus
from bot.verify.server import Server, running_server, server_from_binaries

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "prisma"
# The baseline's statements are cut to this many characters, whitespace collapsed.
STATEMENT_WIDTH = 140
COLUMNS = (
    "prisma",
    "migration",
    "truly_blocking",
    "still_blocking",
    "folders_after_fix",
    "still_blocking_statements",
    "reasons",
)


@dataclass(frozen=True)
class Row:
    """One migration's outcome as a TSV row gives it (the baseline's columns)."""

    migration: str
    truly_blocking: int
    still_blocking: int
    folders: int
    statements: tuple[str, ...]


def short(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").rstrip()[:STATEMENT_WIDTH]


def migration_name(outcome: MigrationOutcome, corpus: Path) -> str:
    """The migration's folder relative to the corpus, as the baseline names it."""
    return str(Path(outcome.path).parent.relative_to(corpus))


def rows_of(proof: Proof, model: PrismaVersion, corpus: Path) -> dict[str, Row]:
    return {
        migration_name(o, corpus): Row(
            migration_name(o, corpus),
            o.truly_blocking,
            o.still_blocking,
            o.folders,
            tuple(short(r.sql) for r in o.residuals),
        )
        for o in proof.outcomes
        if o.prisma == str(model)
    }


def percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def summary(proof: Proof, model: PrismaVersion) -> str:
    truly, still = proof.truly_blocking(model), proof.still_blocking(model)
    return (
        f"Prisma {model}: {still:,} of {truly:,} truly blocking statements still blocking "
        f"({percent(proof.non_blocking_share(model))} non-blocking after zdm fix)"
    )


def write_tsv(
    path: Path, proof: Proof, models: Sequence[PrismaVersion], corpus: Path, server: Server
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        f"# zdm fix outcome on the shared corpus, {commit or 'unknown commit'} "
        f"({time.strftime('%Y-%m-%d')}), PostgreSQL {server.major_version}, Prisma "
        + ", ".join(str(m) for m in models)
        + ", written by bench/fix_outcome.py.",
        "# Rows: every migration with a statement truly blocking (the original, measured statement by statement) or "
        "still blocking (the plan's folders, measured as the model runs them), for each model.",
        "\t".join(COLUMNS),
    ]
    outcomes = sorted(
        (o for o in proof.outcomes if o.truly_blocking or o.still_blocking),
        key=lambda o: (o.prisma, -o.still_blocking, migration_name(o, corpus)),
    )
    for o in outcomes:
        fields = (
            o.prisma,
            migration_name(o, corpus),
            str(o.truly_blocking),
            str(o.still_blocking),
            str(o.folders),
            " | ".join(short(r.sql) for r in o.residuals),
            " | ".join(r.reason for r in o.residuals),
        )
        lines.append("\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields))
    lines.extend("# " + summary(proof, model) for model in models)
    path.write_text("\n".join(lines) + "\n")


def read_baseline(path: Path) -> dict[str, Row]:
    """A TSV in the baseline's format: migration, truly_blocking, still_blocking, folders_after_fix, statements."""
    rows: dict[str, Row] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or line.startswith("migration\t") or not line.strip():
            continue
        migration, truly, still, folders, statements = [*line.split("\t"), ""][:5]
        rows[migration] = Row(
            migration, int(truly), int(still), int(folders), tuple(s for s in statements.split(" | ") if s)
        )
    return rows


def compare(baseline: dict[str, Row], ours: dict[str, Row], limit: int = 40) -> list[str]:
    """Per migration, the baseline's (truly, still, folders) against ours. The baseline lists only migrations
    that still block: one it leaves out that still blocks here, or the reverse, is a difference too."""
    lines = []
    agree = 0
    differences = []
    for migration in sorted(set(baseline) | {m for m, r in ours.items() if r.still_blocking}):
        theirs, mine = baseline.get(migration), ours.get(migration)
        left = (theirs.truly_blocking, theirs.still_blocking, theirs.folders) if theirs else None
        right = (mine.truly_blocking, mine.still_blocking, mine.folders) if mine else None
        if left == right:
            agree += 1
            continue
        differences.append(f"  {migration}: baseline {_triple(left)}, here {_triple(right)}")
    lines.append(
        f"compared with the baseline: {agree} of {agree + len(differences)} migrations agree on "
        f"(truly blocking, still blocking, folders); {len(differences)} differ"
    )
    lines.extend(differences[:limit])
    if len(differences) > limit:
        lines.append(f"  ... and {len(differences) - limit} more")
    lines.append(
        f"baseline rows sum: {sum(r.truly_blocking for r in baseline.values()):,} truly, "
        f"{sum(r.still_blocking for r in baseline.values()):,} still blocking; the same migrations here: "
        f"{sum(ours[m].truly_blocking for m in baseline if m in ours):,} truly, "
        f"{sum(ours[m].still_blocking for m in baseline if m in ours):,} still blocking"
    )
    return lines


def _triple(values: tuple[int, int, int] | None) -> str:
    return "not listed" if values is None else "truly {}, still {}, folders {}".format(*values)


def table(proof: Proof, models: Sequence[PrismaVersion]) -> list[str]:
    lines = [f"{'model':<14} {'truly blocking':>15} {'still blocking':>15} {'non-blocking after fix':>23}"]
    for model in models:
        lines.append(
            f"{'Prisma ' + str(model):<14} {proof.truly_blocking(model):>15,} "
            f"{proof.still_blocking(model):>15,} {percent(proof.non_blocking_share(model)):>23}"
        )
    return lines


def server_for(postgres_bin: Path | None) -> AbstractContextManager[Server]:
    return server_from_binaries(postgres_bin) if postgres_bin else running_server()


def parse_models(text: str) -> tuple[PrismaVersion, ...]:
    models = []
    for item in text.split(","):
        model = PrismaVersion.parse(item.strip())
        if model is None:
            raise argparse.ArgumentTypeError(f"not a Prisma version: {item!r}")
        models.append(model)
    return tuple(models)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-bin", type=Path, help="start a server from this bin folder (default: embedded)"
    )
    parser.add_argument("--prisma", type=parse_models, default=MODELS, help="models, comma-separated")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, help="write the TSV here")
    parser.add_argument("--compare", type=Path, help="a baseline TSV to compare Prisma 6.19's rows with")
    args = parser.parse_args(argv)
    corpus = args.corpus.resolve()
    models: tuple[PrismaVersion, ...] = args.prisma
    started = time.monotonic()
    with server_for(args.postgres_bin) as server:
        proof = prove_corpus(server, corpus, models=models)
        major = server.major_version
        if args.out:
            write_tsv(args.out, proof, models, corpus, server)
    elapsed = time.monotonic() - started
    print(
        f"PostgreSQL {major}, {proof.migrations:,} migrations, {len(proof.outcomes):,} outcomes measured, "
        f"{len(proof.left_out)} left out ({proof.left_out_truly_blocking} truly blocking statements among them), "
        f"{elapsed:.0f} s"
    )
    print("\n".join(table(proof, models)))
    own = [r for r in proof.residuals() if r.reason.startswith("zdm's own")]
    if own or proof.problems:
        print(f"zdm's own rewrites still blocking: {len(own)}; problems: {len(proof.problems)}")
        for problem in proof.problems[:10]:
            print(f"  {problem}")
    if args.compare:
        if BEFORE_SPLIT not in models:
            parser.error("--compare needs Prisma 6.19.0 among --prisma")
        print("\n".join(compare(read_baseline(args.compare), rows_of(proof, BEFORE_SPLIT, corpus))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
