"""What this machine's CPU can do, and which encoder backend a calibration found fastest on it.

Which CPU backend is fastest flips between machines of one kind: on an AVX2-only CPU the int8 ONNX recipe is
~1.8x fp32 torch, while on a CPU with AMX, PyTorch's bf16 autocast is ~2.6x and int8 only ~1.25x. So ``auto``
does not follow a fixed list: it follows a calibration that ``e5search setup`` runs once per machine
(:mod:`.calibrate`: every available backend timed on a fixed probe batch and checked against fp32), recorded in
``<cache>/calibration.json`` with the CPU it was measured on. Without one (or when the record is of another CPU),
it orders by CPU features: bf16 instructions (AMX or AVX512-BF16) put ``torch-bf16`` first.
"""

from __future__ import annotations

import functools
import json
import platform
from pathlib import Path

from indexer.cache import cache_home

FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # bf16 matrix instructions: autocast runs faster than fp32
CALIBRATION_FILE = "calibration.json"


@functools.lru_cache(maxsize=1)
def cpu_identity() -> tuple[str, frozenset[str]]:
    """(CPU model name, instruction-set flags) from /proc/cpuinfo; ("", {}) where there is none."""
    model, flags = platform.processor() or "", frozenset[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


def fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 matrices in hardware (AMX or AVX512-BF16)."""
    flags = cpu_identity()[1] if flags is None else flags
    return any(f in flags for f in FAST_BF16_FLAGS)


def machine_key(identity: tuple[str, frozenset[str]] | None = None) -> str:
    """The CPU a calibration belongs to: model name plus the flags that change which backend wins."""
    model, flags = cpu_identity() if identity is None else identity
    relevant = sorted(
        f for f in flags if f in {*FAST_BF16_FLAGS, "avx512_vnni", "avx_vnni", "avx2", "avx512f"}
    )
    return f"{model} [{' '.join(relevant)}]"


def read_calibration(home: Path | None = None) -> dict | None:
    """This machine's calibration record, or None (none yet, unreadable, or measured on another CPU)."""
    path = (home or cache_home()) / CALIBRATION_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("machine") == machine_key() else None


def write_calibration(record: dict, home: Path | None = None) -> Path:
    path = (home or cache_home()) / CALIBRATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**record, "machine": machine_key()}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
