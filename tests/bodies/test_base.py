from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from meshgraph.bodies import axis_angle_to_matrix, fit_joint_regressor


def test_axis_angle_matches_scipy():
    rng = np.random.default_rng(0)
    aa = rng.standard_normal((50, 3)) * rng.uniform(0, 3, (50, 1))
    aa[0] = 0.0
    aa[1] = [1e-6, 0, 0]
    ours = axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    assert axis_angle_to_matrix(torch.zeros(2, 7, 3)).shape == (2, 7, 3, 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        axis_angle_to_matrix(torch.zeros(4))


def test_axis_angle_gradcheck_including_zero():
    aa = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))


def test_fit_joint_regressor_recovers_a_known_combination():
    rng = np.random.default_rng(1)
    verts = rng.standard_normal((20, 10, 3))
    true = np.zeros(10)
    true[[2, 5, 7]] = [0.2, 0.5, 0.3]
    joints = np.einsum("v,nvc->nc", true, verts)[:, None, :]
    reg = fit_joint_regressor(verts, joints, [np.array([1, 2, 5, 7, 9])])
    np.testing.assert_allclose(reg[0], true, atol=1e-6)
    # outside the candidates nothing is used, rows sum to one, weights are non-negative
    reg2 = fit_joint_regressor(verts, joints + 5.0, [np.array([0, 1])])
    assert reg2[0, 2:].sum() == 0 and reg2[0].sum() == pytest.approx(1.0) and reg2.min() >= 0
    with pytest.raises(ValueError, match="no candidate"):
        fit_joint_regressor(verts, joints, [np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match="do not match"):
        fit_joint_regressor(verts, joints, [])
