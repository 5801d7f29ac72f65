"""Spiral sequences and SpiralConv: hand-worked cases, graph distances, naive loops, gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.csgraph as csgraph
import torch

from meshgraph import GraphTopology, MeshChebConv, MeshTopology, SpiralConv
from meshgraph.generators import grid_mesh, icosphere_vertices_faces

# a fan of four triangles around vertex 0 (an open square pyramid seen from above)
FAN = [[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]]


def _ico(level: int = 2) -> MeshTopology:
    return MeshTopology(icosphere_vertices_faces(level)[1])


# ------------------------------------------------------------------ spiral sequences
def test_spirals_hand_worked_fan() -> None:
    mesh = MeshTopology(FAN)
    # around the centre in the faces' winding, from the smallest neighbour
    assert mesh.neighbour_order()[0] == [1, 2, 3, 4]
    # vertex 1 lies on the rim: faces (0, 1, 2) and (0, 4, 1) seen from 1 give 2 -> 0 -> 4
    assert mesh.neighbour_order()[1] == [2, 0, 4]
    s = mesh.spiral_indices(5).tolist()
    assert s[0] == [0, 1, 2, 3, 4]
    # ring 2 of vertex 1: vertex 3, reached from 2 (after its neighbour 1, already listed)
    assert s[1] == [1, 2, 0, 4, 3]


def test_spirals_reversed_winding_turn_the_other_way() -> None:
    mesh = MeshTopology([[a, c, b] for a, b, c in FAN])
    assert mesh.neighbour_order()[0] == [1, 4, 3, 2]


def test_spirals_of_a_weighted_graph_follow_the_heaviest_edges() -> None:
    w = np.zeros((4, 4))
    for i, j, weight in ((0, 1, 1.0), (0, 2, 3.0), (0, 3, 2.0), (1, 2, 1.0)):
        w[i, j] = w[j, i] = weight
    w[0, 0] = 5.0  # a self-loop is not a neighbour
    g = GraphTopology(w)
    assert g.neighbour_order()[0] == [2, 3, 1]
    assert g.spiral_indices(4).tolist()[0] == [0, 2, 3, 1]
    # vertex 3: its only neighbour 0, then 0's other neighbours in 0's order from after 3
    assert g.spiral_indices(4).tolist()[3] == [3, 0, 1, 2]


@pytest.mark.parametrize("topology", [_ico(2), grid_mesh(6, 5)], ids=["icosphere", "grid"])
def test_spirals_list_rings_in_order_of_graph_distance(topology: MeshTopology) -> None:
    n = topology.num_vertices
    dist = csgraph.shortest_path(topology.adjacency, unweighted=True)
    degree = np.asarray((topology.adjacency != 0).sum(1)).ravel()
    length = 19
    spirals = topology.spiral_indices(length).numpy()
    assert spirals.shape == (n, length) and spirals.dtype == np.int64
    for v in range(n):
        s = spirals[v]
        assert s[0] == v
        assert len(set(s.tolist())) == length  # no repeats on meshes this large
        d = dist[v, s]
        assert np.all(np.diff(d) >= 0), (v, d)  # ring by ring
        # the 1-ring is exactly the neighbours
        assert set(s[1 : 1 + degree[v]].tolist()) == set(np.flatnonzero(dist[v] == 1))


def test_closed_mesh_one_rings_turn_with_the_faces() -> None:
    mesh = _ico(2)
    oriented = set()
    for a, b, c in mesh.faces.tolist():
        oriented |= {(a, b, c), (b, c, a), (c, a, b)}
    for v, ring in enumerate(mesh.neighbour_order()):
        pairs = zip(ring, ring[1:] + ring[:1], strict=True)  # closed fan: cyclic
        assert all((v, x, y) in oriented for x, y in pairs), v


def test_dilated_spirals_keep_every_dth_entry() -> None:
    mesh = _ico(2)
    long = mesh.spiral_indices(24)
    assert torch.equal(mesh.spiral_indices(8, dilation=3), long[:, ::3])


def test_small_components_repeat_the_centre() -> None:
    mesh = MeshTopology([[0, 1, 2]], num_vertices=4)  # vertex 3 is isolated
    s = mesh.spiral_indices(5).tolist()
    assert s[3] == [3, 3, 3, 3, 3]
    assert s[0] == [0, 1, 2, 0, 0]


def test_spirals_are_cached_and_follow_the_device() -> None:
    mesh = _ico(1)
    first = mesh.spiral_indices(9)
    assert mesh.spiral_indices(9) is first
    moved = mesh.to("cpu")
    assert torch.equal(moved.spiral_indices(9), first)


@pytest.mark.parametrize("bad", [0, -1, True, 2.0])
def test_spiral_length_is_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="length"):
        _ico(1).spiral_indices(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dilation"):
        _ico(1).spiral_indices(3, dilation=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the layer
def _naive(x: torch.Tensor, spirals: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    """Plain loops over samples, vertices, spiral entries and channels."""
    bsz, v, c = x.shape
    out = torch.zeros(bsz, v, w.shape[0], dtype=torch.float64)
    for i in range(bsz):
        for vertex in range(v):
            for o in range(w.shape[0]):
                acc = 0.0 if b is None else float(b[o])
                for step, u in enumerate(spirals[vertex].tolist()):
                    for ch in range(c):
                        acc += float(x[i, u, ch]) * float(w[o, step * c + ch])
                out[i, vertex, o] = acc
    return out


def test_spiral_conv_matches_a_naive_loop() -> None:
    torch.manual_seed(0)
    mesh = MeshTopology(FAN)
    conv = SpiralConv(3, 2, mesh, length=4).double()
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    ref = _naive(x, mesh.spiral_indices(4), conv.weight.detach(), conv.bias.detach())
    torch.testing.assert_close(conv(x), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(conv(x[1]), ref[1], rtol=0, atol=1e-12)


def _gather_linear(conv: SpiralConv, x: torch.Tensor) -> torch.Tensor:
    """SpiralNet++'s formulation: gather the spirals, flatten, then a linear layer."""
    b, v, _ = x.shape
    g = x[:, conv.indices.reshape(-1)].reshape(b, v, -1)
    return torch.nn.functional.linear(g, conv.weight, conv.bias)


