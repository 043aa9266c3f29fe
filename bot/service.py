"""Running the App: the receiver (uvicorn) and RQ workers, on an external Redis or the embedded one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from bot.logs import configure, log, register_secret
from bot.queue import connect, queue_for, redis_url
from bot.settings import Settings


def run_worker(settings: Settings, url: str, burst: bool = False) -> None:
    from rq import Worker

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
    worker = Worker([queue_for(connection, settings)], connection=connection)
    log.info("worker.start", queue=settings.queue_name, redis=_display_url(url))
    worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from bot.web import create_app

    configure(settings.log_json)
    secret = settings.webhook_secret()  # refuses to start without one unless ZDM_DEMO=1
    if secret is None:
        log.warning(
            "serve.demo", detail="ZDM_DEMO=1: unsigned webhooks are accepted; never expose this server"
        )
    with redis_url(settings) as url:
        env = {**os.environ, "REDIS_URL": url}
        children = [
            subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env) for _ in range(workers)
        ]
        stop = threading.Event()
        if settings.sweep_seconds > 0 and settings.github_app_id is not None:
            threading.Thread(target=_sweep_forever, args=(settings, url, stop), daemon=True).start()
        try:
            app = create_app(settings, connect(url))
            log.info("serve.start", host=host, port=port, workers=workers, redis=_display_url(url))
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        finally:
            stop.set()
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()


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
