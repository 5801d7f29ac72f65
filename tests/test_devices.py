"""The library on the test device (``pytest --device cuda``), against float64 CPU references.

On the CPU these run as they are; on a GPU they check that every layer, loss, metric, the model,
its training step, ``predict`` and save/load across devices work there and agree with the CPU.
"""

from __future__ import annotations

import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.losses import (
    edge_length_loss,
    normal_and_edge_losses,
    normal_vector_loss,
    vertex_loss,
)
from meshgraph.metrics import f_score, mpjpe, mpvpe, pa_mpjpe, pck
from meshgraph.models import Pose2Mesh, Pose2MeshConfig
from meshgraph.nn import ChebBlock, MeshChebConv, MeshDecoder, MeshEncoder, MeshPool, MeshUnpool

TOL = {"rtol": 1e-4, "atol": 1e-5}  # float32 on the device against float64 on the CPU


def _model() -> Pose2Mesh:
    mesh = icosphere(2)
    torch.manual_seed(0)
    reg = torch.rand(17, mesh.num_vertices)
    cfg = Pose2MeshConfig(joint_set="h36m", num_levels=3, posenet_width=32, coarse_channels=8,
                          decoder_channels=(8, 8, 8))  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True))


def _forward_backward(module: torch.nn.Module, x: torch.Tensor, device: torch.device):
    """Outputs and input/parameter gradients of ``module`` at ``x`` on ``device``."""
    m = module.to(device)
    xi = x.detach().to(device).clone().requires_grad_(True)
    out = m(xi)
    g = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=device).view(out.shape)
    (out * g).sum().backward()
    grads = [p.grad.detach().double().cpu() for p in m.parameters()]
    for p in m.parameters():
        p.grad = None
    return out.detach().double().cpu(), xi.grad.double().cpu(), grads


@pytest.mark.parametrize(
    "make",
    [
        lambda h: MeshChebConv(4, 6, 3, h.topologies[0]),
        lambda h: ChebBlock(4, 6, 3, h.topologies[0]),
        lambda h: torch.nn.Sequential(MeshEncoder(h, 4, [6, 8]), MeshDecoder(h, 8, [6, 6, 8])),
    ],
    ids=["conv", "block", "encoder-decoder"],
)
def test_layers_on_the_device_match_the_cpu(make, device):
    h = MeshHierarchy.build(icosphere(2), 3)
    torch.manual_seed(0)
    module = make(h).double().eval()
    x = torch.randn(3, h.sizes[0], 4, dtype=torch.float64)
    ref = _forward_backward(module, x, torch.device("cpu"))
    got = _forward_backward(module.float(), x.float(), device)
    for a, b in zip(got[:2] + tuple(got[2]), ref[:2] + tuple(ref[2]), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_pool_unpool_on_the_device(layout, device):
    h = MeshHierarchy.build(icosphere(2), 3, layout=layout)
    x = torch.randn(2, h.sizes[0], 5)
    pool, unpool = MeshPool(h, 0), MeshUnpool(h, 1)
    ref = unpool(pool(x))
    got = unpool.to(device)(pool.to(device)(x.to(device)))
    assert got.device.type == device.type
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=0)


def test_losses_and_metrics_on_the_device(device):
    mesh = icosphere(1)
    torch.manual_seed(0)
    p, t = torch.rand(2, mesh.num_vertices, 3), torch.rand(2, mesh.num_vertices, 3)
    pd, td, mesh_d = p.to(device), t.to(device), mesh.to(device)
    torch.testing.assert_close(vertex_loss(pd, td).cpu(), vertex_loss(p, t), **TOL)
    for loss in (normal_vector_loss, edge_length_loss):
        torch.testing.assert_close(loss(pd, td, mesh_d).cpu(), loss(p, t, mesh), **TOL)
        torch.testing.assert_close(loss(pd, td, mesh.faces).cpu(), loss(p, t, mesh), **TOL)
    metrics = (mpjpe, pa_mpjpe, mpvpe, lambda a, b: pck(a, b, 0.3), lambda a, b: f_score(a, b, 0.2))
    for metric in metrics:
        ref = metric(p.double(), t.double()).float()
        torch.testing.assert_close(metric(pd, td).cpu(), ref, **TOL)
    # both surface terms at once, and their gradient
    pd.requires_grad_(True)
    n, e = normal_and_edge_losses(pd, td, mesh_d)
    (n + e).backward()
    p.requires_grad_(True)
    (normal_vector_loss(p, t, mesh) + edge_length_loss(p, t, mesh)).backward()
    torch.testing.assert_close(pd.grad.cpu(), p.grad, **TOL)


def test_pose2mesh_forward_backward_predict_and_save_across_devices(device, tmp_path):
    model = _model().double().eval()
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(4, 17, 2, generator=g, dtype=torch.float64)
    ref = model(kp)["vertices"]
    dev_model = _model().eval()
    dev_model.load_state_dict(model.float().state_dict())
    dev_model.to(device)
    out = dev_model(kp.float().to(device))
    assert out["vertices"].device.type == device.type
    torch.testing.assert_close(out["vertices"].double().cpu(), ref, **TOL)
    out["vertices"].square().mean().backward()
    assert all(p.grad is not None and p.grad.device.type == device.type
               for p in dev_model.meshnet.parameters())  # fmt: skip
    pixels = 300 + 80 * torch.randn(17, 2, generator=g, dtype=torch.float64)
    pred = dev_model.predict(pixels)
    # saved on the device, loaded on the CPU (and back): the same prediction
    dev_model.save(tmp_path / "m.pt")
    on_cpu = Pose2Mesh.load(tmp_path / "m.pt", map_location="cpu")
    assert next(on_cpu.parameters()).device.type == "cpu"
    torch.testing.assert_close(on_cpu.predict(pixels).vertices, pred.vertices.cpu(), **TOL)
    on_cpu.save(tmp_path / "c.pt")
    back = Pose2Mesh.load(tmp_path / "c.pt", map_location=device)
    assert next(back.parameters()).device.type == device.type


