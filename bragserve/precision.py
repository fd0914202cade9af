"""bf16 for the two models (the embedder and the NLI cross-encoder) on CPUs that compute it natively.

Both follow one recipe, so both are decided and run here: ``auto`` means bf16 where the CPU
has native bf16 (AVX512-BF16/AMX; emulated bf16 would be slower than fp32), every Linear
holds its weights in bf16, and forward passes run under autocast, which keeps layer norms,
softmax and embeddings in fp32.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when used: only processes that run a model pay for it
    import torch


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (what ``auto`` decides on; benchmarks record it)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(requested: str) -> str:
    """The precision to run: ``auto`` becomes bf16 where the CPU has it natively, else fp32; any other is kept."""
    if requested != "auto":
        return requested
    return "bf16" if native_bf16() else "fp32"


def hold_linear_in_bf16(model: torch.nn.Module) -> None:
    """Autocast runs every Linear in bf16 but casts its fp32 weights again on each call: for gate-sized NLI
    calls that was a fixed cost per call (1 pair 33 -> 18 ms, 3 pairs 81 -> 59 ms; benchmarks/nli_throughput.py).
    Weights held in bf16 give the numbers autocast would compute, without the cast."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


def compute(precision: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in at ``precision``."""
    if precision == "bf16":
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
