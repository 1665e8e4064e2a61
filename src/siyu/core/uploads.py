"""Refusing an upload that is too large before it is written to disk.

Django parses a multipart request (when a view, or the CSRF middleware, first reads
`request.POST` or `request.FILES`) through the handlers of `FILE_UPLOAD_HANDLERS`; the
default ones keep a small file in memory and write a larger one to a temporary file, whatever
its size. `LimitedUploadHandler`, placed first, stops the upload (`StopUpload`, nothing more is
passed to the handlers after it, so nothing more is written) as soon as

- the request's Content-Length exceeds the largest allowed upload (`SIYU_IMPORT_MAX_BYTES`)
  plus `ENVELOPE_BYTES` for the multipart envelope and the form's other fields: then no file
  is read at all, or
- the file bytes received so far exceed `SIYU_IMPORT_MAX_BYTES`.

The form fields before the file (the CSRF token, `kind`) are still parsed, so the CSRF check
works as usual; the rest of the body is read and dropped (`connection_reset=False`: the client
then gets the answer instead of a reset connection). The request is marked
`request.upload_refused = "too_large"`; views answer `UploadTooLarge` (413, `file_too_large`,
`details: {field: "file", max_bytes}`)."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

from siyu.core.errors import SiyuError

ENVELOPE_BYTES = 64 * 1024
TOO_LARGE = "too_large"
MB = 1024 * 1024


def max_upload_bytes() -> int:
    """The largest file accepted (the import limit: imports are the only uploads)."""
    return settings.SIYU_IMPORT_MAX_BYTES


def limit_mb(limit: int | None = None) -> str:
    """The limit in MB as a person reads it: "50", "0.1"."""
    limit = max_upload_bytes() if limit is None else limit
    return f"{max(round(limit / MB, 1), 0.1):g}"


class UploadTooLarge(SiyuError):
    """A file larger than the limit; 413 naming the field and the limit."""

    status = 413
    code = "file_too_large"

    def __init__(self, field: str = "file", limit: int | None = None):
        limit = max_upload_bytes() if limit is None else limit
        super().__init__(
            "the file is larger than %(mb)s MB; split it into smaller files",
            params={"mb": limit_mb(limit)},
            details={"field": field, "max_bytes": limit},
        )
        self.message = f"{field}: {self.message}"
        self.args = (self.message,)


def upload_refused(request: HttpRequest) -> bool:
    """Whether LimitedUploadHandler refused this request's upload (reads the body if needed)."""
    if request.method == "POST":
        request.FILES  # noqa: B018 - parses the body (once) if nothing did yet
    return getattr(request, "upload_refused", "") == TOO_LARGE


class LimitedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: stops an upload larger than the limit before the next
    handlers write it to memory or disk."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = max_upload_bytes()
        self.received = 0
        self.too_large = content_length > self.limit + ENVELOPE_BYTES
        if self.too_large:
            self._mark()
        return None  # the multipart parser goes on: the fields before a file are read

    def _mark(self) -> None:
        if self.request is not None:
            self.request.upload_refused = TOO_LARGE

    def _refuse(self):
        self._mark()
        raise StopUpload(connection_reset=False)

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        if getattr(self, "too_large", False):
            self._refuse()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received = getattr(self, "received", 0) + len(raw_data)
        if self.received > getattr(self, "limit", max_upload_bytes()):
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file
