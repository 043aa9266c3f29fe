"""The GitHub App's speed and memory on this machine: webhook ingest with a real Redis, webhook to completed
check run against the fake GitHub (for a pull request, and for a merge queue's group), GitHub API calls per
review, receiver and worker peak memory, fairness across installations (one's burst against another's single
review), and the size of the review zdm posts for real corpus migrations.

    python bench/app.py [--deliveries 5000] [--concurrency 32] [--reviews 20] [--burst 200] [--only-merge-queue]

Prints a table. Timings on a shared machine are noisy: read medians and percentiles of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot import status  # noqa: E402
from bot.queue import embedded_redis, waiting  # noqa: E402
from tests.fakegithub.harness import app_under_test, free_port, sign, wait_for  # noqa: E402
from tests.fakegithub.spec import webhook_example  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TreeMemory:
    """Samples the resident memory of a process and its children (RQ runs each job in a forked child)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_child = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            except OSError:
                children = []
            for child in children:
                try:
                    for line in Path(f"/proc/{child}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_child = max(self.peak_child, int(line.split()[1]) / 1024)
                except OSError:
                    pass
            time.sleep(0.005)

    def close(self) -> float:
        self.stop.set()
        self.thread.join()
        return self.peak_child


def ingest(deliveries: int, concurrency: int) -> list[tuple[str, str, str]]:
    secret = "bench-secret"
    payload = webhook_example("pull_request", "opened")
    payload["installation"] = {"id": 1}
    body = json.dumps(payload).encode()
    signature = sign(secret, body)
    unique = int(deliveries * 0.9)
    ids = [str(uuid.uuid4()) for _ in range(unique)]
    # One in ten is a redelivery of an id already sent.
    sequence = ids + ids[: deliveries - unique]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, embedded_redis(Path(tmp)) as redis_url:
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": secret, "ZDM_LOG_JSON": "1"}
        receiver = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--workers", "0", "--port", str(port)],
            env=env,
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(url), timeout=30, what="the receiver")
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            head = (
                "POST /api/github/webhooks HTTP/1.1\r\nHost: bench\r\nX-GitHub-Event: pull_request\r\n"
                f"X-Hub-Signature-256: {signature}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-GitHub-Delivery: "
            ).encode()

            async def connection(work: list[str]) -> None:
                # A bare HTTP/1.1 keep-alive client: the load generator must cost less than the server.
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                while work:
                    delivery = work.pop()
                    started = time.perf_counter()
                    writer.write(head + delivery.encode() + b"\r\n\r\n" + body)
                    status_line = await reader.readline()
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                    latencies.append(time.perf_counter() - started)
                    status = int(status_line.split()[1])
                    statuses[status] = statuses.get(status, 0) + 1
                writer.close()

            async def run() -> float:
                work = list(reversed(sequence))
                started = time.perf_counter()
                await asyncio.gather(*(connection(work) for _ in range(concurrency)))
                return time.perf_counter() - started

            elapsed = asyncio.run(run())
            # In RQ's queue, and behind their installation's job there (one installation sends them all).
            redis = Redis.from_url(redis_url)
            queued = redis.llen("rq:queue:zdm") + waiting(redis)
            server_side = _ack_percentiles(httpx.get(f"{url}/metrics").text)
            receiver_peak = peak_rss_mib(receiver.pid)
        finally:
            receiver.terminate()
            receiver.wait(timeout=30)
        lost = unique - queued
        rows.append(("ingest: deliveries/s", f"{deliveries / elapsed:,.0f}", ">= 1,000"))
        rows.append(
            (
                "ingest: ack p50 / p99",
                f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f} ms",
                "p99 < 25 ms",
            )
        )
        rows.append(("ingest: ack measured by the receiver", server_side, "-"))
        rows.append(
            (
                "ingest: answers",
                ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
                f"202: {unique}, 200: {deliveries - unique}",
            )
        )
        rows.append(("ingest: queued / unique (lost)", f"{queued} / {unique} ({lost})", "0 lost"))
        rows.append(("receiver peak RSS", f"{receiver_peak:.0f} MiB", "-"))
    return rows


