"""Public endpoints of messaging (no login): vendor callbacks and the unsubscribe page."""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from siyu.contacts.models import Consent, ConsentStatus
from siyu.messaging import inbound, links
from siyu.messaging.models import LinkClick, OutboxMessage, TrackedLink
from siyu.messaging.sender import transport_for

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024

# one answer that both SMS vendors read as "received" (Aliyun: code 0, Tencent: result 0)
ACK = {"code": 0, "msg": "成功", "result": 0, "errmsg": "OK"}


@csrf_exempt
@require_http_methods(["GET", "POST"])
def channel_hook(request: HttpRequest, channel_id: int, token: str, what: str) -> HttpResponse:
    channel = inbound.channel_for_hook(channel_id, token)
    if channel is None:
        return JsonResponse({"code": 404, "msg": "unknown channel"}, status=404)
    transport = transport_for(channel)
    query = {k: v for k, v in request.GET.items()}
    if request.method == "GET":  # a vendor verifying the URL before using it (WeChat)
        answer = transport.callback_handshake(query)
        if answer is None:
            return HttpResponse("forbidden", status=403, content_type="text/plain")
        return HttpResponse(answer, content_type="text/plain")
    body = request.body[:MAX_BODY]
    if not transport.callback_authentic(query, body):
        return HttpResponse("forbidden", status=403, content_type="text/plain")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        if what == "receipts":
            count = inbound.apply_receipts(channel, transport, transport.receipts(body, headers))
        else:
            count = inbound.apply_replies(channel, transport, transport.replies(body, headers))
    except ValueError as exc:  # an unreadable payload: the vendor should not retry it forever
        log.warning("unreadable %s for channel %s: %s", what, channel.pk, exc)
        return JsonResponse({**ACK, "code": 400, "result": 400, "msg": str(exc)[:200]}, status=400)
    log.info("channel %s: %s %s applied", channel.pk, count, what)
    ack = transport.callback_ack()
    return HttpResponse(ack[0], content_type=ack[1]) if ack else JsonResponse(ACK)


@csrf_exempt  # one-click unsubscribe (RFC 8058): mail clients POST without a CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    data = inbound.read_unsubscribe_token(token)
    if data is None:
        return render(request, "messaging/unsubscribe.html", {"state": "invalid"}, status=404)
    if request.method == "GET":
        withdrawn = Consent.objects.filter(
            workspace_id=data["w"],
            contact_id=data["c"],
            channel=data["ch"],
            status=ConsentStatus.WITHDRAWN,
        ).exists()
        state = "done" if withdrawn else "confirm"
        return render(request, "messaging/unsubscribe.html", {"state": state, "token": token})
    contact = inbound.unsubscribe(data)
    if contact is None:
        return render(request, "messaging/unsubscribe.html", {"state": "invalid"}, status=404)
    return render(
        request, "messaging/unsubscribe.html", {"state": "done", "brand": contact.workspace.name}
    )


@require_http_methods(["GET", "HEAD"])
def tracked_link(request: HttpRequest, code: str) -> HttpResponse:
    """A message's short link: record the click (not for HEAD, which link previews and
    scanners send) and redirect to the template's URL."""
    found = links.read_code(code)
    link = TrackedLink.objects.filter(pk=found[0]).first() if found else None
    if link is None:
        return render(request, "messaging/unsubscribe.html", {"state": "link_invalid"}, status=404)
    if request.method == "GET":
        message = OutboxMessage.objects.filter(pk=found[1], workspace_id=link.workspace_id).first()
        LinkClick.objects.create(
            workspace_id=link.workspace_id,
            link=link,
            message=message,
            contact_id=message.contact_id if message else None,
            user_agent=request.headers.get("User-Agent", "")[:300],
        )
    return HttpResponseRedirect(link.url)
