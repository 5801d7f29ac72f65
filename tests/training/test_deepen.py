"""Fine-tuning into a deeper PoseNet (``--posenet-blocks``): ``deepen_posenet_state``."""

from __future__ import annotations

import pytest
import torch

from meshgraph.generators import icosphere
from meshgraph.models import Pose2Mesh, Pose2MeshConfig
from meshgraph.training.pipeline import deepen_posenet_state, warm_start


def _model(blocks: int, seed: int, width: int = 32) -> Pose2Mesh:
    mesh = icosphere(2)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set="h36m", mesh_joint_set="h36m", num_levels=3,
                          posenet_width=width, posenet_blocks=blocks, coarse_channels=8,
                          decoder_channels=(8, 8, 8), visibility_input=True)  # fmt: skip
    torch.manual_seed(seed)
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True))


def _train_a_little(model: Pose2Mesh) -> None:
    """Move every PoseNet weight and BatchNorm statistic away from its initial value."""
    opt = torch.optim.SGD(model.posenet.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(9)
    for _ in range(5):
        kp = torch.randn(16, 17, 3, generator=g)
        loss = (model.posenet(kp) - 0.3).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_deeper_posenet_keeps_the_trained_blocks_and_answers_exactly_as_before(tmp_path):
    shallow = _model(2, 1).train()
    _train_a_little(shallow)
    shallow.eval()
    deep = _model(4, 2)
    fresh = {k: v.clone() for k, v in deep.state_dict().items()}
    record = warm_start(deep, shallow.save(tmp_path / "shallow.pt"))
    assert record["deepened_from"] == 2
    old, new = shallow.state_dict(), deep.state_dict()
    for key, value in old.items():  # every trained tensor as it was, blocks 0 and 1 included
        torch.testing.assert_close(new[key], value, rtol=0, atol=0, msg=key)
    for i in (2, 3):
        # the new blocks: the run's own initial weights, but their last Linear zero
        block = {k: v for k, v in new.items() if k.startswith(f"posenet.blocks.{i}.")}
        assert set(block) == {k for k in fresh if k.startswith(f"posenet.blocks.{i}.")}
        for key, value in block.items():
            if ".layers.7." in key:
                assert not value.any(), key
            else:
                torch.testing.assert_close(value, fresh[key], rtol=0, atol=0, msg=key)
        assert block[f"posenet.blocks.{i}.layers.3.weight"].abs().sum() > 0
    deep.eval()
    kp = torch.randn(6, 17, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(deep.posenet(kp), shallow.posenet(kp), rtol=0, atol=0)
    # in training mode the new blocks' first layers do get gradients after one step
    deep.train()
    opt = torch.optim.SGD(deep.posenet.parameters(), lr=0.1)
    for _ in range(2):
        loss = deep.posenet(kp).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert deep.posenet.blocks[3].layers[7].weight.abs().sum() > 0
    assert deep.posenet.blocks[3].layers[3].weight.grad.abs().sum() > 0


def test_deepening_refuses_a_shallower_run_and_a_state_of_other_depth(tmp_path):
    deep = _model(3, 5)
    path = deep.save(tmp_path / "deep.pt")
    with pytest.raises(
        ValueError, match=r"differs from the run's in posenet_blocks: 3 \(the run: 2\)"
    ):
        warm_start(_model(2, 6), path)
    with pytest.raises(ValueError, match="must be deeper"):
        deepen_posenet_state(deep.state_dict(), _model(3, 7), 3)
    with pytest.raises(ValueError, match=r"has PoseNet blocks \[0, 1, 2\], expected 0 to 1"):
        deepen_posenet_state(deep.state_dict(), _model(4, 8), 2)
    # other differences than the depth are still refused
    with pytest.raises(ValueError, match=r"differs from the run's in posenet_width"):
        warm_start(_model(4, 9, width=16), path)


def test_old_files_without_the_field_load_with_two_blocks(tmp_path):
    model = _model(2, 10)
    path = model.save(tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["posenet_blocks"]
    torch.save(ckpt, path)
    loaded = Pose2Mesh.load(path)
    assert loaded.config.posenet_blocks == 2 and len(loaded.posenet.blocks) == 2
    deep = _model(3, 11)
    assert warm_start(deep, path)["deepened_from"] == 2
