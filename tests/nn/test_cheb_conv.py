from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.nn import ChebConv

from meshgraph import MeshHierarchy
from meshgraph._optional import WITH_TORCH_SPARSE
from meshgraph.generators import grid_mesh, icosphere, torus_mesh
from meshgraph.mesh import GraphTopology
from meshgraph.nn import MeshChebConv
from meshgraph.nn.cheb_conv import _projects_first
from tests.helpers import dense_cheb_conv

BACKENDS = [
    "sparse",
    "dense",
    pytest.param(
        "torch_sparse",
        marks=pytest.mark.skipif(not WITH_TORCH_SPARSE, reason="torch_sparse not installed"),
    ),
]


def _pyg_twin(conv: MeshChebConv) -> ChebConv:
    pyg = ChebConv(conv.in_channels, conv.out_channels, conv.K, normalization="sym")
    pyg = pyg.to(conv.weight.dtype)
    with torch.no_grad():
        for k in range(conv.K):
            pyg.lins[k].weight.copy_(conv.weight[k].t())
        pyg.bias.copy_(conv.bias)
    return pyg


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).norm() / b.norm()).detach())


# (6, 5): terms first; (7, 3): channels mixed first (a layer that at least halves the width)
WIDTHS = [(6, 5), (7, 3)]


def test_both_formulations_are_exercised():
    assert not _projects_first(3, 6, 5)
    assert _projects_first(3, 7, 3)
    assert not _projects_first(1, 7, 3)  # K = 1 has no operator to apply


@pytest.mark.parametrize("dtype_name, tol", [("float32", 1e-5), ("float64", 1e-10)])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("K", [1, 2, 3, 5])
@pytest.mark.parametrize("widths", WIDTHS)
def test_matches_pyg_chebconv(dtype_name, tol, backend, K, widths):
    dtype = getattr(torch, dtype_name)
    mesh = icosphere(3)
    conv = MeshChebConv(*widths, K, mesh, backend=backend).to(dtype)
    with torch.no_grad():
        conv.bias.normal_()
    pyg = _pyg_twin(conv)
    x = torch.randn(4, mesh.num_vertices, widths[0], dtype=dtype, requires_grad=True)
    lam = torch.tensor(mesh.lambda_max, dtype=dtype)
    ours = conv(x)
    ref = pyg(x, mesh.edge_index, lambda_max=lam)
    assert ours.shape == ref.shape == (4, mesh.num_vertices, widths[1])
    assert _rel_err(ours, ref) <= tol
    # gradients w.r.t. input and weights agree too
    g = torch.randn_like(ref)
    gx_ours, gw_ours = torch.autograd.grad(ours, (x, conv.weight), g)
    gx_ref = torch.autograd.grad(ref, x, g, retain_graph=True)[0]
    gw_ref = torch.stack(
        [torch.autograd.grad(ref, lin.weight, g, retain_graph=True)[0].t() for lin in pyg.lins]
    )
    assert _rel_err(gx_ours, gx_ref) <= tol
    assert _rel_err(gw_ours, gw_ref) <= tol


def test_pose2mesh_rescale_matches_pyg_with_four_lambda():
    """The release operator L/(2 lambda) - I equals PyG's 2L/lambda' - I with lambda' = 4 lambda."""
    mesh = torus_mesh(12, 9)
    conv = MeshChebConv(3, 4, 3, mesh, rescale="pose2mesh").double()
    pyg = _pyg_twin(conv)
    x = torch.randn(2, mesh.num_vertices, 3, dtype=torch.float64)
    lam = torch.tensor(4 * mesh.lambda_max, dtype=torch.float64)
    assert _rel_err(conv(x), pyg(x, mesh.edge_index, lambda_max=lam)) <= 1e-10
    assert "rescale='pose2mesh'" in repr(conv)