@pytest.mark.parametrize("layout", ["contiguous", "vertex_major", "strided"])
def test_spiral_conv_matches_gather_and_linear_in_every_layout(layout: str) -> None:
    torch.manual_seed(1)
    mesh = _ico(2)
    conv = SpiralConv(6, 5, mesh, length=9, dilation=2).double()
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(3, mesh.num_vertices, 6, dtype=torch.float64)
    if layout == "vertex_major":  # what MeshChebConv and the blocks hand on
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    elif layout == "strided":
        x = torch.randn(3, mesh.num_vertices, 12, dtype=torch.float64)[..., ::2]
    x.requires_grad_(True)
    out = conv(x)
    ref_x = x.detach().clone().requires_grad_(True)
    ref = _gather_linear(conv, ref_x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(out, (x, conv.weight, conv.bias), g)
    ref_grads = torch.autograd.grad(ref, (ref_x, conv.weight, conv.bias), g)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_spiral_conv_output_is_vertex_major_and_chains_with_chebconv() -> None:
    mesh = _ico(1)
    x = torch.randn(4, mesh.num_vertices, 3)
    y = SpiralConv(3, 8, mesh)(MeshChebConv(3, 3, 2, mesh)(x))
    assert y.shape == (4, mesh.num_vertices, 8)
    assert y.transpose(0, 1).is_contiguous()


def test_spiral_conv_gradcheck_in_both_layouts() -> None:
    torch.manual_seed(2)
    conv = SpiralConv(2, 3, MeshTopology(FAN), length=5).double()
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    xt = torch.randn(5, 2, 2, dtype=torch.float64).transpose(0, 1).requires_grad_(True)
    for inp in (x, xt, x[0].detach().requires_grad_(True)):
        assert torch.autograd.gradcheck(conv, (inp,))


def test_spiral_conv_weight_and_bias_gradcheck() -> None:
    torch.manual_seed(3)
    mesh = MeshTopology(FAN)
    idx = mesh.spiral_indices(4)
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    from meshgraph.nn.spiral_conv import _SpiralFunction, _vertex_rows

    def f(inp: torch.Tensor, ww: torch.Tensor, bb: torch.Tensor) -> torch.Tensor:
        return _SpiralFunction.apply(_vertex_rows(inp), idx, ww, bb, 2)

    assert torch.autograd.gradcheck(f, (x, w, b))


def test_spiral_conv_repr_init_and_reset() -> None:
    mesh = _ico(1)
    conv = SpiralConv(4, 6, mesh, length=7, dilation=2)
    assert repr(conv) == "SpiralConv(4, 6, length=7, dilation=2, num_vertices=42)"
    assert conv.weight.shape == (6, 28) and conv.bias is not None
    bound = math.sqrt(6.0 / (28 + 6))  # Xavier-uniform
    assert conv.weight.abs().max() <= bound and conv.weight.std() > bound / 4
    assert torch.count_nonzero(conv.bias) == 0
    before = conv.weight.detach().clone()
    torch.nn.init.ones_(conv.bias)
    conv.reset_parameters()
    assert not torch.equal(before, conv.weight) and torch.count_nonzero(conv.bias) == 0
    assert SpiralConv(4, 6, mesh, bias=False).bias is None
    assert not any(k == "indices" for k in conv.state_dict())  # rebuilt from the topology


def test_spiral_conv_with_indices_of_your_own() -> None:
    mesh = MeshTopology(FAN)
    idx = torch.tensor([[0, 1], [1, 0], [2, 0], [3, 0], [4, 0]])
    conv = SpiralConv(3, 2, indices=idx).double()
    x = torch.randn(1, 5, 3, dtype=torch.float64)
    ref = _naive(x, idx, conv.weight.detach(), conv.bias.detach())
    torch.testing.assert_close(conv(x), ref, rtol=0, atol=1e-12)
    assert conv.length == 2
    with pytest.raises(ValueError, match="exactly one"):
        SpiralConv(3, 2)
    with pytest.raises(ValueError, match="exactly one"):
        SpiralConv(3, 2, mesh, indices=idx)
    with pytest.raises(ValueError, match="lie in"):
        SpiralConv(3, 2, indices=idx + 1)
    with pytest.raises(ValueError, match="integer"):
        SpiralConv(3, 2, indices=idx.float())


def test_spiral_conv_refuses_bad_input() -> None:
    conv = SpiralConv(3, 2, MeshTopology(FAN), length=3)
    with pytest.raises(ValueError, match=r"\(B, 5, 3\)"):
        conv(torch.randn(2, 6, 3))
    with pytest.raises(ValueError, match=r"\(B, 5, 3\)"):
        conv(torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match="floating"):
        conv(torch.ones(2, 5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="Tensor"):
        conv(np.ones((2, 5, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_channels"):
        SpiralConv(0, 2, MeshTopology(FAN))


def test_spiral_conv_computes_in_the_input_dtype() -> None:
    mesh = _ico(1)
    conv = SpiralConv(3, 4, mesh)
    x = torch.randn(2, mesh.num_vertices, 3, dtype=torch.float64)
    out = conv(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _gather_linear(conv.double(), x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 50, 1000])
def test_spiral_conv_in_vertex_chunks(monkeypatch, chunk: int) -> None:
    """Chunks of one vertex, a few, many: the same values and gradients as one gather."""
    import meshgraph.nn.spiral_conv as module

    monkeypatch.setattr(module, "GATHER_CHUNK_NUMBERS", chunk)
    expected = {1: 42, 50: 42, 1000: 3}[chunk]  # 54 numbers per vertex: 18 vertices a chunk
    assert len(module._chunks(42, 9 * 2 * 3)) == expected
    torch.manual_seed(4)
    mesh = _ico(1)
    conv = SpiralConv(3, 4, mesh).double()
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, mesh.num_vertices, 3, dtype=torch.float64, requires_grad=True)
    ref_x = x.detach().clone().requires_grad_(True)
    out, ref = conv(x), _gather_linear(conv, ref_x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(out, (x, conv.weight, conv.bias), g),
        torch.autograd.grad(ref, (ref_x, conv.weight, conv.bias), g),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)
