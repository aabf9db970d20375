"""The live queue: what is waiting or running, where each run stands, and recent failures in words."""
import threading
import time

from fastapi import APIRouter, Query
from sqlalchemy import event
from sqlmodel import Session

from api.deps import OptionalUser, SessionDep
from api.schemas import QueuePublic
from core.eta import live_queue

router = APIRouter(prefix="/queue", tags=["queue"])

# The anonymous view is the same for every visitor: made at most once a second per process (the Queue page
# polls every few seconds; at 10,000 models each answer costs several queries). A signed-in viewer may see
# their private models' submissions, so theirs is made per request.
PUBLIC_FOR_S = 1.0
_public: dict[int, tuple[float, dict]] = {}
_public_lock = threading.Lock()


def forget_public(*_args) -> None:
    """Drop the kept anonymous answers: a commit in this process may have changed the queue."""
    with _public_lock:
        _public.clear()


event.listen(Session, "after_commit", forget_public)


@router.get("", response_model=QueuePublic)
def read_queue(session: SessionDep, viewer: OptionalUser, failures: int = Query(50, ge=0, le=500)) -> dict:
    """Live submissions with each run's stage, progress, queue position and an ETA; recent failures.

    Queue position counts the runs of the same hardware class queued earlier (0 = next). The ETA
    assumes the recent mean run time on that hardware class and the workers seen in the last two
    minutes; it is an estimate, absent until a run has finished on that class.

    A hidden or withdrawn model's submissions are listed to its owner and admins only (positions still
    count them); failures read as their kind and one line, whole only to the model's owner and admins.
    """
    if viewer is not None:
        return live_queue(session=session, viewer=viewer, failures=failures)
    with _public_lock:
        made_at, answer = _public.get(failures, (float("-inf"), None))
    if time.monotonic() - made_at >= PUBLIC_FOR_S:
        answer = live_queue(session=session, viewer=None, failures=failures)
        with _public_lock:
            _public[failures] = (time.monotonic(), answer)
    return answer
