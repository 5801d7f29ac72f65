"""Fine-tuning a COCO-19 body on Body-29: the widened weights (``widen_joint_state``)."""

from __future__ import annotations

import pytest
import torch

from meshgraph.bodies import BODY29, COCO
from meshgraph.generators import icosphere
from meshgraph.models import Pose2Mesh, Pose2MeshConfig
from meshgraph.training.pipeline import warm_start, widen_joint_state

# the joint each Body-29 extra hangs from, written out by name
PARENT = {
    "left_heel": "left_ankle", "right_heel": "right_ankle",
    "left_big_toe": "left_ankle", "right_big_toe": "right_ankle",
    "left_index": "left_wrist", "right_index": "right_wrist",
    "left_pinky": "left_wrist", "right_pinky": "right_wrist",
    "left_thumb": "left_wrist", "right_thumb": "right_wrist",
}  # fmt: skip


def _model(joint_set: str, seed: int) -> Pose2Mesh:
    mesh = icosphere(2)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set=joint_set, mesh_joint_set="h36m", num_levels=3,
                          posenet_width=32, coarse_channels=8, decoder_channels=(8, 8, 8),
                          visibility_input=True)  # fmt: skip
    torch.manual_seed(seed)
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).eval()


def test_widened_weights_keep_the_old_joints_and_start_the_new_at_their_parents(tmp_path):
    coco = _model("coco", 1)
    path = coco.save(tmp_path / "coco.pt")
    wide = _model("body29", 2)
    record = warm_start(wide, path)
    assert record["widened_from"] == "coco"
    old, new = coco.state_dict(), wide.state_dict()
    for key, value in old.items():
        if new[key].shape == value.shape:
            torch.testing.assert_close(new[key], value, rtol=0, atol=0, msg=key)
    # PoseNet's input: 3 numbers per joint (x, y, visible), joint-major
    w_in = new["posenet.inp.weight"]
    torch.testing.assert_close(w_in[:, : 19 * 3], old["posenet.inp.weight"], rtol=0, atol=0)
    assert not w_in[:, 19 * 3 :].any()
    # PoseNet's output: 3 coordinates per joint; a new joint copies its parent's rows
    w_out, b_out = new["posenet.out.weight"], new["posenet.out.bias"]
    torch.testing.assert_close(w_out[: 19 * 3], old["posenet.out.weight"], rtol=0, atol=0)
    for j, name in enumerate(BODY29.names[19:], start=19):
        p = COCO.index(PARENT[name])
        torch.testing.assert_close(
            w_out[3 * j : 3 * j + 3], old["posenet.out.weight"][3 * p : 3 * p + 3]
        )
        torch.testing.assert_close(
            b_out[3 * j : 3 * j + 3], old["posenet.out.bias"][3 * p : 3 * p + 3]
        )
    # MeshNet's lift: per joint a block of features, the new joints' blocks zero
    fc_old, fc_new = old["meshnet.fc.weight"], new["meshnet.fc.weight"]
    per = fc_old.shape[1] // 19
    assert fc_new.shape[1] == 29 * per
    torch.testing.assert_close(fc_new[:, : 19 * per], fc_old, rtol=0, atol=0)
    assert not fc_new[:, 19 * per :].any()


def test_widened_posenet_answers_as_before_when_the_new_joints_are_missing(tmp_path):
    coco = _model("coco", 3)
    wide = _model("body29", 4)
    warm_start(wide, coco.save(tmp_path / "coco.pt"))
    kp = torch.randn(5, 29, 2)
    visible = torch.ones(5, 29, dtype=torch.bool)
    visible[:, 19:] = False
    with torch.no_grad():
        before = coco.posenet(coco.network_input(kp[:, :19], visible[:, :19]))
        after = wide.posenet(wide.network_input(kp, visible))
    torch.testing.assert_close(after[:, :19], before, rtol=1e-5, atol=1e-6)
    parents = [COCO.index(PARENT[n]) for n in BODY29.names[19:]]
    torch.testing.assert_close(after[:, 19:], before[:, parents], rtol=1e-5, atol=1e-6)


def test_widening_refuses_joint_sets_that_do_not_extend(tmp_path):
    coco = _model("coco", 5)
    path = coco.save(tmp_path / "coco.pt")
    with pytest.raises(ValueError, match=r"differs from the run's in joint_set"):
        warm_start(_model("h36m", 6), path)
    with pytest.raises(ValueError, match=r"does not extend"):
        widen_joint_state(_model("body29", 7).state_dict(), coco, "body29")
    wide = _model("body29", 8)
    # a narrower source the other way round is not a widening either
    with pytest.raises(ValueError, match=r"differs from the run's in joint_set"):
        warm_start(coco, wide.save(tmp_path / "wide.pt"))
