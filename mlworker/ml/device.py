"""Where models run: the GPU when present (mixed precision), else every CPU core (no Django).

Only called from inside a task, i.e. in a worker's child process: the parent process never
touches CUDA (a CUDA context does not survive fork).
"""

import contextlib
import os

import torch


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(int(os.environ.get("GALAXYLAB_TORCH_THREADS", os.cpu_count() or 1)))
    return torch.device("cpu")


def autocast(device: torch.device):
    """Mixed precision on the GPU (bfloat16 where supported), plain float32 on the CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()
