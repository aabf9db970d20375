"""A safetensors file's header, checked to describe the file exactly (DESIGN §6; issue 16 item 4).

The parameter count the board shows comes from these headers, so a header may not claim what the
file does not hold: every tensor's `data_offsets` lie inside the data section and span exactly
dtype size × shape bytes, the tensors tile the data section with no gap and no overlap, and the
file is exactly 8 + header + data bytes long. The header is capped (16 MiB) and depth-checked
before it is parsed; nothing but the header is read, and nothing is allocated per tensor.
"""
import struct
from dataclasses import dataclass
from pathlib import Path

from core.checkpoint_policy import loads_bounded
from core.errors import InvalidCheckpointError

MAX_HEADER_BYTES = 16 * 1024 * 1024
# safetensors' dtypes and their sizes in bytes (the sub-byte float formats are refused: no torch dtype loads them).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, int]
    """tensor name → element count"""

    @property
    def params(self) -> int:
        return sum(self.tensors.values())


def _invalid(path: Path, why: str) -> InvalidCheckpointError:
    return InvalidCheckpointError(f"{path.name}: not a valid safetensors file ({why})")


def read_header(path: Path) -> SafetensorsHeader:
    """The tensors of a safetensors file, after checking that its header tiles the file exactly."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _invalid(path, "too short for a header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES:
            raise _invalid(path, f"its header is {header_len:,} bytes; at most {MAX_HEADER_BYTES:,} are accepted")
        if header_len > size - 8:
            raise _invalid(path, f"its header claims {header_len:,} bytes but the file holds {size - 8:,}")
        header = loads_bounded(f.read(header_len), path.name, max_depth=4)
    if not isinstance(header, dict):
        raise _invalid(path, "the header is not a JSON object")
    data_len = size - 8 - header_len
    spans, tensors = [], {}
    for name, meta in header.items():
        if name == "__metadata__":
            if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
                raise _invalid(path, "__metadata__ must map strings to strings")
            continue
        if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "data_offsets"}:
            raise _invalid(path, f"tensor {name!r} needs exactly dtype, shape and data_offsets")
        dtype, shape, offsets = meta["dtype"], meta["shape"], meta["data_offsets"]
        # Dimensions must be non-negative ints: a string dimension would make `count *= dim` repeat a string.
        if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
            raise _invalid(path, f"tensor {name!r} has no valid shape")
        if dtype not in DTYPE_BYTES:
            raise _invalid(path, f"tensor {name!r} has an unknown dtype {dtype!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise _invalid(path, f"tensor {name!r} has data_offsets {offsets!r} outside the file's "
                                 f"{data_len:,} data bytes")
        count = 1
        for dim in shape:
            count *= dim
        if offsets[1] - offsets[0] != count * DTYPE_BYTES[dtype]:
            raise _invalid(path, f"tensor {name!r} is {dtype} {shape}, {count * DTYPE_BYTES[dtype]:,} bytes, but "
                                 f"its data_offsets span {offsets[1] - offsets[0]:,}")
        spans.append((offsets[0], offsets[1], name))
        tensors[name] = count
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            why = "overlaps the tensor before it" if begin < end else f"leaves a gap of {begin - end:,} bytes"
            raise _invalid(path, f"tensor {name!r} {why}: the tensors must tile the data section exactly")
        end = stop
    if end != data_len:
        raise _invalid(path, f"the tensors cover {end:,} of the file's {data_len:,} data bytes")
    return SafetensorsHeader(tensors)