def _ack_percentiles(metrics: str) -> str:
    """Share of answers within 5 and 25 ms, from the receiver's own histogram."""
    buckets: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("zdm_webhook_ack_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[bound] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0) or 1.0
    return f"{buckets.get('0.005', 0) / total:.1%} <= 5 ms, {buckets.get('0.025', 0) / total:.1%} <= 25 ms"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def reviews(count: int) -> list[tuple[str, str, str]]:
    from tests.test_app import BLOCKING, MIGRATIONS, completed_run, new_repo, open_pull, pull_request_payload

    durations: list[float] = []
    calls: list[int] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=1) as zdm,
    ):
        memory = TreeMemory(zdm.workers[0].pid)
        repo, base = new_repo(zdm, "bench")
        warm = open_pull(zdm, repo, base, {"README.md": "warm\n"})
        zdm.deliver("pull_request", pull_request_payload(repo, warm))
        completed_run(zdm, repo, warm.head_sha)
        for number in range(count):
            pull = open_pull(
                zdm,
                repo,
                base,
                {f"{MIGRATIONS}/2024020100000{number % 10}_{number}/migration.sql": BLOCKING},
            )
            before = len(zdm.github.calls)
            started = time.perf_counter()
            zdm.deliver("pull_request", pull_request_payload(repo, pull))
            completed_run(zdm, repo, pull.head_sha)
            durations.append(time.perf_counter() - started)
            time.sleep(0.05)
            calls.append(len(zdm.github.calls) - before)
        horse_peak = memory.close()
        worker_peak = peak_rss_mib(zdm.workers[0].pid)
        violations = len(zdm.github.violations)
    return [
        (
            "webhook -> check run completed, p50 / p90",
            f"{statistics.median(durations) * 1000:.0f} / {percentile(durations, 0.9) * 1000:.0f} ms",
            "p50 <= 150 ms",
        ),
        (
            "GitHub API calls per review (new migration)",
            f"median {statistics.median(calls):.0f}, max {max(calls)}",
            "<= 4",
        ),
        ("requests breaking GitHub's descriptions", str(violations), "0"),
        ("worker peak RSS (parent / job process)", f"{worker_peak:.0f} / {horse_peak:.0f} MiB", "-"),
    ]


def largest_root(count: int) -> list[tuple[str, str, str]]:
    """A review on the corpus's largest root (hundreds of migrations at the base): a pull request adding its
    last migration, cold (no schema kept in Redis) and warm (the base's replay kept by an earlier review)."""
    from tests.test_app import completed_run, open_pull, pull_request_payload

    corpus = REPO.parent / "shared" / "corpus" / "prisma"
    roots = sorted(
        (lock.parent for lock in corpus.rglob("migration_lock.toml")),
        key=lambda root: -len(list(root.glob("*/migration.sql"))),
    )
    if not roots:
        return [("review on the largest corpus root", "skipped: no corpus at ../shared", "-")]
    root = roots[0]
    migrations = sorted(root.glob("*/migration.sql"), key=lambda p: p.parent.name.encode())
    prefix = "prisma/migrations"
    files = {
        f"{prefix}/{p.parent.name}/migration.sql": p.read_text(errors="replace") for p in migrations[:-1]
    }
    files[f"{prefix}/migration_lock.toml"] = (root / "migration_lock.toml").read_text()
    last = migrations[-1]
    timings: dict[str, list[float]] = {"cold": [], "warm": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=1) as zdm,
    ):
        connection = Redis.from_url(redis_url)
        repo = zdm.github.add_repo("acme", "large", 1)
        base = zdm.github.commit(repo, {**files, "package.json": '{"devDependencies": {"prisma": "6.19.0"}}'})
        for number in range(2 * count):
            kind = "cold" if number % 2 == 0 else "warm"
            if kind == "cold":
                for key in connection.scan_iter("zdm:replay:*"):
                    connection.delete(key)
            # Each pull request its own head commit: the same file, and a line saying which run it is.
            text = last.read_text(errors="replace") + f"\n-- bench run {number}\n"
            pull = open_pull(zdm, repo, base, {f"{prefix}/{last.parent.name}/migration.sql": text})
            started = time.perf_counter()
            zdm.deliver("pull_request", pull_request_payload(repo, pull))
            completed_run(zdm, repo, pull.head_sha, timeout=120)
            timings[kind].append(time.perf_counter() - started)
    cold, warm = statistics.median(timings["cold"]), statistics.median(timings["warm"])
    return [
        (
            f"review on the largest root ({len(migrations)} migrations), cold / warm, p50",
            f"{cold * 1000:.0f} / {warm * 1000:.0f} ms (warm {warm / cold:.0%} of cold)",
            "warm <= 20% of cold",
        )
    ]


