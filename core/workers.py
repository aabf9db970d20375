"""Which workers are live: the one definition of "seen recently", used by submissions, the queue,
the hardware page and the metrics.

A worker refreshes its profile's `last_seen_at` every reconcile period (30 s by default,
runners/worker.py); two minutes leaves room for a few missed beats before it counts as gone.
"""
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from core.models import HardwareProfile, utcnow

LIVE_WITHIN = timedelta(minutes=2)


def live_since(now: datetime | None = None) -> datetime:
    """Profiles seen at or after this moment are live."""
    return (now or utcnow()) - LIVE_WITHIN


def is_live(profile: HardwareProfile, *, now: datetime | None = None) -> bool:
    return profile.last_seen_at >= live_since(now)


def live_worker_count(*, session: Session, hardware_class: str) -> int:
    """Live workers of one hardware class."""
    return session.exec(select(func.count()).select_from(HardwareProfile).where(
        HardwareProfile.hardware_class == hardware_class, HardwareProfile.last_seen_at >= live_since())).one()


def live_workers_by_class(*, session: Session) -> dict[str, int]:
    """Live workers per hardware class (classes without one are absent)."""
    rows = session.exec(select(HardwareProfile.hardware_class, func.count())
                        .where(HardwareProfile.last_seen_at >= live_since())
                        .group_by(HardwareProfile.hardware_class)).all()
    return {hardware_class: count for hardware_class, count in rows}
