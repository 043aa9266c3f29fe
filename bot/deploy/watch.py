"""A second session that watches the one applying the migration: who blocks it, how far an index build has
come, and the emergency stop.

Signals reach it through `signal.set_wakeup_fd`, written by the interpreter the moment the signal arrives,
so a stop cancels the running statement at once even while the main thread waits inside the driver.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from bot.deploy.events import Event, Reporter

_BLOCKERS = """
SELECT b.pid, coalesce(b.state, ''), coalesce(extract(epoch FROM now() - b.xact_start), 0)::float8,
       coalesce(b.usename::text, ''), coalesce(b.application_name, ''), left(coalesce(b.query, ''), 160)
FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(%s)) ORDER BY b.xact_start NULLS LAST
"""
_INDEX_PROGRESS = """
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total
FROM pg_stat_progress_create_index WHERE pid = %s
"""
_POLL_SECONDS = 0.1
_PROGRESS_SECONDS = 0.5


@dataclass(frozen=True)
class Blocker:
    pid: int
    state: str
    transaction_seconds: float
    user: str
    application: str
    query: str

    def describe(self) -> str:
        who = f"pid {self.pid}" + (f" ({self.application})" if self.application else "")
        doing = (
            "idle in transaction" if self.state.startswith("idle in transaction") else self.state or "running"
        )
        query = " ".join(self.query.split())[:100].rstrip(";")
        return f"{who}, {doing}, transaction open for {self.transaction_seconds:.1f} s: {query}"


class Watcher:
    """Runs beside the deploy on its own connection; `watching(...)` marks the statement being run."""

    def __init__(self, conn: Any, worker_pid: int, report: Reporter) -> None:
        self.conn = conn
        self.worker_pid = worker_pid
        self.report = report
        self.stop = threading.Event()
        self.stop_reason = ""
        self.blockers: tuple[Blocker, ...] = ()
        self._current: tuple[str, bool] | None = None
        # The blockers last named, and for which statement: retries of the same statement name them once.
        self.named: tuple[int, ...] = ()
        self._named_for = ""
        self._since = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._thread = threading.Thread(target=self._run, name="zdm-deploy-watch", daemon=True)
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup: int | None = None

    def __enter__(self) -> Watcher:
        if threading.current_thread() is threading.main_thread():
            self._old_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
            for number in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[number] = signal.signal(number, self._on_signal)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        if self._old_handlers:
            for number, handler in self._old_handlers.items():
                signal.signal(number, handler)
            signal.set_wakeup_fd(self._old_wakeup if self._old_wakeup is not None else -1)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _on_signal(self, number: int, _frame: object) -> None:
        # The watcher thread learns of it from the wakeup byte; this only keeps the default action away.
        self._request_stop(signal.Signals(number).name)

    def request_stop(self, reason: str) -> None:
        self._request_stop(reason)
        os.write(self._write_fd, b"\0")

    def _request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    @contextmanager
    def watching(self, sql: str, builds_index: bool) -> Iterator[None]:
        with self._lock:
            self._current = (sql, builds_index)
            self._since = time.monotonic()
            if sql != self._named_for:
                self._named_for = sql
                self.named = ()
                self.blockers = ()
        try:
            yield
        finally:
            with self._lock:
                self._current = None

    def sleep(self, seconds: float) -> bool:
        """Wait between attempts; False when a stop was asked for meanwhile."""
        return not self.stop.wait(seconds)

    def _run(self) -> None:
        last_progress = 0.0
        while not self._done.is_set():
            ready, _, _ = select.select([self._read_fd], [], [], _POLL_SECONDS)
            if ready:
                data = os.read(self._read_fd, 64)
                if not self.stop.is_set():
                    names = [signal.Signals(b).name for b in data if b in (signal.SIGINT, signal.SIGTERM)]
                    self._request_stop(names[0] if names else "stop")
            with self._lock:
                current = self._current
                since = self._since
            if self.stop.is_set() and current is not None:
                self._cancel()
                continue
            if current is None:
                continue
            try:
                blockers = self._blockers()
                pids = tuple(b.pid for b in blockers)
                self.blockers = blockers or self.blockers
                if pids and pids != self.named:
                    self.named = pids
                    waited = time.monotonic() - since
                    self.report(
                        Event(
                            "waiting",
                            f"  waiting {waited:.1f} s for a lock, blocked by "
                            + "; ".join(b.describe() for b in blockers),
                            {"waited_seconds": round(waited, 3), "blockers": [b.__dict__ for b in blockers]},
                        )
                    )
                if current[1] and time.monotonic() - last_progress >= _PROGRESS_SECONDS:
                    last_progress = time.monotonic()
                    self._index_progress()
            except Exception:
                continue

    def _cancel(self) -> None:
        with suppress(Exception):
            self.conn.execute("SELECT pg_cancel_backend(%s)", (self.worker_pid,))
        # One cancel per statement: the statement ends, then the deploy stops before starting another.
        with self._lock:
            self._current = None

    def _blockers(self) -> tuple[Blocker, ...]:
        rows = self.conn.execute(_BLOCKERS, (self.worker_pid,)).fetchall()
        return tuple(
            Blocker(int(r[0]), str(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows
        )

    def _index_progress(self) -> None:
        row = self.conn.execute(_INDEX_PROGRESS, (self.worker_pid,)).fetchone()
        if row is None:
            return
        phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total = row
        done, total = next(
            (
                (d, t)
                for d, t in (
                    (blocks_done, blocks_total),
                    (tuples_done, tuples_total),
                    (lockers_done, lockers_total),
                )
                if t
            ),
            (0, 0),
        )
        percent = 100.0 * done / total if total else 0.0
        self.report(
            Event(
                "index_progress",
                f"  {phase}: {percent:.1f}%",
                {"phase": phase, "percent": round(percent, 1), "done": done, "total": total},
            )
        )
