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
