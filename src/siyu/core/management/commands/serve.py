import multiprocessing

from django.conf import settings
from django.core.management.base import BaseCommand

from siyu.core.server import serve


class Command(BaseCommand):
    help = "Serve the console and API with gunicorn (production-grade WSGI server)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SIYU_BIND_HOST)
        parser.add_argument("--port", type=int, default=settings.SIYU_PORT)
        parser.add_argument(
            "--workers", type=int, default=min(4, max(2, multiprocessing.cpu_count()))
        )
        parser.add_argument(
            "--with-worker",
            action="store_true",
            help="also run a task worker alongside (stopped together)",
        )

    def handle(self, *args, host, port, workers, with_worker, **options):
        serve(host=host, port=port, workers=workers, with_worker=with_worker)
