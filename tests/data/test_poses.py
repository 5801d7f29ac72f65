from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from meshgraph.data.poses import (
    BODY_CANONICAL,
    BODY_LIMITS,
    PHENOTYPE_RANGES,
    ShapeSampler,
    matrix_to_axis_angle,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_matrix_to_axis_angle_matches_scipy():
    rng = np.random.default_rng(0)
    aa = rng.standard_normal((200, 3))
    aa = aa / np.linalg.norm(aa, axis=1, keepdims=True) * rng.uniform(0, np.pi - 1e-3, (200, 1))
    aa[0] = 0
    aa[1] = [np.pi - 1e-9, 0, 0]
    aa[2] = [0, -(np.pi - 1e-9), 0]
    mats = torch.from_numpy(Rotation.from_rotvec(aa).as_matrix())
    back = matrix_to_axis_angle(mats).numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), mats.numpy(), atol=1e-6)


def test_shape_sampler_ranges_and_seed():
    s = ShapeSampler()
    x = s.sample(1000, _gen(1))
    assert x.shape == (1000, 6)
    lo = torch.tensor([r[0] for r in PHENOTYPE_RANGES.values()], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in PHENOTYPE_RANGES.values()], dtype=torch.float64)
    assert torch.all(x >= lo) and torch.all(x <= hi)
    assert x[:, 1].min() >= 0.5  # adults only by default
    assert ShapeSampler(adults_only=False).sample(1000, _gen(1))[:, 1].min() < 0.1
    assert torch.equal(s.sample(5, _gen(3)), s.sample(5, _gen(3)))
    with pytest.raises(ValueError, match="unknown phenotype"):
        ShapeSampler(ranges={"iq": (0, 1)})
    with pytest.raises(ValueError, match="within"):
        ShapeSampler(ranges={"age": (0.5, 1.5)})


def test_shape_sampler_height_sd_is_a_clipped_normal_of_the_same_draws():
    from scipy.stats import norm

    n = 20000
    plain = ShapeSampler().sample(n, _gen(4))
    # independent reference: the uniforms of the same generator, mapped by hand
    u = torch.rand(n, 6, generator=_gen(4), dtype=torch.float64)
    lo = torch.tensor([r[0] for r in PHENOTYPE_RANGES.values()], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in PHENOTYPE_RANGES.values()], dtype=torch.float64)
    torch.testing.assert_close(plain, lo + (hi - lo) * u, rtol=0, atol=1e-15)
    h = list(PHENOTYPE_RANGES).index("height")
    narrow = ShapeSampler(height_sd=0.065).sample(n, _gen(4))
    others = [i for i in range(6) if i != h]
    assert torch.equal(narrow[:, others], plain[:, others])  # the same bodies otherwise
    expected = np.clip(0.5 + 0.065 * norm.ppf(u[:, h].numpy()), 0.0, 1.0)
    np.testing.assert_allclose(narrow[:, h].numpy(), expected, rtol=0, atol=1e-9)
    assert float(narrow[:, h].mean()) == pytest.approx(0.5, abs=0.002)
    assert float(narrow[:, h].std()) == pytest.approx(0.065, rel=0.02)
    # a wide normal is clipped to the range: P(|z| > 0.5) = 0.617 of the draws sit on a bound
    wide = ShapeSampler(height_sd=1.0).sample(n, _gen(5))[:, h]
    assert float(wide.min()) == 0.0 and float(wide.max()) == 1.0
    on_bound = float(((wide == 0.0) | (wide == 1.0)).double().mean())
    assert on_bound == pytest.approx(2 * norm.cdf(-0.5), abs=0.01)
    # around the middle of an overridden range, and within it
    ranged = ShapeSampler(ranges={"height": (0.2, 0.4)}, height_sd=0.05).sample(n, _gen(6))
    assert float(ranged[:, h].mean()) == pytest.approx(0.3, abs=0.002)
    assert 0.2 <= float(ranged[:, h].min()) and float(ranged[:, h].max()) <= 0.4
    for bad in (0, -0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="height_sd must be a positive finite number"):
            ShapeSampler(height_sd=bad)


def test_tables_are_consistent():
    axes = {"x", "y", "z", "flex", "twist"}
    for bone, limits in BODY_LIMITS.items():
        assert set(limits) <= axes, bone
        assert all(lo <= hi for lo, hi in limits.values()), bone
    for name, pose in BODY_CANONICAL.items():
        for bone, angles in pose.items():
            base = bone.rsplit(".", 1)[0] if bone.endswith((".L", ".R")) else bone
            assert base in BODY_LIMITS, (name, bone)
            for axis, value in angles.items():
                lo, hi = BODY_LIMITS[base][axis]
                assert lo <= value <= hi, (name, bone, axis)


def test_default_shape_sampler_options():
    from types import SimpleNamespace

    from meshgraph.data.poses import BetaSampler
    from meshgraph.data.synthetic import default_shape_sampler

    anny_like = SimpleNamespace(name="anny")  # no num_betas: Anny's phenotypes
    assert default_shape_sampler(anny_like) == ShapeSampler()
    assert default_shape_sampler(anny_like, height_sd=0.05).height_sd == 0.05
    with pytest.raises(ValueError, match="ShapeSampler has no option 'stature'"):
        default_shape_sampler(anny_like, stature=1.7)
    smpl_like = SimpleNamespace(name="smpl", num_betas=10)
    assert isinstance(default_shape_sampler(smpl_like), BetaSampler)
    with pytest.raises(ValueError, match=r"smpl draws Gaussian shape coefficients.*height_sd"):
        default_shape_sampler(smpl_like, height_sd=0.05)
