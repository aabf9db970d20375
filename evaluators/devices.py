"""What a worker's `--device` names: `cpu`, one accelerator (`cuda:0`), or a list of them (`cuda:0,cuda:1`).

A list means one model spread over those devices (transformers' `device_map="auto"`, limited to the
listed ones): for models bigger than one device. The first device is the one inputs go to and the one
a worker measures its profile on. Anything else is refused when the worker starts, not at a run.
"""
import re

_ONE = re.compile(r"^(cpu|cuda(:\d{1,2})?|mps|xpu(:\d{1,2})?)$")


def parse_devices(device: str) -> list[str]:
    names = [d.strip() for d in str(device).split(",")]
    if not names or any(not _ONE.match(n) for n in names):
        raise ValueError(f"--device must be cpu, cuda:N or a list cuda:0,cuda:1; not {device!r}")
    if len(names) > 1 and not all(n.startswith("cuda:") for n in names):
        raise ValueError(f"a device list spreads one model over several GPUs: cuda:N entries only, not {device!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"--device names a device twice: {device!r}")
    return names


def primary_device(device: str) -> str:
    return parse_devices(device)[0]


def spread_kwargs(device: str) -> dict:
    """from_pretrained's placement for a device list: layers over the listed GPUs only (None for one device)."""
    names = parse_devices(device)
    if len(names) == 1:
        return {}
    import torch
    # accelerate fills the listed devices only; a little headroom per GPU for activations and the KV cache.
    budget = {int(n.split(":")[1]): int(torch.cuda.get_device_properties(int(n.split(":")[1])).total_memory * 0.9)
              for n in names}
    return {"device_map": "auto", "max_memory": budget}
