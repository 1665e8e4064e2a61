"""A transport for testing the outbox itself: it records what it is asked to send, answers
what a test tells it to, and knows what it "has" for lookups. Registered in place of a real
kind by the `recording_transport` fixture."""

import json
import threading
from typing import ClassVar

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import FieldSpec, Outcome, Receipt, Reply, SendResult, Transport


class RecordingTransport(Transport):
    kind = "sms_aliyun"
    consent_channel = "sms"
    address_identity = "phone"
    max_batch = 1
    default_rate = 1000.0
    settings_fields = ()
    secret_fields = ()
    template_fields = (FieldSpec("text", "Text", kind="textarea", template=True),)

    sent: ClassVar[list[tuple[str, str, dict]]] = []
    answers: ClassVar[dict[str, SendResult]] = {}  # by address
    vendor_has: ClassVar[set[str]] = set()  # keys a lookup finds
    can_tell: ClassVar[bool] = True
    lock = threading.Lock()

    @classmethod
    def reset(cls):
        cls.sent, cls.answers, cls.vendor_has, cls.can_tell = [], {}, set(), True

    def check_content(self, content):
        if len(content.get("text", "")) > 70:
            raise ValidationError("text", "longer than 70 characters")

    def send(self, batch):
        results = []
        for message in batch:
            answer = self.answers.get(message.address)
            if answer is None or answer.outcome == Outcome.SENT:
                with self.lock:
                    self.sent.append((message.key, message.address, message.content))
                    self.vendor_has.add(message.key)
                results.append(SendResult(message.key, Outcome.SENT, vendor_id=f"v-{message.key}"))
            else:
                results.append(
                    SendResult(
                        message.key,
                        answer.outcome,
                        code=answer.code,
                        reason=answer.reason,
                        retry_after=answer.retry_after,
                    )
                )
        return results

    def lookup(self, message, since):
        if not self.can_tell:
            return None
        if message.key in self.vendor_has:
            return SendResult(message.key, Outcome.SENT, vendor_id=f"v-{message.key}")
        return SendResult(message.key, Outcome.RETRY)

    def receipts(self, body, headers):
        return [
            Receipt(
                delivered=r["delivered"], vendor_id=r.get("vendor_id", ""), code=r.get("code", "")
            )
            for r in json.loads(body)
        ]

    def replies(self, body, headers):
        return [Reply(address=r["phone"], text=r["text"]) for r in json.loads(body)]
