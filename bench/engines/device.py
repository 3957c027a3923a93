"""Device concerns in one place: which devices exist, synchronising before a clock is read,
and the memory high-water mark of a run.

Every call here has a CPU and a CUDA branch of the same shape, so that the code around them
(timing, the memory fields of a record) runs the same way on both.
"""

from __future__ import annotations

from pathlib import Path

import torch

DEVICES = ("cpu", "cuda")


def available() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def synchronize(device: torch.device) -> None:
    """Wait for queued work on `device` before a clock is read (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    else:
        torch.cpu.synchronize()


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_mb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _vm_hwm_mb() -> float | None:
    return _vm_mb("VmHWM")


def resident_mb() -> float | None:
    """This process's resident memory now (None where /proc cannot tell)."""
    return _vm_mb("VmRSS")


def available_mb() -> float | None:
    """The memory this machine can still give (MemAvailable; None where /proc cannot tell)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class MemoryProbe:
    """Peak memory of one run. On CUDA: the caching allocator's peak of allocated tensors
    (`cuda-allocated`). On the CPU: the process's resident high-water mark (`cpu-rss`),
    reset at `reset()` through `/proc/self/clear_refs` where Linux allows it, so the figure
    is this run's peak, not the process's (`cpu-rss-process` where it could not be reset)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda-allocated" if device.type == "cuda" else "cpu-rss"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            self.kind = "cpu-rss-process"

    def peak_mb(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return _vm_hwm_mb()

    def fields(self) -> dict:
        return {"peak_mem_mb": self.peak_mb(), "peak_mem_kind": self.kind}
