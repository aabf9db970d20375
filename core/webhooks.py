"""Tell a submitter's URL when their submission ends: one signed POST, best effort, sent once.

The body is signed with HMAC-SHA256 under the secret given at submission; the receiver
checks `X-Evalboard-Signature: sha256=<hex>` against its own HMAC of the raw body.
"""
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
import uuid

import httpx
from sqlmodel import select

from core.config import get_settings
from core.db import session_scope
from core.models import Model, Submission, utcnow

log = logging.getLogger("evalboard.webhooks")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to `url`, in words, or None when it may.

    Every address the host resolves to must be public (ipaddress's is_global) unless the
    deployment allows private ones: otherwise a submitter could make our workers POST into our own
    network (the database, Redis, the cloud metadata address 169.254.169.254). Checked when the
    submission is made and again before sending, since DNS may have changed in between."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "it must be an http:// or https:// URL with a host"
    if allow_private:
        return None
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        return f"its host {parsed.hostname!r} does not resolve ({exc})"
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            return (f"its host {parsed.hostname!r} is {address}, a {_address_kind(address)} address; "
                    "webhooks go only to public addresses")
    return None


def notify_if_ended(submission_id: uuid.UUID, attempts: int = 3) -> bool:
    """Send the webhook of an ended submission, if it has one not yet sent. True when delivered."""
    with session_scope() as s:
        submission = s.exec(select(Submission).where(Submission.id == submission_id).with_for_update()).first()
        if (submission is None or not submission.webhook_url or submission.webhook_sent_at is not None
                or not submission.status.is_terminal):
            return False
        # Claimed before sending: two workers finishing the last runs at once send one webhook.
        submission.webhook_sent_at = utcnow()
        model = s.get(Model, submission.model_id)
        url, secret = submission.webhook_url, submission.webhook_secret or ""
        payload = {"event": "submission.ended", "submission_id": str(submission.id), "model": model.name,
                   "suite": submission.suite, "status": submission.status.value, "error": submission.error,
                   "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
                   "url": f"{get_settings().api_url}/api/v1/submissions/{submission.id}"}
    why = refusal(url, allow_private=get_settings().webhook_allow_private)
    if why:
        log.warning("webhook %s not sent: %s", url, why)
        return False
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "X-Evalboard-Signature": sign(secret, body),
               "X-Evalboard-Event": "submission.ended"}
    for attempt in range(attempts):
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5)
            if response.status_code < 400:
                return True
            log.warning("webhook %s answered %s", url, response.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s", url, exc)
        time.sleep(2 ** attempt)
    return False
