"""core.workers: the one definition of a live worker (seen within LIVE_WITHIN), counted per class."""
from datetime import timedelta

from core.db import session_scope
from core.models import HardwareProfile, utcnow
from core.workers import LIVE_WITHIN, is_live, live_since, live_worker_count, live_workers_by_class


def profile(hardware_class: str, seen_ago: timedelta, name: str) -> HardwareProfile:
    return HardwareProfile(hardware_class=hardware_class, host="h", worker=name, device_name="cpu", device_count=1,
                           memory_bytes=1, last_seen_at=utcnow() - seen_ago)


def test_live_means_seen_within_the_window_and_not_before():
    now = utcnow()
    assert live_since(now) == now - LIVE_WITHIN
    assert is_live(profile("cpu", timedelta(0), "a"), now=now + LIVE_WITHIN - timedelta(seconds=1))
    assert not is_live(profile("cpu", timedelta(0), "a"), now=now + LIVE_WITHIN + timedelta(seconds=1))


def test_live_workers_are_counted_per_class():
    with session_scope() as s:
        s.add_all([profile("cpu", timedelta(seconds=5), "a"), profile("cpu", timedelta(seconds=90), "b"),
                   profile("cpu", LIVE_WITHIN + timedelta(seconds=30), "gone"),
                   profile("gpu-a10", timedelta(seconds=1), "g")])
        s.flush()
        assert live_workers_by_class(session=s) == {"cpu": 2, "gpu-a10": 1}
        assert live_worker_count(session=s, hardware_class="cpu") == 2
        assert live_worker_count(session=s, hardware_class="gpu-h200") == 0
