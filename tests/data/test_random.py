"""Counter-based random numbers against a pure-Python SplitMix64 on unsigned integers."""

from __future__ import annotations

import math

import pytest
import torch

from meshgraph.data.random import CounterRandom, splitmix64

M64 = (1 << 64) - 1


def _py_splitmix(x: int) -> int:
    """The reference algorithm (Steele et al. 2014) on Python ints modulo 2^64."""
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _as_unsigned(t: torch.Tensor) -> list[int]:
    return [v & M64 for v in t.tolist()]


def test_splitmix64_matches_the_reference_bit_for_bit(device):
    values = [0, 1, 2, 12345, (1 << 63) - 1, -1, -(1 << 63), 0x0123456789ABCDEF]
    x = torch.tensor(values, dtype=torch.int64, device=device)
    assert _as_unsigned(splitmix64(x).cpu()) == [_py_splitmix(v & M64) for v in values]
    # the known first outputs of SplitMix64 seeded with 0 (state += golden, then mix)
    golden = 0x9E3779B97F4A7C15
    state = torch.tensor([0, golden - (1 << 64)], dtype=torch.int64, device=device)
    assert _as_unsigned(splitmix64(state).cpu()) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]
    with pytest.raises(TypeError, match="int64"):
        splitmix64(torch.zeros(2, dtype=torch.int32))


def _py_uniforms(seed: int, index: int, stream: int, slots: range) -> list[float]:
    key = _py_splitmix(_py_splitmix(index ^ _py_splitmix(seed)) ^ _py_splitmix(stream))
    return [(_py_splitmix(key ^ _py_splitmix(s)) >> 11) * 2.0**-53 for s in slots]


def test_uniforms_match_the_reference_and_ignore_the_batch(device):
    rng = CounterRandom(seed=42, indices=[7, 0, 123456789], stream=3, device=device)
    u = rng.rand(5)
    for row, index in enumerate([7, 0, 123456789]):
        assert u[row].cpu().tolist() == _py_uniforms(42, index, 3, range(5))
    # the next draws continue the stream; a sample alone gets the same numbers as in a batch
    more = rng.rand(2, 2)
    alone = CounterRandom(seed=42, indices=[0], stream=3, device=device)
    alone.rand(5)
    assert torch.equal(alone.rand(2, 2).cpu(), more[1:2].cpu())
    assert u.dtype == torch.float64 and u.device.type == torch.device(device).type
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0


def test_streams_seeds_and_indices_are_independent():
    base = CounterRandom(1, range(500), 0).rand(4)
    for other in (CounterRandom(2, range(500), 0), CounterRandom(1, range(500), 1),
                  CounterRandom(1, range(1, 501), 0)):  # fmt: skip
        corr = torch.corrcoef(torch.stack([base.flatten(), other.rand(4).flatten()]))[0, 1]
        assert abs(float(corr)) < 0.1


def test_distributions():
    rng = CounterRandom(0, range(20_000), 0)
    u = rng.rand(3)
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float(u.var()) - 1 / 12) < 0.005
    z = rng.randn(4)
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1.0) < 0.02
    assert abs(float((z.abs() < 1.0).double().mean()) - math.erf(1 / math.sqrt(2))) < 0.01
    k = rng.randint(7, 2)
    assert k.dtype == torch.int64 and int(k.min()) == 0 and int(k.max()) == 6
    counts = torch.bincount(k.flatten(), minlength=7).double() / k.numel()
    assert float((counts - 1 / 7).abs().max()) < 0.01
    with pytest.raises(ValueError, match="high"):
        rng.randint(0)


def test_negative_and_huge_seeds_work():
    a = CounterRandom(-5, [1], 0).rand(2)
    b = CounterRandom((1 << 64) - 5, [1], 0).rand(2)
    assert torch.equal(a, b)  # seeds are taken modulo 2^64


def test_samplers_take_counter_random_sources():
    """A batch drawn from a CounterRandom equals its samples drawn one by one."""
    from meshgraph.data.camera import sample_cameras
    from meshgraph.data.noise import gaussian_noise
    from meshgraph.data.poses import BetaSampler, ShapeSampler

    idx = [4, 9, 11]
    for sampler in (ShapeSampler(), BetaSampler(num_betas=5)):
        batch = sampler.sample(3, CounterRandom(0, idx, 0))
        ones = torch.cat([sampler.sample(1, CounterRandom(0, [i], 0)) for i in idx])
        assert torch.equal(batch, ones)
    centres = torch.zeros(3, 3, dtype=torch.float64)
    cams = sample_cameras(centres, CounterRandom(0, idx, 1))
    one = sample_cameras(centres[:1], CounterRandom(0, idx[1:2], 1))
    torch.testing.assert_close(cams.rotation[1:2], one.rotation, rtol=0, atol=0)
    kp = torch.rand(3, 17, 2, dtype=torch.float64) * 100
    noisy = gaussian_noise(kp, CounterRandom(0, idx, 2))
    torch.testing.assert_close(noisy[2:], gaussian_noise(kp[2:], CounterRandom(0, idx[2:], 2)))
    with pytest.raises(ValueError, match="asked for 2 rows"):
        ShapeSampler().sample(2, CounterRandom(0, idx, 0))
