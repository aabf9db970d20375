"""Tell a submitter's URL when their submission ends: one signed POST, best effort, sent once.

The body is signed with HMAC-SHA256 under the secret given at submission; the receiver
checks `X-Evalboard-Signature: sha256=<hex>` against its own HMAC of the raw body.

Sending never happens inside an API request or a job's commit: `notify_if_ended` claims the
webhook in the database (so it is sent once however many processes see the submission end) and
hands the POST to this process's small pool of sender threads. A slow or unreachable receiver
(three tries, 5 s each, with backoff: up to ~22 s) then holds a sender thread, not a request.
The pool's threads are joined when the process exits, so a burst worker delivers before it ends.

The address checked is the address connected to: the host is resolved once, every address must
be public (an IPv6 address that embeds an IPv4 one, such as `::ffff:127.0.0.1`, `::127.0.0.1`,
NAT64 `64:ff9b::/96` or 6to4 `2002::/16`, is judged by the IPv4 address inside), and the POST
goes to that IP with the name in the Host header and in TLS SNI (and certificate checks), so a
DNS answer that changes between check and connect (rebinding) cannot redirect it.
"""
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlmodel import select

from core.config import get_settings
from core.db import session_scope
from core.models import Model, Submission, utcnow

log = logging.getLogger("evalboard.webhooks")

SENDERS = 4
MAX_PENDING = 1000  # past this many undelivered webhooks in one process, new ones are dropped (logged)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending = threading.BoundedSemaphore(MAX_PENDING)
_inflight: set[Future] = set()

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _address_kind(address: IPAddress) -> str:
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by the forms that route to them."""
    if address.version == 4:
        return []
    found = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in (*_NAT64, _IPV4_TRANSLATED)) or (
            address in _IPV4_COMPATIBLE and int(address) > 1):  # not :: or ::1, which are IPv6's own
        found.append(low32)
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why this address is not public, in words, or None when it is (and all it embeds is)."""
    if not address.is_global:
        return f"{address}, a {_address_kind(address)} address"
    for inner in embedded_ipv4(address):
        if not inner.is_global:
            return f"{address}, which embeds {inner}, a {_address_kind(inner)} address"
    return None


@dataclass(frozen=True)
class Target:
    """Where a webhook goes: the checked IP to connect to, and the name the request carries."""
    url: str
    hostname: str
    ip: str


def resolve(url: str, *, allow_private: bool) -> tuple[Target | None, str | None]:
    """(the target to connect to, None), or (None, why the URL is refused, in words).

    Every address the host resolves to must be public unless the deployment allows private ones:
    otherwise a submitter could make us POST into our own network (the database, Redis, the cloud
    metadata address 169.254.169.254)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None, "it must be an http:// or https:// URL with a host"
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        return None, f"its host {parsed.hostname!r} does not resolve ({exc})"
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        return None, f"its host {parsed.hostname!r} does not resolve"
    if not allow_private:
        for address in addresses:
            why = address_refusal(address)
            if why:
                return None, f"its host {parsed.hostname!r} is {why}; webhooks go only to public addresses"
    return Target(url=url, hostname=parsed.hostname, ip=str(addresses[0])), None


def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to `url`, in words, or None when it may. Checked when the
    submission is made and again (resolving afresh) when sending, since DNS may change in between."""
    return resolve(url, allow_private=allow_private)[1]


def _pinned_url(target: Target) -> str:
    parsed = urllib.parse.urlsplit(target.url)
    host = f"[{target.ip}]" if ":" in target.ip else target.ip
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def post_pinned(target: Target, body: bytes, headers: dict[str, str], timeout: float = 5,
                verify: ssl.SSLContext | bool = True) -> httpx.Response:
    """POST to the checked IP itself; the name travels in Host and SNI (certificates are checked against it).
    No proxies from the environment and no redirects: either would connect somewhere unchecked."""
    parsed = urllib.parse.urlsplit(target.url)
    host_header = parsed.hostname if parsed.port is None else f"{parsed.hostname}:{parsed.port}"
    if ":" in parsed.hostname:  # an IPv6 literal keeps its brackets in Host
        host_header = f"[{parsed.hostname}]" + (f":{parsed.port}" if parsed.port else "")
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, verify=verify) as http:
        return http.post(_pinned_url(target), content=body, headers={**headers, "Host": host_header},
                         extensions={"sni_hostname": target.hostname})


def deliver(url: str, secret: str, payload: dict, attempts: int = 3) -> bool:
    """Send one webhook now (on a sender thread): resolve and check once, POST to that address. True when
    the receiver answered below 400."""
    target, why = resolve(url, allow_private=get_settings().webhook_allow_private)
    if why:
        log.warning("webhook %s not sent: %s", url, why)
        return False
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "X-Evalboard-Signature": sign(secret, body),
               "X-Evalboard-Event": payload.get("event", "submission.ended")}
    for attempt in range(attempts):
        try:
            response = post_pinned(target, body, headers)
            if response.status_code < 400:
                return True
            log.warning("webhook %s answered %s", url, response.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s", url, exc)
        if attempt + 1 < attempts:
            time.sleep(2 ** attempt)
    return False


def _senders() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhook")
        return _pool


def _deliver_and_release(url: str, secret: str, payload: dict) -> bool:
    try:
        return deliver(url, secret, payload)
    except Exception:  # a sender thread must survive anything one receiver does
        log.exception("webhook %s failed", url)
        return False
    finally:
        _pending.release()


def notify_if_ended(submission_id: uuid.UUID) -> Future | None:
    """Claim the webhook of an ended submission, if it has one not yet sent, and send it in the background.

    Returns the delivery's Future (True when delivered), or None when there is nothing to send. The
    caller never waits for the receiver."""
    with session_scope() as s:
        submission = s.exec(select(Submission).where(Submission.id == submission_id).with_for_update()).first()
        if (submission is None or not submission.webhook_url or submission.webhook_sent_at is not None
                or not submission.status.is_terminal):
            return None
        # Claimed before sending: two workers finishing the last runs at once send one webhook.
        submission.webhook_sent_at = utcnow()
        model = s.get(Model, submission.model_id)
        url, secret = submission.webhook_url, submission.webhook_secret or ""
        payload = {"event": "submission.ended", "submission_id": str(submission.id), "model": model.name,
                   "suite": submission.suite, "status": submission.status.value, "error": submission.error,
                   "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
                   "url": f"{get_settings().api_url}/api/v1/submissions/{submission.id}"}
    if not _pending.acquire(blocking=False):
        log.warning("webhook %s dropped: %d webhooks are already waiting to be sent", url, MAX_PENDING)
        return None
    future = _senders().submit(_deliver_and_release, url, secret, payload)
    _inflight.add(future)
    future.add_done_callback(_inflight.discard)
    return future


def wait_idle(timeout: float) -> bool:
    """Wait until every webhook handed to this process's senders is done (a graceful shutdown, a test).
    True when none is left."""
    deadline = time.monotonic() + timeout
    while _inflight and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _inflight