@pytest.mark.parametrize("rescale", ["textbook", "pose2mesh"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("widths", [(3, 4), (9, 4)])
def test_self_loops_and_weights_against_dense_reference(rescale, backend, widths):
    """Coarse levels have self-loops and weights; PyG cannot do these, a dense float64 loop can."""
    hierarchy = MeshHierarchy.build(icosphere(2), num_levels=3)
    top = hierarchy.topologies[2]
    assert top.has_self_loops
    w = top.adjacency.toarray()
    assert w.max() > 1
    conv = MeshChebConv(*widths, 4, top, rescale=rescale, backend=backend).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = np.random.default_rng(1).standard_normal((3, top.num_vertices, widths[0]))
    ref = dense_cheb_conv(x, w, conv.weight.detach().numpy(), conv.bias.detach().numpy(), rescale)
    out = conv(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_random_weighted_graph_with_isolated_vertex():
    rng = np.random.default_rng(3)
    n = 30
    w = sp.random(n, n, density=0.15, random_state=4).toarray()
    w = w + w.T
    w[7, :] = 0
    w[:, 7] = 0  # isolated vertex
    np.fill_diagonal(w, rng.uniform(0, 2, n) * (rng.uniform(size=n) > 0.5))
    top = GraphTopology(w)
    conv = MeshChebConv(2, 3, 3, top).double()
    x = rng.standard_normal((2, n, 2))
    ref = dense_cheb_conv(
        x, w, conv.weight.detach().numpy(), conv.bias.detach().numpy(), "textbook"
    )
    np.testing.assert_allclose(
        conv(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("widths", [(4, 6), (8, 3)])
def test_batched_equals_per_sample(backend, widths):
    mesh = grid_mesh(7, 9)
    conv = MeshChebConv(*widths, 3, mesh, backend=backend)
    x = torch.randn(5, mesh.num_vertices, widths[0])
    out = conv(x)
    for b in range(5):
        single = conv(x[b])
        assert single.shape == (mesh.num_vertices, widths[1])
        torch.testing.assert_close(out[b], single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree(backend):
    mesh = icosphere(2)
    ref = MeshChebConv(5, 7, 4, mesh, backend="sparse").double()
    conv = MeshChebConv(5, 7, 4, mesh, backend=backend).double()
    conv.load_state_dict(ref.state_dict())
    x = torch.randn(3, mesh.num_vertices, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("K", [1, 2, 3, 4])
@pytest.mark.parametrize("widths", [(2, 3), (5, 2)])
def test_gradcheck(backend, K, widths):
    mesh = icosphere(0)
    conv = MeshChebConv(*widths, K, mesh, backend=backend).double()
    x = torch.randn(2, mesh.num_vertices, widths[0], dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach().clone().requires_grad_(True)
    bias = conv.bias.detach().clone().requires_grad_(True)

    def fn(x, weight, bias):
        return torch.func.functional_call(conv, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(fn, (x, weight, bias))


def test_chained_layers_use_transposed_layout_and_stay_correct():
    mesh = icosphere(2)
    a = MeshChebConv(3, 8, 3, mesh).double()
    b = MeshChebConv(8, 2, 3, mesh).double()
    x = torch.randn(4, mesh.num_vertices, 3, dtype=torch.float64, requires_grad=True)
    y = b(torch.relu(a(x)))
    y_ref = b(torch.relu(a(x)).contiguous())
    torch.testing.assert_close(y, y_ref)
    assert torch.autograd.gradcheck(
        lambda t: b(torch.tanh(a(t))), (x[:1].detach().requires_grad_(),)
    )


@pytest.mark.parametrize("batch", [1, 3])
def test_strided_inputs(batch):
    mesh = icosphere(1)
    conv = MeshChebConv(3, 4, 3, mesh, backend="sparse").double()
    wide = torch.randn(batch, mesh.num_vertices, 7, dtype=torch.float64)
    sliced = wide[..., 2:5]  # non-contiguous channel slice
    torch.testing.assert_close(conv(sliced), conv(sliced.contiguous()))
    chw = torch.randn(batch, 3, mesh.num_vertices, dtype=torch.float64).transpose(1, 2)
    torch.testing.assert_close(conv(chw), conv(chw.contiguous()))
    torch.testing.assert_close(conv(sliced[0]), conv(sliced[0].contiguous()))


def test_no_bias_and_k1_is_a_linear_layer():
    mesh = grid_mesh(4, 4)
    conv = MeshChebConv(3, 2, 1, mesh, bias=False)
    assert conv.bias is None
    x = torch.randn(2, 16, 3)
    torch.testing.assert_close(conv(x), x @ conv.weight[0])


def test_repr_and_reset_parameters():
    mesh = torus_mesh(30, 40)  # 1200 vertices -> sparse backend by default
    conv = MeshChebConv(64, 32, 3, mesh)
    assert repr(conv) == (
        "MeshChebConv(64, 32, K=3, num_vertices=1200, rescale='textbook', backend='sparse')"
    )
    small = MeshChebConv(4, 4, 2, grid_mesh(3, 3))
    assert small.backend == "dense"
    with torch.no_grad():
        conv.weight.fill_(10.0)
        conv.bias.fill_(1.0)
    conv.reset_parameters()
    bound = (6.0 / (64 + 32)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.std() > bound / 3  # not left at a constant
    assert torch.all(conv.bias == 0)


def test_state_dict_holds_only_parameters_and_dtype_moves_rebuild_operator():
    mesh = icosphere(2)
    conv = MeshChebConv(3, 3, 3, mesh, backend="sparse")
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert conv.lap_val.dtype == torch.float32
    conv.double()
    assert conv.lap_val.dtype == torch.float64
    # rebuilt from the float64 master copy, not rounded through float32
    np.testing.assert_array_equal(conv.lap_val.numpy(), mesh.scaled_laplacian_scipy().data)
    conv2 = copy.deepcopy(conv).float()
    assert conv2.lap_val.dtype == torch.float32


def test_device_move(device):
    mesh = icosphere(1)
    conv = MeshChebConv(3, 4, 3, mesh).to(device)
    out = conv(torch.randn(2, mesh.num_vertices, 3, device=device))
    assert out.device.type == device.type


def test_topology_rescale_is_default():
    hierarchy = MeshHierarchy.build(icosphere(2), num_levels=2, compat="pose2mesh")
    conv = MeshChebConv(2, 2, 2, hierarchy.topologies[1])
    assert conv.rescale == "pose2mesh"


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(2, 11, 3), ValueError, r"\(B, 12, 3\).*got \(2, 11, 3\)"),
        (torch.randn(2, 12, 4), ValueError, r"got \(2, 12, 4\)"),
        (torch.randn(12), ValueError, r"got \(12,\)"),
        (torch.randint(0, 3, (2, 12, 3)), TypeError, "floating"),
        (np.zeros((2, 12, 3)), TypeError, "floating"),
    ],
)
def test_bad_input(x, error, match):
    conv = MeshChebConv(3, 4, 2, icosphere(0))
    with pytest.raises(error, match=match):
        conv(x)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"K": 0}, ValueError, "K must be"),
        ({"in_channels": 0}, ValueError, "in_channels"),
        ({"rescale": "half"}, ValueError, "rescale"),
        ({"backend": "cusparse"}, ValueError, "backend"),
        ({"topology": np.eye(3)}, TypeError, "topology"),
    ],
)
def test_bad_construction(kwargs, error, match):
    args = {"in_channels": 3, "out_channels": 4, "K": 2, "topology": icosphere(0)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        MeshChebConv(**args)


@pytest.mark.skipif(WITH_TORCH_SPARSE, reason="torch_sparse is installed")
def test_torch_sparse_backend_missing_says_how_to_install():
    with pytest.raises(ImportError, match="pip install"):
        MeshChebConv(3, 4, 2, icosphere(0), backend="torch_sparse")


@pytest.mark.parametrize("widths", WIDTHS)
def test_autocast_dense_in_bfloat16_sparse_in_float32(widths):
    """Under CPU autocast: the dense operator computes in bfloat16, close to float32; the
    sparse one (no bfloat16 CSR product) gives exactly its float32 result."""
    mesh = icosphere(1)
    x = torch.randn(3, mesh.num_vertices, widths[0])
    for backend in ("dense", "sparse"):
        conv = MeshChebConv(*widths, 3, mesh, backend=backend)
        ref = conv(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
        if backend == "dense":
            assert out.dtype == torch.bfloat16
            torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
        else:
            assert out.dtype == torch.float32
            torch.testing.assert_close(out, ref, rtol=0, atol=0)
        out.float().sum().backward()  # and it trains
        assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    dense64 = MeshChebConv(*widths, 3, mesh, backend="dense").double()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float64 is left alone
        assert dense64(x.double()).dtype == torch.float64
