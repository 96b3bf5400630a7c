"""Where models run: the GPU when present (mixed precision), else every CPU core (no Django).

Only called from inside a task, i.e. in a worker's child process: the parent process never
touches CUDA (a CUDA context does not survive fork).
"""

import contextlib
import functools
import os

import torch


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(int(os.environ.get("GALAXYLAB_TORCH_THREADS", os.cpu_count() or 1)))
    return torch.device("cpu")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux), read once per process."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16): there, bfloat16
    matrix products are several times faster than float32; elsewhere they are emulated and slower.
    GALAXYLAB_CPU_BF16=0 turns it off."""
    if os.environ.get("GALAXYLAB_CPU_BF16", "1") == "0":
        return False
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"}) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast(device: torch.device, cpu_bf16: bool = False):
    """Mixed precision on the GPU (bfloat16 where supported); on the CPU plain float32 unless
    ``cpu_bf16`` (a training loop that has opted in) and the CPU has native bfloat16."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    if cpu_bf16 and device.type == "cpu" and cpu_has_native_bf16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
