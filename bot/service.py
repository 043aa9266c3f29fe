"""Running the App: the receiver (uvicorn) and RQ workers, on an external Redis or the embedded one.

Stopping, for `zdm serve` and `zdm worker` alike: SIGTERM or SIGINT stops taking work, lets the running job
finish (RQ's warm shutdown) for up to ZDM_SHUTDOWN_GRACE_SECONDS, then stops the workers and the embedded
Redis (which writes its append-only file) and exits 0. A second signal, or the grace period running out, stops
the running job too; RQ runs it again on the next start, so nothing accepted is lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from bot.logs import configure, log, register_secret
from bot.queue import connect, queue_for, redis_url
from bot.settings import Settings

# After a forced stop, how long a worker has to take its job process down itself before both are killed.
_FORCED_STOP_SECONDS = 5.0


class ShutdownSignals:
    """SIGTERM and SIGINT for the life of the process: the first asks for an orderly stop, the second forces.

    The handler only sets attributes: it runs between any two bytecodes of the main thread, which may be holding
    a lock (logging, threading.Event) the handler would otherwise wait on forever.
    """

    def __init__(self) -> None:
        self.count = 0
        self.last: int | None = None

    def install(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.count += 1
        self.last = number

    @property
    def requested(self) -> bool:
        return self.count >= 1

    @property
    def forced(self) -> bool:
        return self.count >= 2


def _graceful_worker_class(settings: Settings) -> type:
    from rq import Queue, Worker
    from rq.job import Job

    from bot.queue import pass_turn

    class GracefulWorker(Worker):
        """RQ's worker with a limit on its warm shutdown: RQ waits for the running job however long it takes;
        past the grace period the job is stopped as on a second signal, and RQ runs it again later.

        Taking a job passes its installation's turn on (bot/queue.py): the installation's next delivery joins the
        end of the queue, behind every other installation's."""

        def request_stop(self, signum: int, frame: FrameType | None) -> None:
            signal.signal(signal.SIGALRM, self.request_force_stop)
            signal.setitimer(signal.ITIMER_REAL, max(settings.shutdown_grace_seconds, 1.0))
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

        def execute_job(self, job: Job, queue: Queue) -> None:
            try:
                pass_turn(self.connection, queue, settings, job)
            except Exception as error:  # RQ ends the worker on any error here; the job passes the turn itself
                log.warning("worker.turn_not_passed", job=job.id, error=str(error))
            super().execute_job(job, queue)

    return GracefulWorker


def run_worker(settings: Settings, url: str, burst: bool = False) -> None:
    configure(settings.log_json)
    register_secret(settings.webhook_secret())
    # Fail at start, not on the first job, when the App's credentials are missing.
    settings.app_id()
    settings.private_key()
    # RQ runs each job in a forked child: importing the job's modules here once saves every job from doing it.
    import workers.jobs  # noqa: F401
    from bot.github import warm_up

    warm_up()

    connection = connect(url)
    worker = _graceful_worker_class(settings)([queue_for(connection, settings)], connection=connection)
    log.info("worker.start", queue=settings.queue_name, redis=_display_url(url))
    try:
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    log.info("worker.stop")


class WorkerProcesses:
    """The `zdm worker` processes `zdm serve` runs beside its receiver."""

    def __init__(self, url: str, count: int, grace_seconds: float) -> None:
        self.env = {**os.environ, "REDIS_URL": url}
        self.count = count
        self.grace_seconds = grace_seconds
        self.children: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.children:
                return
            # Their own process group: Ctrl-C in a terminal reaches `zdm serve` alone, which then stops them in
            # order, instead of every process at once.
            self.children = [
                subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=self.env, process_group=0)
                for _ in range(self.count)
            ]

    def stop(self, forced: Callable[[], bool]) -> None:
        with self.lock:
            children = list(self.children)
        for child in children:
            _signal(child, signal.SIGTERM)
        # The workers enforce the grace period themselves; the margin covers their own teardown.
        _wait_all(children, self.grace_seconds + 10, forced)
        running = [child for child in children if child.poll() is None]
        if running:
            log.warning("serve.forced_stop", workers=len(running))
            # A second SIGTERM is RQ's cold shutdown: the worker ends its job process and registers its death.
            for child in running:
                _signal(child, signal.SIGTERM)
            _wait_all(running, _FORCED_STOP_SECONDS, lambda: False)
        for child in children:
            if child.poll() is None:
                _kill_tree(child.pid)
                child.wait()


def _signal(child: subprocess.Popen[bytes], number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(number)


def _wait_all(children: list[subprocess.Popen[bytes]], seconds: float, forced: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while any(child.poll() is None for child in children):
        if forced() or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=5)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from bot.web import create_app

    configure(settings.log_json)
    signals = ShutdownSignals()
    signals.install()
    configured = settings.configured() or settings.demo
    if configured or settings.has_environment_credentials():
        secret = settings.webhook_secret()  # refuses to start without one unless ZDM_DEMO=1
        if secret is None:
            log.warning(
                "serve.demo", detail="ZDM_DEMO=1: unsigned webhooks are accepted; never expose this server"
            )
    with redis_url(settings) as url:
        pool = WorkerProcesses(url, workers, settings.shutdown_grace_seconds)
        sweeping = threading.Event()
        stop = threading.Event()

        def start_reviewing() -> None:
            pool.start()
            if settings.sweep_seconds > 0 and settings.configured() and not sweeping.is_set():
                sweeping.set()
                threading.Thread(target=_sweep_forever, args=(settings, url, stop), daemon=True).start()

        app = create_app(settings, connect(url), on_configured=start_reviewing)
        # Served from a thread: uvicorn then leaves signals to zdm. In the main thread it would take them and, once
        # stopped, raise the signal again, ending the process before the workers and Redis are stopped.
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )
        receiver = threading.Thread(target=server.run, name="receiver")
        try:
            if configured:
                start_reviewing()
            else:
                log.warning(
                    "serve.setup", detail=f"no GitHub App yet: open http://{host}:{port}/ to register it"
                )
            receiver.start()
            log.info("serve.start", host=host, port=port, workers=workers, redis=_display_url(url))
            while receiver.is_alive() and not signals.requested:
                time.sleep(0.1)
            log.info("serve.stopping", signal=signals.last)
        finally:
            server.should_exit = True
            stop.set()
            receiver.join()
            pool.stop(lambda: signals.forced)
    log.info("serve.stop")
    if signals.forced and signals.last is not None:
        raise SystemExit(128 + signals.last)
    if not signals.requested:
        raise SystemExit(1)  # the receiver ended by itself: the port was taken, or it failed to start


def _sweep_forever(settings: Settings, url: str, stop: threading.Event) -> None:
    from workers.redelivery import sweep

    connection = connect(url)
    while not stop.wait(settings.sweep_seconds):
        try:
            sweep(settings, connection, settings.sweep_seconds)
        except Exception as error:  # the next sweep tries again; a sweep must never take the receiver down
            log.warning("sweep.failed", error=str(error))


def _display_url(url: str) -> str:
    # Never log a password that may sit in REDIS_URL.
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
