"""Channel resampling as a GEMM, and the vertex-major layout kept through blocks and pooling.

References: ``F.interpolate`` (the formulation the GEMM replaces), the pre-layout formulas of
``ChebBlock`` (conv, batch norm over a ``(B*V, C)`` copy, ReLU, interpolated residual), and
the same ops on contiguous copies of the inputs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.nn import (
    ChebBlock,
    MeshChebConv,
    MeshPool,
    MeshUnpool,
    channel_interpolation_matrix,
    interpolate_channels,
)
from meshgraph.nn._layout import as_rows, is_vertex_major


def _interp_ref(x: torch.Tensor, c: int) -> torch.Tensor:
    flat = x.reshape(-1, 1, x.shape[-1])
    return F.interpolate(flat, size=c, mode="linear", align_corners=False).view(*x.shape[:-1], c)


@pytest.mark.parametrize(("cin", "cout"), [(2, 4), (40, 32), (32, 40), (64, 128), (128, 104),
                                           (5, 3), (1, 7), (7, 1), (9, 9)])  # fmt: skip
def test_interpolation_matrix_is_f_interpolate(cin, cout):
    x = torch.randn(50, cin, dtype=torch.float64)
    m = channel_interpolation_matrix(cin, cout, torch.float64)
    assert m.shape == (cin, cout)
    # every output channel is a convex combination of at most two neighbouring input channels
    assert bool(((m != 0).sum(0) <= 2).all()) and torch.allclose(
        m.sum(0), torch.ones(cout, dtype=torch.float64)
    )
    torch.testing.assert_close(x @ m, _interp_ref(x, cout), rtol=0, atol=1e-14)
    # float32 against the float64 reference: error bounded by the size of the summed terms
    x32 = x.float()
    out = interpolate_channels(x32, cout) if cin != cout else x32 @ m.float()
    scale = x.abs() @ m.abs()
    assert bool(((out.double() - x @ m).abs() <= 8 * 2.0**-24 * scale + 1e-30).all())


def test_interpolation_matrix_checks_widths():
    with pytest.raises(ValueError, match="out_channels"):
        channel_interpolation_matrix(3, 0)
    with pytest.raises(ValueError, match="in_channels"):
        channel_interpolation_matrix(True, 2)


def _vertex_major(b: int, v: int, c: int) -> torch.Tensor:
    return torch.randn(v, b, c, dtype=torch.float64).transpose(0, 1)


def test_interpolate_channels_keeps_the_layout():
    x = _vertex_major(3, 20, 6)
    out = interpolate_channels(x, 10)
    assert is_vertex_major(out) and not out.is_contiguous()
    torch.testing.assert_close(out, _interp_ref(x.contiguous(), 10), rtol=0, atol=1e-14)
    y = torch.randn(3, 20, 6, dtype=torch.float64)
    assert interpolate_channels(y, 10).is_contiguous()
    odd = torch.randn(3, 6, 20, dtype=torch.float64).transpose(1, 2)  # neither layout
    torch.testing.assert_close(interpolate_channels(odd, 4), _interp_ref(odd.contiguous(), 4))


def test_as_rows_round_trip_without_copies():
    for x in (_vertex_major(4, 7, 3), torch.randn(4, 7, 3), torch.randn(7, 3)):
        rows, back = as_rows(x)
        assert rows.data_ptr() == x.data_ptr()  # a view, no copy
        torch.testing.assert_close(back(rows), x, rtol=0, atol=0)
        assert back(rows).stride() == x.stride()


@pytest.mark.parametrize("layout", ["vertex_major", "contiguous", "unbatched"])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize(("cin", "cout"), [(4, 8), (8, 8), (8, 5)])
def test_cheb_block_equals_the_unfused_formula(layout, train, cin, cout):
    """On the rows of its buffer, the block equals the unfused formula.

    conv -> batch norm on a (B*V, C) copy -> ReLU -> + F.interpolate of the input.
    """
    mesh = icosphere(1)
    torch.manual_seed(0)
    block = ChebBlock(cin, cout, 3, mesh).double()
    with torch.no_grad():
        block.norm.weight.uniform_(0.5, 1.5)
        block.norm.bias.uniform_(-0.5, 0.5)
    ref_block = ChebBlock(cin, cout, 3, mesh).double()
    ref_block.load_state_dict(block.state_dict())
    block.train(train)
    ref_block.train(train)
    v = mesh.num_vertices
    inputs = {
        "vertex_major": lambda: _vertex_major(3, v, cin),
        "contiguous": lambda: torch.randn(3, v, cin, dtype=torch.float64),
        "unbatched": lambda: torch.randn(v, cin, dtype=torch.float64),
    }
    x = inputs[layout]()
    x1 = x.clone().requires_grad_(True)
    x2 = x.detach().contiguous().requires_grad_(True)
    y = block(x1)
    conv = ref_block.conv(x2)
    flat = conv.reshape(-1, cout).contiguous()
    ref = torch.relu(ref_block.norm(flat)).view(conv.shape) + _interp_ref(x2, cout)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    if layout != "unbatched":
        assert is_vertex_major(y)  # the conv's layout is kept: the next conv reads it for free
    g = torch.randn_like(ref)
    (y * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    for (name, p), q in zip(block.named_parameters(), ref_block.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)
    if train:  # running statistics updated alike
        torch.testing.assert_close(block.norm.running_var, ref_block.norm.running_var)


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_pool_and_unpool_keep_a_vertex_major_layout(layout, reduce):
    h = MeshHierarchy.build(icosphere(2), 3, layout=layout)
    x = _vertex_major(3, h.sizes[0], 5)
    pool, unpool = MeshPool(h, 0, reduce), MeshUnpool(h, 1)
    pooled = pool(x)
    assert is_vertex_major(pooled)
    torch.testing.assert_close(pooled, pool(x.contiguous()), rtol=0, atol=0)
    up = unpool(pooled)
    assert is_vertex_major(up)
    torch.testing.assert_close(up, unpool(pooled.contiguous()), rtol=0, atol=0)
    # gradients through the vertex-major path equal those of the contiguous path
    a = x.clone().requires_grad_(True)
    b = x.contiguous().requires_grad_(True)
    unpool(pool(a)).sum().backward()
    unpool(pool(b)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_a_decoder_chain_makes_no_layout_copies():
    """Conv output -> block -> unpool -> block: every intermediate stays vertex-major."""
    h = MeshHierarchy.build(icosphere(2), 3)
    conv = MeshChebConv(4, 6, 3, h.topologies[2])
    b1, b0 = ChebBlock(6, 8, 3, h.topologies[1]), ChebBlock(8, 5, 3, h.topologies[0])
    x = conv(torch.randn(2, h.sizes[2], 4))
    for step in (MeshUnpool(h, 2), b1, MeshUnpool(h, 1), b0):
        x = step(x)
        assert is_vertex_major(x) and not x.is_contiguous()


def test_reuse_cpu_memory_stops_page_faults_on_large_tensors():
    """In a fresh process: every new 200 MB tensor page-faults anew by default, not after.

    After three warm-up allocations, three more are counted. glibc's heap can still miss one
    of them now and then (a small allocation lands where the freed block was, and the aligned
    request no longer fits: seen in about 1 of 7 runs), so the bound is half the default's
    faults, not zero.
    """
    pytest.importorskip("resource")
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    code = textwrap.dedent("""
        import resource, sys, torch
        from meshgraph.devices import reuse_cpu_memory
        applied = reuse_cpu_memory() if sys.argv[1] == "1" else None
        for _ in range(3):
            x = torch.ones(50_000_000); del x
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            x = torch.ones(50_000_000); del x
        print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    runs = {}
    for flag in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
        runs[flag] = (out[0], int(out[1]))
    if runs["1"][0] != "True":
        pytest.skip("mallopt not available (not glibc)")
    pages = 200_000_000 // 4096
    assert runs["0"][1] > 2.5 * pages  # the default: every tensor a fresh mapping, page by page
    assert runs["1"][1] < runs["0"][1] / 2  # reused: at most one of the three faults