def merge_queue(count: int) -> list[tuple[str, str, str]]:
    """`merge_group.checks_requested` to zdm's check run completed on the group's head commit (what GitHub's
    merge queue waits for), as `reviews` measures a pull request: a group of 3 pull requests, one adding a
    blocking migration; and a group of 3 changing no migration."""
    from tests.test_app import BLOCKING, MIGRATIONS, completed_run, new_repo, open_pull, pull_request_payload
    from tests.test_app_merge_queue import group_payload

    kinds = ("blocking", "none", "pull request")
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    calls: dict[str, list[int]] = {kind: [] for kind in kinds}
    conclusions: dict[str, set[str | None]] = {kind: set() for kind in kinds}
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=1) as zdm,
    ):
        repo, base = new_repo(zdm, "bench-queue")
        warm = open_pull(zdm, repo, base, {"README.md": "warm\n"})
        zdm.deliver("pull_request", pull_request_payload(repo, warm))
        completed_run(zdm, repo, warm.head_sha)
        for number in range(count):
            # The pull request's review of the same blocking migration, in the same run: the machine's load
            # moves both alike.
            migration = f"{MIGRATIONS}/2024030100000{number % 10}_{number}/migration.sql"
            pull = open_pull(zdm, repo, base, {migration: BLOCKING})
            before = len(zdm.github.calls)
            started = time.perf_counter()
            zdm.deliver("pull_request", pull_request_payload(repo, pull))
            run = completed_run(zdm, repo, pull.head_sha)
            timings["pull request"].append(time.perf_counter() - started)
            conclusions["pull request"].add(run.conclusion)
            time.sleep(0.05)
            calls["pull request"].append(len(zdm.github.calls) - before)
            for kind in ("blocking", "none"):
                first = {f"docs/{kind}-{number}-a.md": f"{number}\n"}
                middle = (
                    {f"{MIGRATIONS}/2024020100000{number % 10}_{number}/migration.sql": BLOCKING}
                    if kind == "blocking"
                    else {f"docs/{kind}-{number}-b.md": f"{number}\n"}
                )
                last = {f"docs/{kind}-{number}-c.md": f"{number}\n"}
                pulls = [open_pull(zdm, repo, base, files) for files in (first, middle, last)]
                group = zdm.github.merge_group(repo, base, pulls, "merge")
                before = len(zdm.github.calls)
                started = time.perf_counter()
                zdm.deliver("merge_group", group_payload(repo, group))
                run = completed_run(zdm, repo, group.head_sha)
                timings[kind].append(time.perf_counter() - started)
                conclusions[kind].add(run.conclusion)
                time.sleep(0.05)
                calls[kind].append(len(zdm.github.calls) - before)
        violations = len(zdm.github.violations)
    rows = []
    for kind, label in (
        ("blocking", "3 PRs, one adding a blocking migration"),
        ("none", "3 PRs, no migration"),
        ("pull request", "a PR adding a blocking migration, same run"),
    ):
        durations = timings[kind]
        event = "pull_request" if kind == "pull request" else "merge_group"
        rows += [
            (
                f"{event} -> check run completed ({label}), p50 / p90",
                f"{statistics.median(durations) * 1000:.0f} / {percentile(durations, 0.9) * 1000:.0f} ms "
                f"({'/'.join(sorted(str(c) for c in conclusions[kind]))})",
                "p50 <= 150 ms",
            ),
            (
                f"GitHub API calls ({label})",
                f"median {statistics.median(calls[kind]):.0f}, max {max(calls[kind])}",
                "-",
            ),
        ]
    rows.append(("merge queue: requests breaking GitHub's descriptions", str(violations), "0"))
    return rows


