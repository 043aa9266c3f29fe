"""What the status page shows that GitHub does not keep: the last jobs, written by the workers to Redis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis import Redis

RECENT_KEY = "zdm:status:recent"
RECENT_KEPT = 50


@dataclass(frozen=True, slots=True)
class FinishedJob:
    repository: str
    pull_number: int | None
    kind: str  # review | command
    outcome: str  # ok | rescheduled | error
    verdict: str | None  # the check run's conclusion, when the job reviewed
    seconds: float
    finished_at: float  # Unix time


def record(connection: Redis, job: FinishedJob) -> None:
    with connection.pipeline() as pipeline:
        pipeline.lpush(RECENT_KEY, json.dumps(asdict(job)))
        pipeline.ltrim(RECENT_KEY, 0, RECENT_KEPT - 1)
        pipeline.execute()


def recent(connection: Redis, limit: int = 20) -> list[FinishedJob]:
    raw = connection.lrange(RECENT_KEY, 0, limit - 1)
    assert isinstance(raw, list)
    return [FinishedJob(**json.loads(item)) for item in raw]
