"""Prometheus metrics. The receiver's own are in-process; what workers count (jobs, durations, GitHub API calls,
rate limit) is kept in Redis, because RQ runs each job in a short-lived process, and served by every receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis

SHARED = "zdm:metrics"


class ReceiverMetrics:
    def __init__(self, connection: Redis) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "zdm_webhook_deliveries",
            "Webhook deliveries by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "zdm_webhook_ack_seconds",
            "Time to answer a webhook delivery",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.registry.register(SharedMetrics(connection))


def count(connection: Redis, name: str, amount: float = 1, **labels: str) -> None:
    connection.hincrbyfloat(SHARED, _field(name, labels), amount)


def gauge(connection: Redis, name: str, value: float, **labels: str) -> None:
    connection.hset(SHARED, _field("gauge:" + name, labels), value)


def _field(name: str, labels: dict[str, str]) -> str:
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class SharedMetrics(Collector):
    """Exposes the counters workers keep in Redis."""

    HELP: ClassVar[dict[str, str]] = {
        "zdm_jobs": "Jobs finished by kind and outcome",
        "zdm_job_seconds": "Total seconds spent in jobs by kind",
        "zdm_github_api_calls": "GitHub API calls by method and status",
        "zdm_github_rate_limit_remaining": "x-ratelimit-remaining of the latest GitHub API answer",
    }

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        try:
            raw = self.connection.hgetall(SHARED)
        except Exception:
            return
        for key, value in raw.items():
            field = key.decode() if isinstance(key, bytes) else str(key)
            name, _, label_text = field.partition("|")
            labels = dict(pair.split("=", 1) for pair in label_text.split(",") if pair)
            is_gauge = name.startswith("gauge:")
            name = name.removeprefix("gauge:")
            family = families.get(name)
            if family is None:
                help_text = self.HELP.get(name, name)
                family = (
                    GaugeMetricFamily(name, help_text, labels=sorted(labels))
                    if is_gauge
                    else CounterMetricFamily(name, help_text, labels=sorted(labels))
                )
                families[name] = family
            family.add_metric([labels[k] for k in sorted(labels)], float(value))
        yield from families.values()