def backlog(count: int) -> list[tuple[str, str, str]]:
    """Deliveries arriving faster than reviews finish: the receiver's answers while two workers catch up."""
    from tests.test_app import BLOCKING, MIGRATIONS, new_repo, open_pull, pull_request_payload

    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=0) as zdm,
    ):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--workers", "2", "--port", str(port)],
            env=zdm.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(url), timeout=60, what="zdm serve")
            repo, base = new_repo(zdm, "backlog")
            pulls = [
                open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_{n}/migration.sql": BLOCKING})
                for n in range(count)
            ]
            latencies = []
            started = time.perf_counter()
            ids = [str(uuid.uuid4()) for _ in pulls]
            order = [*range(count), *range(0, count, 10)]  # one in eleven is a redelivery
            with httpx.Client(timeout=30) as client:
                for n in order:
                    body = json.dumps(pull_request_payload(repo, pulls[n])).encode()
                    sent = time.perf_counter()
                    client.post(
                        f"{url}/api/github/webhooks",
                        content=body,
                        headers={
                            "X-GitHub-Event": "pull_request",
                            "X-GitHub-Delivery": ids[n],
                            "X-Hub-Signature-256": sign(zdm.secret, body),
                        },
                    )
                    latencies.append(time.perf_counter() - sent)
            sending = time.perf_counter() - started
            wait_for(
                lambda: all(zdm.github.check_runs_for(repo, p.head_sha) for p in pulls),
                timeout=600,
                what="every review",
            )
            drained = time.perf_counter() - started
            runs = [len(zdm.github.check_runs_for(repo, p.head_sha)) for p in pulls]
            comments = len(zdm.github.review_comments(repo, 0)) + sum(
                len(zdm.github.review_comments(repo, p.number)) for p in pulls
            )
            server_side = _ack_percentiles(httpx.get(f"{url}/metrics").text)
        finally:
            server.terminate()
            server.wait(timeout=60)
    thirds = [latencies[i * len(latencies) // 3 : (i + 1) * len(latencies) // 3] for i in range(3)]
    return [
        (
            f"backlog: {len(order)} deliveries in {sending:.1f} s, drained in",
            f"{drained:.1f} s",
            "-",
        ),
        (
            "backlog: ack p50 first / middle / last third",
            " / ".join(f"{statistics.median(t) * 1000:.1f}" for t in thirds) + " ms",
            "flat",
        ),
        ("backlog: ack measured by the receiver", server_side, "-"),
        (
            "backlog: check runs per PR / review comments",
            f"{min(runs)}-{max(runs)} / {comments} (expected {2 * count})",
            "exactly 1 / no duplicates",
        ),
    ]


def fairness(burst: int, workers: int = 2) -> list[tuple[str, str, str]]:
    """Installation A pushes to `burst` pull requests at once; installation B to one, right after: B's review
    waits for at most one review per worker, not for A's backlog. `zdm serve` runs as a process, as in production."""
    from tests.test_app import BLOCKING, MIGRATIONS, new_repo, open_pull, pull_request_payload

    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=0) as zdm,
    ):

        def completed(repo: Any, sha: str) -> bool:
            return any(r.status == "completed" for r in zdm.github.check_runs_for(repo, sha))

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--workers", str(workers), "--port", str(port)],
            env=zdm.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(url), timeout=60, what="zdm serve")
            busy, busy_base = new_repo(zdm, "monorepo")
            quiet, quiet_base = new_repo(zdm, "shop", owner="globex", installation=7002)
            names = iter(range(10**6))

            def migration() -> dict[str, str]:
                # Each pull request its own folder: the same files would be the same commit on every one.
                return {f"{MIGRATIONS}/20240201000000_{next(names)}/migration.sql": BLOCKING}

            with httpx.Client(timeout=30) as client:

                def send(repo: Any, pull: Any) -> None:
                    body = json.dumps(pull_request_payload(repo, pull, "synchronize")).encode()
                    client.post(
                        f"{url}/api/github/webhooks",
                        content=body,
                        headers={
                            "X-GitHub-Event": "pull_request",
                            "X-GitHub-Delivery": str(uuid.uuid4()),
                            "X-Hub-Signature-256": sign(zdm.secret, body),
                        },
                    )

                alone = []
                for repo, base in [(busy, busy_base), (quiet, quiet_base)] * 4:
                    pull = open_pull(zdm, repo, base, migration())
                    started = time.perf_counter()
                    send(repo, pull)
                    wait_for(lambda: completed(repo, pull.head_sha), timeout=60, what="a review")  # noqa: B023
                    alone.append(time.perf_counter() - started)
                one_review = statistics.median(alone[2:])  # the first two fetch each installation's token
                pulls = [open_pull(zdm, busy, busy_base, migration()) for _ in range(burst)]
                lone = open_pull(zdm, quiet, quiet_base, migration())
                started = time.perf_counter()
                for pull in pulls:
                    send(busy, pull)
                sent = time.perf_counter()
                send(quiet, lone)
            wait_for(lambda: completed(quiet, lone.head_sha), timeout=600, what="B's review")
            lone_done = time.perf_counter() - sent
            # How long each job took in its worker, as the workers record it: the reviews running beside B's.
            jobs = status.recent(Redis.from_url(redis_url), limit=50)
            lone_job = next(j.seconds for j in jobs if j.repository == "globex/shop")
            loaded = statistics.median(j.seconds for j in jobs if j.repository == "acme/monorepo")
            ahead = sum(completed(busy, p.head_sha) for p in pulls)
            while not all(completed(busy, p.head_sha) for p in pulls):
                time.sleep(0.05)
            drained = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=60)
    return [
        (
            f"fairness: one review, webhook to check run, alone / job time during the burst ({workers} workers)",
            f"{one_review * 1000:.0f} ms / p50 {loaded * 1000:.0f} ms",
            "-",
        ),
        (
            f"fairness: B's 1 delivery right after A's {burst} (sent in {sent - started:.1f} s): B's check run in",
            f"{lone_done * 1000:.0f} ms ({lone_done / loaded:.1f} reviews during the burst, "
            f"{lone_done / one_review:.1f} alone); its job {lone_job * 1000:.0f} ms",
            "<= 2 reviews",
        ),
        (
            "fairness: A's reviews done before B's / A's backlog drained in",
            f"{ahead} of {burst} / {drained:.1f} s",
            "-",
        ),
    ]


