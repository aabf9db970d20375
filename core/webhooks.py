"""Tell a submitter's URL when their submission ends: one signed POST, best effort, sent once.

The body is signed with HMAC-SHA256 under the secret given at submission; the receiver
checks `X-Evalboard-Signature: sha256=<hex>` against its own HMAC of the raw body.
"""
import hashlib
import hmac
import json
import logging
import time
import uuid

import httpx
from sqlmodel import select

from core.config import get_settings
from core.db import session_scope
from core.models import Model, Submission, utcnow

log = logging.getLogger("evalboard.webhooks")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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
