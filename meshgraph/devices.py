"""Devices: checking a requested torch device, and CPU memory reuse for large tensors."""

from __future__ import annotations

import ctypes
import sys

import torch

__all__ = ["check_device", "check_same_device", "reuse_cpu_memory"]

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def check_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check that this machine has it.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a :class:`torch.device`...

    Returns:
        The :class:`torch.device`.

    Raises:
        ValueError: If ``device`` is not a device name, or names a device this machine or
            this torch build lacks (the message says which and why).

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device {device!r} is not a torch device name (e.g. 'cpu', 'cuda', 'cuda:1')"
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU found"
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available ({why}; torch {torch.__version__})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s)"
            )
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
        return dev
    backend = getattr(torch, dev.type, None)
    available = getattr(backend, "is_available", None)
    if callable(available) and not available():
        raise ValueError(f"device {str(device)!r}: {dev.type} is not available on this machine")
    return dev


def reuse_cpu_memory(enable: bool = True) -> bool:
    """Let the C allocator reuse freed memory for large CPU tensors (Linux, glibc).

    glibc serves every allocation above 32 MB with a fresh ``mmap`` and returns it to the
    system on ``free``: each new tensor of a large batch (a ``(13718, 64 * 40)`` float buffer
    is 140 MB) then pays a page fault for every 4 KiB page on first touch. On the full body at
    batch 64 that was about half of a Pose2Mesh forward pass on a 2-core CPU. This switches
    ``mmap`` off for ``malloc`` and never trims the heap (``mallopt(M_MMAP_MAX, 0)``,
    ``mallopt(M_TRIM_THRESHOLD, -1)``), so freed blocks are reused: a long-running process
    keeps its peak memory instead of returning it. Reuse is glibc's best effort, not a
    guarantee: now and then a small allocation takes the place of a freed block and the next
    large tensor grows the heap instead (in a test of three 200 MB tensors, about 1 run in 7
    faulted one of them; a training loop settles after its first steps). It changes the whole
    process, so meshgraph never does it on import: the ``meshgraph`` command and
    :func:`meshgraph.training.pipeline.run` call it; call it yourself in a training or
    inference script (the same as setting ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1``
    before starting Python).

    Args:
        enable: ``False`` restores glibc's defaults (65,536 mmaps, 128 KiB trim threshold).

    Returns:
        Whether the setting was applied (``False`` off Linux or without glibc's ``mallopt``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if enable:
        ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, -1) == 1
    else:
        ok = mallopt(_M_MMAP_MAX, 65536) == 1 and mallopt(_M_TRIM_THRESHOLD, 128 * 1024) == 1
    return bool(ok)


def check_same_device(x: torch.Tensor, reference: torch.Tensor, what: str, where: str) -> None:
    """Refuse ``x`` on another device than ``reference``, with a message that names both.

    Args:
        x: The input.
        reference: A tensor of the module (a weight or buffer).
        what: The input's name (``"x"``, ``"keypoints_2d"``).
        where: What ``reference`` belongs to (``"MeshChebConv"``).

    Raises:
        ValueError: If the devices differ.
    """
    if x.device != reference.device:
        raise ValueError(
            f"{what} is on {x.device} but the {where} is on {reference.device}: move one to "
            f"the other (module.to({str(x.device)!r}) or {what}.to({str(reference.device)!r}))"
        )
