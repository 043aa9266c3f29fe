"""Replay migration roots on a real server and compare zdm's claims with what PostgreSQL does.

Each root gets a fresh database; its files run in Prisma's order, each statement measured on its own (see
`measure`). A statement that fails on the server (a missing extension or role, say) and everything it
depends on are left out of the comparison and counted as unmeasured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import Classification, LockMode, worst
from bot.analysis.roots import MigrationRoot, read_sql
from bot.analysis.splitter import split_statements
from bot.rules import FILE_RULES
from bot.verify.measure import Probe
from bot.verify.server import Server

_FILE_RULE_IDS = frozenset(rule.id for rule in FILE_RULES)


@dataclass(frozen=True)
class Disagreement:
    path: str
    line: int
    sql: str
    claimed: str
    measured: str
    detail: str


@dataclass
class Agreement:
    statements: int = 0
    measured: int = 0
    unmeasured_errors: int = 0
    unmeasured_autocommit: int = 0
    # (claimed, measured) -> count
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    # statements PostgreSQL shows blocking that zdm called safe or brief
    missed: list[Disagreement] = field(default_factory=list)
    # statements zdm called blocking that PostgreSQL shows are not
    false_blocking: list[Disagreement] = field(default_factory=list)
    lock_mismatches: int = 0
    # UPDATE/DELETE of live rows: zdm calls them blocking for their row locks, which an empty replay
    # cannot show; counted apart from the lock-based comparison.
    backfills: int = 0

    def add(self, other: Agreement) -> None:
        self.statements += other.statements
        self.measured += other.measured
        self.unmeasured_errors += other.unmeasured_errors
        self.unmeasured_autocommit += other.unmeasured_autocommit
        self.matrix.update(other.matrix)
        self.missed.extend(other.missed)
        self.false_blocking.extend(other.false_blocking)
        self.lock_mismatches += other.lock_mismatches
        self.backfills += other.backfills

    @property
    def truly_blocking(self) -> int:
        return sum(n for (_, measured), n in self.matrix.items() if measured == "blocking")

    @property
    def claimed_blocking(self) -> int:
        return sum(n for (claimed, _), n in self.matrix.items() if claimed == "blocking")

    @property
    def exact(self) -> int:
        return sum(n for (claimed, measured), n in self.matrix.items() if claimed == measured)

    def table(self) -> str:
        classes = [c.value for c in Classification]
        lines = ["claimed \\ measured " + " ".join(f"{c:>9}" for c in ("safe", "brief", "blocking"))]
        for claimed in classes:
            row = [self.matrix.get((claimed, m), 0) for m in ("safe", "brief", "blocking")]
            lines.append(f"{claimed:>18} " + " ".join(f"{n:>9}" for n in row))
        return "\n".join(lines)


def compare_root(server: Server, root: MigrationRoot, config: RepoConfig | None = None) -> Agreement:
    config = config or RepoConfig(postgres_version=server.major_version)
    analyzer = Analyzer(config)
    agreement = Agreement()
    with server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.install_stand_ins()
            for sql_path in root.migrations:
                text = read_sql(sql_path)
                raws = split_statements(text)
                result = analyzer.analyze(text, str(sql_path))
                measurements = probe.measure_file(text, raws)
                for statement, measurement in zip(result.statements, measurements, strict=True):
                    agreement.statements += 1
                    if measurement.skipped:
                        continue
                    if measurement.error is not None:
                        agreement.unmeasured_errors += 1
                        continue
                    if measurement.autocommit and not measurement.captured:
                        agreement.unmeasured_autocommit += 1
                        continue
                    # File-level findings (locks held until commit) are about the file, not this statement.
                    blocking_rules = {
                        f.rule_id for f in statement.findings if f.classification.value == "blocking"
                    } - _FILE_RULE_IDS
                    if blocking_rules == {"backfill"}:
                        agreement.backfills += 1
                        continue
                    agreement.measured += 1
                    claimed = statement.classification.value
                    if claimed == "blocking" and not blocking_rules:
                        # Blocking only as part of its file (a read under a lock held since an earlier
                        # statement): measured on its own, the statement claims what its own findings say.
                        claimed = worst(
                            [f.classification for f in statement.findings if f.rule_id not in _FILE_RULE_IDS]
                            or [Classification.SAFE]
                        ).value
                    measured = measurement.classification.value
                    agreement.matrix[(claimed, measured)] += 1
                    detail = (
                        f"claimed locks={_fmt(statement.locks)} rewrites={sorted(statement.rewrites)} "
                        f"scans={sorted(statement.scans)}; measured locks={_fmt(measurement.locks)} "
                        f"rewrites={sorted(measurement.rewrites)} scans={sorted(measurement.scans)}"
                    )
                    item = Disagreement(
                        str(sql_path), statement.line_start, statement.sql[:300], claimed, measured, detail
                    )
                    if measured == "blocking" and claimed in ("safe", "brief"):
                        agreement.missed.append(item)
                    if claimed == "blocking" and measured != "blocking":
                        agreement.false_blocking.append(item)
                    if claimed != "unknown" and {
                        t: m for t, m in statement.locks.items() if m.blocks_writes
                    } != {t: m for t, m in measurement.locks.items() if m.blocks_writes}:
                        agreement.lock_mismatches += 1
        finally:
            probe.close()
    return agreement


def _fmt(locks: Mapping[str, LockMode]) -> str:
    return "{" + ", ".join(f"{t}: {m.sql_name}" for t, m in sorted(locks.items())) + "}"