def test_a_module_and_its_input_on_different_devices_are_named():
    """The 'meta' device stands in for a second device on any machine."""
    mesh = icosphere(1)
    conv = MeshChebConv(3, 4, 2, mesh)
    with pytest.raises(ValueError, match=r"x is on meta but the MeshChebConv is on cpu"):
        conv(torch.empty(2, mesh.num_vertices, 3, device="meta"))
    h = MeshHierarchy.build(mesh, 2)
    with pytest.raises(ValueError, match=r"x is on meta but the MeshPool is on cpu"):
        MeshPool(h, 0)(torch.empty(2, h.sizes[0], 3, device="meta"))
    with pytest.raises(ValueError, match=r"x is on meta but the MeshUnpool is on cpu"):
        MeshUnpool(h, 1)(torch.empty(2, h.sizes[1], 3, device="meta"))
    with pytest.raises(
        ValueError, match=r"keypoints_2d is on meta but the Pose2Mesh model is on cpu"
    ):
        _model()(torch.empty(2, 17, 2, device="meta"))
    with pytest.raises(ValueError, match=r"pred is on meta but the target is on cpu"):
        vertex_loss(torch.empty(1, 3, 3, device="meta"), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"pred is on meta but target on cpu"):
        mpjpe(torch.empty(1, 3, 3, device="meta"), torch.zeros(1, 3, 3))


def test_a_few_training_steps_on_the_device(device, tmp_path):
    pytest.importorskip("anny")
    from meshgraph.bodies import AnnyModel
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.training import TrainConfig, Trainer

    hand = AnnyModel("hand.R", regressor_cache_dir=tmp_path / "reg")
    data = SyntheticPoseMeshDataset(hand, 1000, joint_set="hand", seed=1)
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8)  # fmt: skip
    cfg = TrainConfig(posenet_epochs=1, epochs=1, samples_per_epoch=32, batch_size=16)
    hist = Trainer(model, data, cfg, tmp_path / "run", device=device, progress=False).fit()
    assert len(hist) == 2 and all(torch.isfinite(torch.tensor(r["loss_total"])) for r in hist)
    assert next(model.parameters()).device.type == device.type
    assert Pose2Mesh.load(tmp_path / "run" / "model.pt").config.body == "anny-hand.R"


def test_synthetic_data_made_on_the_device_equals_the_cpu(device, anny_hand):
    """Counter-based random numbers: the same samples on every device, up to float rounding."""
    from meshgraph.data import SyntheticPoseMeshDataset

    cpu = SyntheticPoseMeshDataset(anny_hand, 100, joint_set="hand", seed=3)
    on_dev = SyntheticPoseMeshDataset(anny_hand, 100, joint_set="hand", seed=3, device=device)
    a = cpu.__getitems__([0, 7, 99])
    b = on_dev.__getitems__([0, 7, 99])
    assert set(a) == set(b)
    for k in a:
        assert b[k].device.type == device.type, k
        torch.testing.assert_close(b[k].cpu(), a[k], rtol=1e-4, atol=1e-4, msg=k)
    anny_hand.to("cpu")  # the session's model stays on the CPU for the other tests


def test_cli_predict_runs_the_model_on_the_device(device, tmp_path, capsys):
    """``meshgraph predict --device``: the same mesh files as on the CPU, from a float64 copy."""
    import json

    import numpy as np

    from meshgraph.cli import main
    from meshgraph.io import load_mesh

    model = _model().eval()
    model.save(tmp_path / "m.pt")
    g = torch.Generator().manual_seed(1)
    kp = torch.cat([300 + 80 * torch.randn(2, 17, 2, generator=g), torch.ones(2, 17, 1)], -1)
    np.save(tmp_path / "kp.npy", kp.numpy())
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "m.pt"), str(tmp_path / "kp.npy"), "--out", str(out)]
    assert main([*args, "--device", str(device)]) == 0
    ref = model.double().predict(kp.double())  # the CPU reference, in float64
    for b in range(2):
        verts, faces = load_mesh(out / f"mesh_{b:03d}.obj")
        np.testing.assert_allclose(verts, ref.vertices[b].numpy(), atol=1e-5)
        np.testing.assert_array_equal(faces, model.faces.numpy())
    camera = json.loads((out / "camera.json").read_text())["weak_perspective"]
    np.testing.assert_allclose(camera, ref.camera.numpy(), rtol=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_predict_refuses_a_device_this_machine_lacks(tmp_path, capsys):
    from meshgraph.cli import main

    assert main(["predict", str(tmp_path / "kp.npy"), "--device", "cuda"]) == 2
    assert "--device cuda: device 'cuda': CUDA is not available" in capsys.readouterr().err
