"""Where the work runs, and how to make it repeatable there: the device, bf16, seeds."""

import os
import random

import numpy as np
import torch

from .errors import HCRError

DEVICE_ENV = "HCR_DEVICE"
PRECISIONS = ("fp32", "bf16", "auto")


def seed_everything(seed):
    """Same seed, same machine, same numbers: seeds Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name=None):
    """The argument, else $HCR_DEVICE, else the accelerator PyTorch finds (CUDA, MPS, ...), else the CPU."""
    if isinstance(name, torch.device):
        return name
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        try:
            return torch.device(name)
        except RuntimeError:
            raise HCRError(f"{name!r} is not a device PyTorch knows: use cpu, cuda or mps (or unset ${DEVICE_ENV})."
                           ) from None
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None and accelerator.is_available():
        return accelerator.current_accelerator()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16():
    """bf16 autocast only pays on CPUs with bf16 instructions (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision, device):
    """bf16 autocast on the CPU only: when asked ("bf16"), or ("auto") where the CPU has it."""
    if precision not in PRECISIONS:
        raise HCRError(f"precision={precision!r} is unknown: choose one of {', '.join(PRECISIONS)}.")
    wanted = precision == "bf16" or (precision == "auto" and cpu_has_native_bf16())
    return device.type == "cpu" and wanted
