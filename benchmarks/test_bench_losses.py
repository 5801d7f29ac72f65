"""Pose2Mesh's surface losses (normal vector + edge length), forward and backward.

Three ways to the same two numbers, side by side in one group per mesh and batch:

* ``gather``: a plain formulation, written here as the reference: face vertices by advanced
  indexing of ``(B, V, 3)``, ``torch.linalg.cross`` and ``torch.linalg.norm`` over the last
  axis (what a hand-rolled implementation does);
* ``separate``: :func:`~meshgraph.losses.normal_vector_loss` plus
  :func:`~meshgraph.losses.edge_length_loss`;
* ``combined``: :func:`~meshgraph.losses.normal_and_edge_losses` (one pass for both).

The prediction is vertex-major, as a mesh decoder returns it. ``body-quick`` is Anny's
1,229-vertex body (what ``examples/pose2mesh_body.py`` trains on); ``body`` the full mesh.
"""

from __future__ import annotations

import functools

import pytest
import torch

from benchmarks._common import bench_mesh, mesh_source, sync
from meshgraph._optional import WITH_ANNY
from meshgraph.losses import edge_length_loss, normal_and_edge_losses, normal_vector_loss
from meshgraph.mesh import MeshTopology


@functools.cache
def _mesh(name: str) -> MeshTopology:
    if name == "body-quick":
        if not WITH_ANNY:
            pytest.skip("anny is not installed")
        import anny

        model = anny.Anny(topology="notoes_collapse10pc")
        return MeshTopology(model.faces, num_vertices=model.template_vertices.shape[0])
    return bench_mesh(name)


def _gather(pred: torch.Tensor, target: torch.Tensor, faces: torch.Tensor, eps: float = 1e-8):
    i, j = faces[:, [0, 0, 1]], faces[:, [1, 2, 2]]
    edges, tedges = pred[:, j] - pred[:, i], target[:, j] - target[:, i]  # (B, F, 3, 3)
    n = torch.linalg.cross(tedges[:, :, 0], tedges[:, :, 1], dim=-1)
    n = n / torch.linalg.norm(n, dim=-1, keepdim=True).clamp_min(eps)
    length = torch.linalg.norm(edges, dim=-1)
    cos = (edges * n[:, :, None]).sum(-1) / length.clamp_min(eps)
    return cos.abs().mean(), (length - torch.linalg.norm(tedges, dim=-1)).abs().mean()


def _separate(pred, target, faces):
    return normal_vector_loss(pred, target, faces), edge_length_loss(pred, target, faces)


IMPLS = {"gather": _gather, "separate": _separate, "combined": normal_and_edge_losses}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("batch", [64])
@pytest.mark.parametrize("mesh_name", ["body-quick", "body"])
def test_surface_losses(benchmark, mesh_name, batch, impl, device):
    """Both terms (weights 0.1 and 20, as in training), forward + backward for the prediction."""
    mesh = _mesh(mesh_name)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(batch, mesh.num_vertices, 3, generator=gen)
    pred = target + 0.05 * torch.randn(target.shape, generator=gen)
    target = target.to(dev)
    pred = pred.to(dev).transpose(0, 1).contiguous().transpose(0, 1).requires_grad_(True)
    faces = mesh.faces.to(dev)
    fn = IMPLS[impl]

    def step() -> None:
        normal, edge = fn(pred, target, faces)
        (0.1 * normal + 20.0 * edge).backward()
        pred.grad = None
        sync(dev)

    source = (
        mesh_source("body")
        if mesh_name == "body"
        else f"anny-body-quick ({mesh.num_vertices} vertices)"
    )
    benchmark.group = f"surface-losses-{mesh_name}-B{batch}-{device}"
    benchmark.extra_info.update(mesh=source, faces=int(mesh.faces.shape[0]))
    benchmark.pedantic(step, warmup_rounds=1, rounds=7, iterations=1)
