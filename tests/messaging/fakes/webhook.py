"""A webhook receiver that does what we ask receivers to do: check the signature with
`verify`, drop a repeated Idempotency-Key, and answer 2xx. Switches make it misbehave."""

import json

from siyu.messaging.channels.webhook.signature import verify
from tests.messaging.fakes import FakeVendor, Request, Response


class FakeWebhookReceiver(FakeVendor):
    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret
        self.reset()

    def reset(self) -> None:
        """Forget what was received and turn every switch off (one receiver serves many
        tests: starting and stopping a server costs half a second)."""
        self.requests.clear()
        self.bodies: list[dict] = []  # accepted bodies, once per key
        self.keys: list[str] = []
        self.rejected_signatures = 0
        # switches
        self.status: int | None = None  # answer this status instead of accepting
        self.retry_after: str | None = None  # with this Retry-After header
        self.redirect_to: str | None = None  # answer 302 to this location
        self.response_id: str | None = "evt_{n}"  # the `id` in a 2xx answer; None: no JSON

    def handle(self, request: Request) -> Response:
        signature = request.headers.get("x-siyu-signature", "")
        if not verify(self.secret, request.body, signature):
            self.rejected_signatures += 1
            return Response.json({"error": "bad signature"}, status=401)
        if self.redirect_to:
            return Response(302, b"", {"Location": self.redirect_to})
        if self.status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return Response(self.status, b'{"error": "switched"}', headers)
        key = request.headers.get("idempotency-key", "")
        with self.lock:
            if key not in self.keys:  # a repeat is acknowledged but not processed again
                self.keys.append(key)
                self.bodies.append(json.loads(request.body))
            number = self.keys.index(key) + 1
        if self.response_id is None:
            return Response(202, b"accepted", {"Content-Type": "text/plain"})
        return Response.json({"id": self.response_id.format(n=number)})
