"""Hardware: the class names a submission can ask for, and each class's workers with their measured profile."""
from fastapi import APIRouter
from sqlmodel import select

from api.deps import SessionDep
from api.schemas import HardwareClassPublic
from core.config import get_settings
from core.models import HardwareProfile
from core.workers import is_live

router = APIRouter(tags=["hardware"])


@router.get("/hardware-classes")
def hardware_classes() -> list[str]:
    return get_settings().hardware_classes


@router.get("/hardware", response_model=list[HardwareClassPublic])
def list_hardware(session: SessionDep) -> list[dict]:
    """Each hardware class with its workers: the profile each measured at start, and whether it is alive."""
    profiles = session.exec(select(HardwareProfile).order_by(HardwareProfile.measured_at.desc())).all()
    classes = []
    for name in get_settings().hardware_classes:
        workers = [{"id": p.id, "worker": p.worker, "host": p.host, "device_name": p.device_name,
                    "device_count": p.device_count, "memory_bytes": p.memory_bytes, "versions": p.versions,
                    "measured": p.measured, "measured_at": p.measured_at, "last_seen_at": p.last_seen_at,
                    "alive": is_live(p)}
                   for p in profiles if p.hardware_class == name]
        classes.append({"hardware_class": name, "workers_alive": sum(w["alive"] for w in workers),
                        "workers": workers})
    return classes