def review_size() -> list[tuple[str, str, str]]:
    """What zdm posts for a typical corpus migration (about 20 findings) and for the corpus's largest review."""
    from tests.review_measures import LARGEST, TYPICAL, corpus_migration, plan_repeats
    from tests.test_app import completed_run, corpus_pull, posted_bodies, pull_request_payload, queue_is_idle

    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_redis(Path(tmp) / "redis") as redis_url,
        app_under_test(Path(tmp) / "app", redis_url, workers=1) as zdm,
    ):
        for label, relative in (("typical", TYPICAL), ("largest", LARGEST)):
            migration = corpus_migration(relative)
            repo, pull = corpus_pull(zdm, label, migration)
            zdm.deliver("pull_request", pull_request_payload(repo, pull))
            completed_run(zdm, repo, pull.head_sha, timeout=300)
            wait_for(lambda: queue_is_idle(zdm), timeout=300, what="the review")
            comments = zdm.github.review_comments(repo, pull.number)
            inline = [c for c in comments if c.line is not None]
            bodies = [c.body for c in comments]
            (summary,) = zdm.github.comments_on(repo, pull.number)
            lines = migration.text.count("\n")
            name = f"review size, {label} ({migration.folder}, {lines} lines)"
            rows += [
                (
                    f"{name}: inline / file-level comments",
                    f"{len(inline)} / {len(comments) - len(inline)}",
                    "file-level above 30",
                ),
                (
                    f"{name}: total / largest comment",
                    f"{sum(map(len, bodies)):,} / {max(map(len, bodies), default=0):,} chars",
                    "~20 findings <= 15 KB; each <= 3 KB",
                ),
                (
                    f"{name}: summary comment / check run summary",
                    f"{len(summary.body):,} / {len(zdm.github.check_runs_for(repo, pull.head_sha)[0].output['summary']):,} chars",
                    "<= 65,536 / 65,535",
                ),
                (
                    f"{name}: plan text repeated",
                    str(plan_repeats(migration.plan(), posted_bodies(zdm, repo, pull))),
                    "0",
                ),
            ]
        rows.append(("review size: requests breaking GitHub's limits", str(len(zdm.github.violations)), "0"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reviews", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=200)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--only-review-size", action="store_true", help="measure only what reviews post")
    parser.add_argument("--only-merge-queue", action="store_true", help="measure only merge groups")
    parser.add_argument(
        "--only-largest-root", action="store_true", help="measure only the largest root's review"
    )
    parser.add_argument(
        "--only-ingest-and-fairness", action="store_true", help="measure only ingest and fairness"
    )
    args = parser.parse_args()
    if args.only_review_size:
        rows = review_size()
    elif args.only_merge_queue:
        rows = merge_queue(args.reviews)
    elif args.only_largest_root:
        rows = largest_root(3)
    elif args.only_ingest_and_fairness:
        rows = ingest(args.deliveries, args.concurrency) + fairness(args.burst)
    else:
        rows = (
            ingest(args.deliveries, args.concurrency)
            + reviews(args.reviews)
            + merge_queue(args.reviews)
            + largest_root(3)
            + backlog(args.backlog)
            + fairness(args.burst)
            + review_size()
        )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")


if __name__ == "__main__":
    main()
