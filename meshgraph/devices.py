"""Checking a requested torch device before any work is done on it."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


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
