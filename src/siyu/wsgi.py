import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()

# Load the URLconf (views, API schemas) now, then keep everything loaded so far out of the
# cyclic garbage collector: full collections over ~100k long-lived objects cost 25-45 ms
# every few requests, which was the p95 of the contact list (docs/benchmarks.md).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imports every view and schema
gc.freeze()
