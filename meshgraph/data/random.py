"""Counter-based random numbers: the same values on every device for a ``(seed, index, stream)``.

A :class:`torch.Generator` is a sequential state: its numbers depend on the device and on
everything drawn before. Here every number is a pure function of its key, ``(seed, sample
index, stream, slot)``, hashed with SplitMix64 (Steele, Lea and Flood 2014) in int64 tensor
arithmetic. A batch of any composition, on any device, gets the same integers for the same
samples, so a synthetic sample depends on ``(seed, index)`` alone, and a batch can be made
directly on the training device. Uniforms are the top 53 bits of the hash (exact in float64);
normals come from the Box-Muller transform (equal across devices to the last ulp of ``log``
and ``cos``).

Example:
    >>> a = CounterRandom(seed=7, indices=[3, 5], stream=0).rand(4)
    >>> b = CounterRandom(seed=7, indices=[5], stream=0).rand(4)
    >>> bool((a[1] == b[0]).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["CounterRandom", "Source", "integers", "normal", "splitmix64", "uniform"]


def _signed(value: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(x: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix64(x: Tensor) -> Tensor:
    """SplitMix64's finaliser of ``x + golden``, on int64 tensors (wrapping arithmetic).

    Bit for bit the reference algorithm on unsigned 64-bit integers, read as int64.
    """
    if x.dtype != torch.int64:
        raise TypeError(f"splitmix64 needs int64, got {x.dtype}")
    z = x + _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    return z ^ _shift_right(z, 31)


class CounterRandom:
    """Random numbers for a batch of samples, keyed by ``(seed, index, stream)`` per sample.

    Each call draws the next ``slots`` of every sample's stream: ``rand(3)`` then ``randn(2)``
    gives the same numbers for a sample whether it is drawn alone or in any batch, on any
    device. The output's first dimension is the batch.

    Args:
        seed: The dataset seed (any Python int).
        indices: The samples' indices.
        stream: Which stream (poses, cameras, noise per epoch...).
        device: Where the numbers are made.
    """

    def __init__(
        self,
        seed: int,
        indices: Sequence[int] | Tensor,
        stream: int,
        device: torch.device | str | None = None,
    ) -> None:
        idx = torch.as_tensor(indices, dtype=torch.int64, device=device).reshape(-1)
        seed_key = splitmix64(torch.tensor(_signed(seed % (1 << 64)), dtype=torch.int64))
        stream_key = splitmix64(torch.tensor(_signed(stream % (1 << 64)), dtype=torch.int64))
        key = splitmix64(splitmix64(idx ^ seed_key.to(idx.device)) ^ stream_key.to(idx.device))
        self.key = key
        self.slot = 0
        self.n = idx.numel()
        self.device = idx.device

    def _bits(self, count: int) -> Tensor:
        """``(n, count)`` fresh 64-bit hashes (int64 bit patterns)."""
        slots = torch.arange(self.slot, self.slot + count, dtype=torch.int64, device=self.device)
        self.slot += count
        return splitmix64(self.key[:, None] ^ splitmix64(slots)[None, :])

    def rand(self, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
        """Uniforms in ``[0, 1)``, shape ``(n, *shape)``."""
        count = math.prod(shape)
        u = _shift_right(self._bits(count), 11).to(torch.float64) * 2.0**-53
        return u.view(self.n, *shape).to(dtype)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
        """Standard normals (Box-Muller), shape ``(n, *shape)``."""
        count = math.prod(shape)
        u = self.rand(2 * count).view(self.n, 2, count)
        radius = torch.sqrt(-2.0 * torch.log1p(-u[:, 0]))  # 1 - u in (0, 1]: finite
        z = radius * torch.cos(2.0 * math.pi * u[:, 1])
        return z.view(self.n, *shape).to(dtype)

    def randint(self, high: int, *shape: int) -> Tensor:
        """Integers in ``[0, high)`` (int64), shape ``(n, *shape)``."""
        if high < 1:
            raise ValueError(f"high must be positive, got {high}")
        return torch.floor(self.rand(*shape) * high).to(torch.int64).clamp_(max=high - 1)


#: A source of random numbers for the samplers: a :class:`torch.Generator` (one stream, CPU)
#: or a :class:`CounterRandom` (one keyed stream per sample, any device).
Source = torch.Generator | CounterRandom


def _check_rows(source: CounterRandom, n: int) -> None:
    if n != source.n:
        raise ValueError(f"asked for {n} rows from a CounterRandom of {source.n} samples")


def uniform(source: Source, n: int, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(n, *shape)`` uniforms in ``[0, 1)`` from a generator or a :class:`CounterRandom`."""
    if isinstance(source, CounterRandom):
        _check_rows(source, n)
        return source.rand(*shape, dtype=dtype)
    return torch.rand(n, *shape, generator=source, dtype=dtype)


def normal(source: Source, n: int, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(n, *shape)`` standard normals from a generator or a :class:`CounterRandom`."""
    if isinstance(source, CounterRandom):
        _check_rows(source, n)
        return source.randn(*shape, dtype=dtype)
    return torch.randn(n, *shape, generator=source, dtype=dtype)


def integers(source: Source, high: int, n: int, *shape: int) -> Tensor:
    """``(n, *shape)`` int64 in ``[0, high)`` from a generator or a :class:`CounterRandom`."""
    if isinstance(source, CounterRandom):
        _check_rows(source, n)
        return source.randint(high, *shape)
    return torch.randint(high, (n, *shape), generator=source)
