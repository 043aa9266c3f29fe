"""The sweep: deliveries GitHub could not hand over (the receiver answered 503 while Redis was down, or nobody
answered) are asked for again. GitHub does not retry webhooks on its own."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from redis import Redis

from bot.github import AppAdapter, Delivery
from bot.logs import log
from bot.queue import DELIVERY_KEY
from bot.settings import Settings

LAST_SWEEP = "zdm:sweep:last"
SWEEP_LOCK = "zdm:sweep:lock"
ATTEMPTS = "zdm:sweep:attempts:{}"
MAX_ATTEMPTS = 3
# GitHub lists deliveries of the past 3 days; the first sweep looks back one day.
FIRST_LOOK_BACK = timedelta(days=1)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def failed_deliveries(deliveries: list[Delivery]) -> list[Delivery]:
    """For each delivery id (guid) never answered with a 2xx, its latest attempt."""
    attempts: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        attempts[delivery.guid].append(delivery)
    failed = []
    for tries in attempts.values():
        if any(200 <= t.status_code < 300 for t in tries):
            continue
        failed.append(max(tries, key=lambda t: (t.delivered_at, t.id)))
    return failed


def sweep(settings: Settings, connection: Redis, interval_seconds: int) -> int:
    """Redeliver what failed since the last sweep; one receiver sweeps at a time. Returns how many."""
    if not connection.set(SWEEP_LOCK, "1", nx=True, ex=max(interval_seconds, 1)):
        return 0
    now = datetime.now(UTC)
    last = connection.get(LAST_SWEEP)
    # A minute of overlap: a delivery answered while the last sweep ran is looked at again.
    since = (
        _iso(datetime.fromisoformat(last.decode().replace("Z", "+00:00")) - timedelta(minutes=1))
        if isinstance(last, bytes)
        else _iso(now - FIRST_LOOK_BACK)
    )
    count = 0
    with AppAdapter(settings, connection) as app:
        for delivery in failed_deliveries(app.recent_deliveries(since)):
            if connection.exists(DELIVERY_KEY.format(delivery.guid)):
                continue  # queued after all (a later attempt reached a receiver)
            attempts_key = ATTEMPTS.format(delivery.guid)
            if int(connection.get(attempts_key) or 0) >= MAX_ATTEMPTS:
                continue
            app.redeliver(delivery.id)
            connection.incr(attempts_key)
            connection.expire(attempts_key, 3 * 24 * 3600)
            count += 1
            log.info("sweep.redelivered", delivery=delivery.guid, status=delivery.status_code)
    connection.set(LAST_SWEEP, _iso(now))
    return count
