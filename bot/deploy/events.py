"""What `zdm deploy` says while it works: one event stream, shown as text, JSON lines or a job summary."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO


@dataclass(frozen=True)
class Event:
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class Reporter(Protocol):
    def __call__(self, event: Event) -> None: ...


class JsonLines:
    """One JSON object per line, for logs: `{"event": ..., "message": ..., "time": ..., ...data}`."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        line = {"event": event.kind, "time": round(time.time(), 3), "message": event.message, **event.data}
        self.out.write(json.dumps(line, default=str) + "\n")
        self.out.flush()


class Text:
    """Lines for a terminal or a CI log; index builds draw a progress bar where the output is a terminal."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.terminal = self.out.isatty()
        self._bar_open = False
        self._last_percent = -10.0

    def __call__(self, event: Event) -> None:
        if event.kind == "index_progress":
            self._progress(event)
            return
        if self._bar_open:
            self.out.write("\n")
            self._bar_open = False
        self.out.write(event.message + "\n")
        self.out.flush()

    def _progress(self, event: Event) -> None:
        percent = float(event.data.get("percent") or 0.0)
        phase = str(event.data.get("phase", ""))
        width = 30
        filled = int(width * percent / 100)
        bar = f"  [{'#' * filled}{'.' * (width - filled)}] {percent:5.1f}% {phase}"
        if self.terminal:
            self.out.write("\r" + bar[:120].ljust(100))
            self._bar_open = True
        elif percent >= self._last_percent + 10 or percent >= 100:
            # A log file gets a line every tenth, not a carriage-return animation.
            self.out.write(bar + "\n")
            self._last_percent = percent
        self.out.flush()


class Collect:
    """Keeps the events, for the job summary and for tests."""

    def __init__(self, then: Reporter | None = None) -> None:
        self.events: list[Event] = []
        self.then = then

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if self.then is not None:
            self.then(event)
