"""The questions the guide asks before the first lock, answered by the database itself: a go or a no-go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.analysis.lock_time import human_band
from bot.deploy.steps import MigrationPlan

_SESSIONS = """
SELECT a.pid, coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8,
       coalesce(a.application_name, ''), left(coalesce(a.query, ''), 120),
       coalesce(array_agg(DISTINCT l.relation::regclass::text) FILTER (WHERE l.relation = ANY(%s::regclass[])), '{}')
FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.pid <> ALL(%s) AND a.xact_start IS NOT NULL
  AND (a.state LIKE 'idle in transaction%%' OR a.xact_start < now() - make_interval(secs => %s))
GROUP BY a.pid, a.state, a.xact_start, a.application_name, a.query
ORDER BY a.xact_start
"""
_CONNECTIONS = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
       (SELECT count(*) FROM pg_stat_activity),
       current_setting('max_connections')::int
"""
_INVALID_INDEXES = """
SELECT c.relname, t.relname FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = current_schema()
ORDER BY 1
"""


@dataclass(frozen=True)
class Check:
    name: str
    go: bool
    answer: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preflight:
    checks: tuple[Check, ...]

    @property
    def go(self) -> bool:
        return all(check.go for check in self.checks)

    def refusals(self) -> list[Check]:
        return [check for check in self.checks if not check.go]


def _existing(conn: Any, tables: Sequence[str]) -> dict[str, str]:
    """Tables that exist now (a table the deploy creates has nobody to wait for), with their regclass text."""
    found = {}
    for table in tables:
        name = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
        row = conn.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
        if row and row[0]:
            found[table] = str(row[0])
    return found


def run_preflight(
    conn: Any,
    plans: Sequence[MigrationPlan],
    *,
    ours: Sequence[int],
    max_lock_seconds: float,
    allow_blocking: bool,
    long_transaction_seconds: float,
    deadline: float,
    history_problems: Sequence[str] = (),
) -> Preflight:
    checks: list[Check] = []
    recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if recovery and recovery[0]:
        checks.append(Check("server", False, "the database is a read-only standby: connect to the primary"))
    for problem in history_problems:
        checks.append(Check("history", False, problem))

    here, everywhere, limit = conn.execute(_CONNECTIONS).fetchone()
    checks.append(
        Check(
            "connections",
            everywhere + 2 <= limit,
            f"{here} connections to this database, {everywhere} of max_connections {limit} in all"
            + ("" if everywhere + 2 <= limit else ": zdm deploy needs two more"),
            {"database": here, "all": everywhere, "max_connections": limit},
        )
    )

    locked: dict[str, None] = {}
    for plan in plans:
        for table, mode in plan.locks.items():
            if mode.blocks_writes:
                locked[table] = None
    # Every table a statement still blocks is among these: its lock blocks writes.
    existing = _existing(conn, list(locked))
    sessions = conn.execute(
        _SESSIONS, (list(existing.values()), list(ours), long_transaction_seconds)
    ).fetchall()
    in_the_way = [s for s in sessions if s[5]]
    described = [
        f"pid {pid} ({app or 'no application name'}, {state}, transaction open {age:.0f} s"
        + (f", holds locks on {', '.join(tables)}" if tables else "")
        + f"): {query.strip()[:80]}"
        for pid, state, age, app, query, tables in sessions
    ]
    checks.append(
        Check(
            "long transactions",
            True,
            (
                f"none open longer than {long_transaction_seconds:g} s, none idle in transaction"
                if not sessions
                else f"{len(sessions)} open: "
                + "; ".join(described)
                + (
                    f". zdm waits for the {len(in_the_way)} holding locks on the migrated tables under "
                    f"lock_timeout, retrying until the deadline ({deadline:g} s); nothing queues behind it"
                    if in_the_way
                    else ""
                )
            ),
            {
                "sessions": [
                    {
                        "pid": s[0],
                        "state": s[1],
                        "seconds": round(s[2], 1),
                        "application": s[3],
                        "query": s[4],
                        "tables": list(s[5]),
                    }
                    for s in sessions
                ]
            },
        )
    )

    invalid = conn.execute(_INVALID_INDEXES).fetchall()
    rebuilt = {s.builds_index.strip('"') for plan in plans for s in plan.statements if s.builds_index}
    if invalid:
        words = [
            f"{name} on {table}" + (" (zdm drops it and builds it again)" if name in rebuilt else "")
            for name, table in invalid
        ]
        answer = (
            f"{len(invalid)} INVALID index{'es' if len(invalid) > 1 else ''} (an earlier concurrent build failed): "
            + "; ".join(words)
        )
    else:
        answer = "no INVALID index"
    checks.append(
        Check("invalid indexes", True, answer, {"indexes": [{"name": n, "table": t} for n, t in invalid]})
    )

    # A table this deploy creates has no traffic yet: what its later statements lock waits for nobody.
    residuals = [
        (plan, r) for plan in plans for r in plan.residuals if not r.tables or existing.keys() & set(r.tables)
    ]
    too_long = [
        (plan, r) for plan, r in residuals if r.lock_seconds is None or r.lock_seconds[1] > max_lock_seconds
    ]
    if not residuals:
        answer = "no statement holds a lock that blocks reads or writes while it works"
    else:
        answer = "; ".join(
            f"{plan.name} line {r.line} blocks {', '.join(r.tables) or 'its table'} "
            + (f"for {human_band(*r.lock_seconds)}" if r.lock_seconds else "for a time zdm cannot estimate")
            for plan, r in residuals
        )
        if too_long and not allow_blocking:
            answer += (
                f": longer than max_lock_seconds ({max_lock_seconds:g} s). Ship `zdm fix`'s rewrite, or pass "
                "--allow-blocking to take the time under lock"
            )
    checks.append(
        Check(
            "lock time",
            allow_blocking or not too_long,
            answer,
            {
                "blocking": [
                    {"migration": p.name, "line": r.line, "tables": list(r.tables), "seconds": r.lock_seconds}
                    for p, r in residuals
                ]
            },
        )
    )
    return Preflight(tuple(checks))
