"""Which number format pictures and trainings compute in, decided once per device.

`CARTOLINA_DTYPE=auto` follows the hardware, because the same choice is twice as fast on one
machine and slower on the next:

- CUDA: fp16 weights for pictures (half the memory, the same pictures); the trainer keeps its
  LoRA in fp32 and autocasts to bf16 where the card has it, else fp16 with a loss scaler.
- a CPU with native bf16 (AVX-512 BF16 or AMX on x86, the `bf16` feature on Arm): bf16
  autocast. A 3×3 convolution runs 2× and a large matmul 4.6× faster in bf16 on such a CPU
  (../shared/PACKAGES.md). Pictures keep fp32 weights, so the scheduler's arithmetic and
  every op autocast leaves in fp32 (norms, softmax) stay exact; the trainer's frozen base
  sits in bf16 (it is only read) and its LoRA in fp32, as on CUDA.
- any other CPU (AVX2 only, like some build machines): fp32. bf16 there is emulated and
  slower than fp32.

An explicit `float32` / `float16` / `bfloat16` is obeyed as asked, weights in that format.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware; asked of torch, then of the CPU's flags."""
    import torch
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # a private probe that changed: the flags below still answer
            pass
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """x86 `flags` and Arm `Features` of the first CPU; empty where there is no /proc."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                return set(value.split())
    except OSError:
        pass
    return set()


def native_bf16(switch: str) -> bool | None:
    """`CARTOLINA_CPU_BF16` as the functions below take it: auto → None (ask the CPU)."""
    return {"auto": None, "on": True, "off": False}[switch]


@dataclass(frozen=True)
class Precision:
    """`weights`: the dtype modules are loaded in; `autocast`: the dtype ops run in under
    `torch.autocast` (None: no autocast); `device_type`: autocast's device ("cuda" / "cpu")."""

    weights: object
    autocast: object | None
    device_type: str

    @property
    def name(self) -> str:
        """For logs and picture metadata: e.g. `float32 weights, bfloat16 autocast`."""
        w = str(self.weights).removeprefix("torch.")
        return f"{w} weights, {str(self.autocast).removeprefix('torch.')} autocast" if self.autocast else w

    def context(self):
        """The autocast block to run a pipeline or a training step in."""
        if self.autocast is None:
            return nullcontext()
        import torch
        return torch.autocast(device_type=self.device_type, dtype=self.autocast)


def for_pictures(setting: str, device: str, native_bf16: bool | None = None) -> Precision:
    """The precision of the picture pipelines for `CARTOLINA_DTYPE` = `setting` on `device`."""
    import torch
    explicit = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    kind = "cuda" if device == "cuda" else "cpu"
    if setting in explicit:
        return Precision(explicit[setting], None, kind)
    if device == "cuda":
        return Precision(torch.float16, None, kind)
    if device == "cpu" and (cpu_has_native_bf16() if native_bf16 is None else native_bf16):
        return Precision(torch.float32, torch.bfloat16, kind)
    return Precision(torch.float32, None, kind)


def training_mode(requested: str, setting: str, device: str, native_bf16: bool | None = None) -> str:
    """The trainer's mixed precision, `no` / `fp16` / `bf16`, for its option `requested`
    (`auto` or one of those) and `CARTOLINA_DTYPE` = `setting`.

    fp16 autocast needs a loss scaler and is a CUDA feature: asked for on a CPU it falls back
    to `no`. bf16 runs on both; `auto` on a CPU takes it only where the CPU has it natively."""
    import torch
    mode = requested
    if mode == "auto":
        if setting == "float32" or device not in ("cuda", "cpu"):
            mode = "no"
        elif device == "cuda":
            if setting == "bfloat16" or (setting == "auto" and torch.cuda.is_bf16_supported()):
                mode = "bf16"
            else:
                mode = "fp16"
        elif setting == "bfloat16" or (setting == "auto" and
                                       (cpu_has_native_bf16() if native_bf16 is None else native_bf16)):
            mode = "bf16"
        else:
            mode = "no"
    if mode == "fp16" and device != "cuda":
        mode = "no"
    if mode == "bf16" and device not in ("cuda", "cpu"):
        mode = "no"
    return mode
