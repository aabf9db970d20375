"""The live queue: what is waiting or running, where each run stands, and recent failures in words."""
from fastapi import APIRouter, Query

from api.deps import OptionalUser, SessionDep
from api.schemas import QueuePublic
from core.eta import live_queue

router = APIRouter(prefix="/queue", tags=["queue"])


@router.get("", response_model=QueuePublic)
def read_queue(session: SessionDep, viewer: OptionalUser, failures: int = Query(50, ge=0, le=500)) -> dict:
    """Live submissions with each run's stage, progress, queue position and an ETA; recent failures.

    Queue position counts the runs of the same hardware class queued earlier (0 = next). The ETA
    assumes the recent mean run time on that hardware class and the workers seen in the last two
    minutes; it is an estimate, absent until a run has finished on that class.

    A hidden or withdrawn model's submissions are listed to its owner and admins only (positions still
    count them); failures read as their kind and one line, whole only to the model's owner and admins.
    """
    return live_queue(session=session, viewer=viewer, failures=failures)
