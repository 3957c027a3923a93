"""Numeric precision of training and scoring: `fp32` (the default), `bf16` (autocast of the
dense products to bfloat16, on CPU and CUDA) and `tf32` (CUDA's TensorFloat-32 matmuls).

Under bf16, `torch.autocast` runs the dense products (linear, matmul, conv) in bfloat16 while
the weights, their gradients and the optimiser state stay float32 (master weights); the
families cast to float32 before their reductions (softmax normalisers, losses, KL terms),
and metric arithmetic reads float32 scores. Sparse gathers stay float32. Where low precision
is unsafe for a family (an L-BFGS line search, a Cholesky solve) its config says so as data
(`ModelConfig.low_precision`: the parts, `loss` and `score`, that may run in it), and that
part keeps float32 whatever is asked.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "tf32")
AUTO = "auto"  # each variant's registered precision where the device has it natively
PARTS = ("loss", "score")  # what a family may run in low precision: training loss, scoring


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo's names


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_native_bf16(flags: frozenset[str] | set[str]) -> bool:
    """Whether a CPU with these flags multiplies bfloat16 in hardware: AVX-512 BF16 or AMX.
    oneDNN's own check (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) says yes on any
    AVX-512 CPU, where it emulates bf16 at a fraction of fp32's speed."""
    return bool(NATIVE_BF16_FLAGS & set(flags))


def native_bf16(device: torch.device | str) -> bool:
    """Whether the device multiplies bfloat16 natively (CUDA; a CPU whose flags list AVX-512
    BF16 or AMX). Elsewhere bf16 products are emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    return cpu_native_bf16(cpu_flags())


def warning(precision: str, device: torch.device | str) -> str | None:
    """What to tell a user who asks for bf16 where it is emulated."""
    if precision == "bf16" and not native_bf16(device):
        return ("this CPU has no native bfloat16 matmul (no AVX-512 BF16 or AMX in its flags): "
                "bf16 products run emulated, slower than fp32")
    return None


def resolve(asked: str, variant: str, device: torch.device | str, mode: str = "batched") -> str:
    """The precision a cell runs in: `asked`, or under `auto` the variant's registered one
    (`models.registry.Variant.precision`) where the device multiplies it natively (bf16 on
    CUDA or a CPU with AVX-512 BF16 / AMX; tf32 on CUDA) and the mode allows it (per-user
    mode runs float32 kernels), else fp32. `auto` never picks an emulated precision."""
    if asked != AUTO:
        return asked
    device = torch.device(device)
    native = {"fp32": True, "bf16": native_bf16(device), "tf32": device.type == "cuda"}
    return variant if native[variant] and mode == "batched" else "fp32"


def check(precision: str, device: torch.device | str) -> None:
    """Raise ValueError for an unknown precision or one the device lacks."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} unknown; choose from {', '.join(PRECISIONS)}")
    if precision == "tf32" and torch.device(device).type != "cuda":
        raise ValueError("precision tf32 is a CUDA matmul mode; on the CPU choose fp32 or bf16")


@contextlib.contextmanager
def _tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def context(precision: str, device: torch.device, allowed: tuple[str, ...], part: str):
    """The context `part` (`loss` or `score`) of a family runs in: low precision where asked
    and the family allows it for that part, else plain float32."""
    if precision == "fp32" or part not in allowed:
        return contextlib.nullcontext()
    if precision == "tf32":
        return _tf32()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def effective(precision: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """What each part ran in (a record's `precision`): the asked precision where allowed."""
    return {part: precision if part in allowed else "fp32" for part in PARTS}
