"""The dataset protocol: any dataset with the documented keys trains and evaluates."""

from __future__ import annotations

import pytest
import torch

from meshgraph.bodies import get_joint_set
from meshgraph.data import SAMPLE_KEYS, PoseMeshDataset, SyntheticPoseMeshDataset, check_sample
from meshgraph.data.protocol import REQUIRED_KEYS, stack_samples
from meshgraph.models import Pose2Mesh
from meshgraph.training.evaluate import evaluate, mean_mesh


class ListDataset:
    """A dataset of one's own: plain samples in a list, no synthetic machinery."""

    def __init__(self, samples, joint_set):
        self.samples, self.joint_set = samples, get_joint_set(joint_set)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


@pytest.fixture(scope="module")
def hand_data(anny_hand):
    synthetic = SyntheticPoseMeshDataset(anny_hand, 24, joint_set="hand", seed=5, progress=False)
    batch = synthetic.__getitems__(list(range(24)))
    keys = ("keypoints_2d", "visible", "joints_3d", "mesh_joints_3d", "vertices")
    own = ListDataset([{k: batch[k][i] for k in keys} for i in range(24)], "hand")
    return synthetic, own


def test_the_synthetic_set_and_a_list_follow_the_protocol(hand_data, anny_hand):
    synthetic, own = hand_data
    for data in (synthetic, own):
        assert isinstance(data, PoseMeshDataset)
        check_sample(data[0], data.joint_set, get_joint_set("hand"), anny_hand.num_vertices)
    assert set(REQUIRED_KEYS) <= set(SAMPLE_KEYS)
    batch = stack_samples(own, [0, 3])
    torch.testing.assert_close(
        batch["vertices"], torch.stack([own[0]["vertices"], own[3]["vertices"]])
    )


def test_evaluate_takes_any_dataset_with_the_keys(hand_data, anny_hand):
    synthetic, own = hand_data
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand", num_levels=3,
                                posenet_width=32)  # fmt: skip
    a = evaluate(model, synthetic, batch_size=10)
    b = evaluate(model, own, batch_size=10)
    assert set(a) == set(b) and "f5" in b  # a hand model: F-scores without dataset.is_hand
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-6), k
    torch.testing.assert_close(
        mean_mesh(own, 24),
        torch.stack([s["vertices"] for s in own.samples]).double().mean(0).float(),
    )


def test_check_sample_names_the_problem():
    js, mjs = get_joint_set("coco"), get_joint_set("h36m")
    good = {"keypoints_2d": torch.zeros(19, 2), "joints_3d": torch.zeros(19, 3),
            "mesh_joints_3d": torch.zeros(17, 3), "vertices": torch.zeros(10, 3)}  # fmt: skip
    check_sample(good, js, mjs, 10)
    check_sample({k: v.expand(4, *v.shape) for k, v in good.items()}, js, mjs, 10)  # a batch
    with pytest.raises(KeyError, match=r"no \['vertices'\]"):
        check_sample({k: v for k, v in good.items() if k != "vertices"}, js)
    with pytest.raises(ValueError, match=r"sample\['keypoints_2d'\] must have shape \(J, 2\)"):
        check_sample({**good, "keypoints_2d": torch.zeros(17, 2)}, js)
    with pytest.raises(ValueError, match=r"V = 12"):
        check_sample(good, js, mjs, 12)
    with pytest.raises(ValueError, match="NaN"):
        check_sample({**good, "vertices": torch.full((10, 3), float("nan"))}, js)
    with pytest.raises(TypeError, match="bool"):
        check_sample({**good, "visible": torch.ones(19)}, js)
    with pytest.raises(TypeError, match="floating"):
        check_sample({**good, "joints_3d": torch.zeros(19, 3, dtype=torch.int64)}, js)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        check_sample({**good, "vertices": [[0.0, 0.0, 0.0]]}, js)


def test_the_trainer_trains_on_a_dataset_of_ones_own(hand_data, anny_hand, tmp_path):
    from meshgraph.training import TrainConfig, Trainer

    _, own = hand_data
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand", num_levels=3,
                                posenet_width=32)  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(posenet_epochs=1, epochs=1, samples_per_epoch=16, batch_size=8,
                      edge_loss_start=1)  # fmt: skip
    trainer = Trainer(model, own, cfg, tmp_path, progress=False)
    trainer.fit()
    assert trainer.step == 4
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if "posenet" in k)
    assert any(not torch.equal(before[k], after[k]) for k in before if "meshnet" in k)
