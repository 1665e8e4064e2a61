"""Run gunicorn in-process, optionally with a task worker subprocess that stops with it."""

import subprocess
import sys

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from siyu.wsgi import application

        return application


def serve(*, host: str, port: int, workers: int, with_worker: bool = False) -> None:
    worker = None
    if with_worker:
        worker = subprocess.Popen([sys.executable, "-m", "siyu.cli", "worker"])
    try:
        _Gunicorn(
            {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": 4,
                "worker_class": "gthread",
                "timeout": 60,
                "accesslog": "-",
                # Path only: a query string may hold a searched phone or email (no PII in logs).
                "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
            }
        ).run()
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
