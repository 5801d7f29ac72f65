from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("anny")

from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.models import Pose2Mesh
from meshgraph.training import evaluate, mean_mesh, mean_mesh_baseline


def test_evaluate_keys_units_and_mode(hand):
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8)  # fmt: skip
    test = SyntheticPoseMeshDataset(hand, 20, joint_set="hand", seed=99, noise="none")
    model.train()
    m = evaluate(model, test, batch_size=8)
    assert model.training  # restored
    assert set(m) == {"mpjpe", "pa_mpjpe", "posenet_mpjpe", "mpvpe", "pa_mpvpe", "f5", "f15"}
    assert all(math.isfinite(v) for v in m.values())
    assert m["pa_mpjpe"] <= m["mpjpe"] + 1e-6  # Procrustes can only help
    assert 0.0 <= m["f5"] <= m["f15"] <= 1.0
    assert m["mpvpe"] > 1.0  # millimetres: an untrained net is far off


def test_evaluate_size_free_errors_against_a_float64_loop(hand):
    """size_free=True adds N-MPJPE and N-MPVPE, each the mean of a naive float64 loop over
    the samples (root-relative, the least-squares scale of each, mean distance); the other
    metrics do not change."""
    import numpy as np

    torch.manual_seed(0)
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8).eval()  # fmt: skip
    test = SyntheticPoseMeshDataset(hand, 12, joint_set="hand", seed=98)
    plain = evaluate(model, test, batch_size=5)
    m = evaluate(model, test, batch_size=5, size_free=True)
    assert set(m) == set(plain) | {"n_mpjpe", "n_mpvpe"}
    assert {k: m[k] for k in plain} == plain
    batch = test.__getitems__(list(range(12)))
    with torch.no_grad():
        out = model(batch["keypoints_2d"], batch["visible"])
    r = model.mesh_joint_set.root
    pj, gj = out["mesh_joints_3d"].double().numpy(), batch["mesh_joints_3d"].double().numpy()
    pv, gv = out["vertices"].double().numpy(), batch["vertices"].double().numpy()

    def size_free(p, t):
        s = np.sum(p * t) / np.sum(p * p)
        return np.mean([np.linalg.norm(s * p[i] - t[i]) for i in range(len(p))])

    n_j = np.mean([size_free(pj[b] - pj[b, r], gj[b] - gj[b, r]) for b in range(12)])
    n_v = np.mean([size_free(pv[b] - pj[b, r], gv[b] - gj[b, r]) for b in range(12)])
    assert m["n_mpjpe"] == pytest.approx(1000 * n_j, rel=1e-5)
    assert m["n_mpvpe"] == pytest.approx(1000 * n_v, rel=1e-5)


def test_mean_mesh_baseline(hand):
    data = SyntheticPoseMeshDataset(hand, 10, joint_set="hand", seed=5, noise="none")
    template = mean_mesh(data, num_samples=4)
    torch.testing.assert_close(template, data.generate(range(4))["vertices"].mean(0))
    same = mean_mesh_baseline(data, data, num_train=1, num_test=1)
    assert same["mpvpe"] < 1e-3 and same["pa_mpvpe"] < 1e-3  # the template of one sample is it
    other = mean_mesh_baseline(data, SyntheticPoseMeshDataset(hand, 10, joint_set="hand", seed=6))
    assert other["mpvpe"] > 5.0


def test_mean_mesh_baseline_on_any_dataset_of_the_protocol(hand):
    """Plain lists of samples (no generate, no mesh_regressor) give the synthetic sets'
    numbers once the regressor and root are passed; MPVPE matches a float64 NumPy loop."""
    import numpy as np

    train = SyntheticPoseMeshDataset(hand, 10, joint_set="hand", seed=5, noise="none")
    test = SyntheticPoseMeshDataset(hand, 6, joint_set="hand", seed=6, noise="none")
    ref = mean_mesh_baseline(train, test, num_train=8)
    as_list = [{"vertices": v} for v in train.generate(range(8))["vertices"]]
    test_list = [{"vertices": v} for v in test.generate(range(6))["vertices"]]
    reg_t, root = test.mesh_regressor, test.mesh_joint_set.root
    got = mean_mesh_baseline(as_list, test_list, num_train=8, batch_size=4, regressor=reg_t,
                             root=root)  # fmt: skip
    assert got == pytest.approx(ref, rel=1e-9)
    reg = test.mesh_regressor.double().numpy()
    template = np.mean([d["vertices"].double().numpy() for d in as_list], axis=0)
    errors = []
    for d in test_list:
        gv = d["vertices"].double().numpy()
        r = test.mesh_joint_set.root
        a = template - reg[r] @ template
        b = gv - reg[r] @ gv
        errors.append(np.linalg.norm(a - b, axis=1).mean())
    assert got["mpvpe"] == pytest.approx(1000 * np.mean(errors), rel=1e-9)
    with pytest.raises(ValueError, match="pass regressor="):
        mean_mesh_baseline(as_list, test_list)
    with pytest.raises(ValueError, match="pass root="):
        mean_mesh_baseline(as_list, test_list, regressor=test.mesh_regressor)


def test_validation_batches_are_made_once_and_evaluate_the_same(hand):
    from meshgraph.training.pipeline import _MadeOnce

    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8)  # fmt: skip
    test = SyntheticPoseMeshDataset(hand, 20, joint_set="hand", seed=99, noise="none")
    calls = []
    made = test.__getitems__
    test.__getitems__ = lambda idx: calls.append(list(idx)) or made(idx)
    once = _MadeOnce(test)
    assert len(once) == 20 and once.is_hand and once.joint_set is test.joint_set
    first = evaluate(model, once, num_samples=12, batch_size=8)
    again = evaluate(model, once, num_samples=12, batch_size=8)
    assert calls == [list(range(8)), list(range(8, 12))]  # made once, then kept
    assert first == again == evaluate(model, test, num_samples=12, batch_size=8)
