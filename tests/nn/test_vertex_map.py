"""VertexMap: a naive loop, hand-worked fits, translation invariance, storage and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.generators import grid_mesh
from meshgraph.nn.vertex_map import VertexMap


def _random_map(v_out=7, v_in=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, v_in, (v_out, k), generator=g)
    weight = torch.rand(v_out, k, generator=g, dtype=torch.float64) + 0.1
    return VertexMap(index, weight / weight.sum(1, keepdim=True), v_in), index, weight


def test_forward_matches_a_naive_loop_and_the_dense_matrix():
    vmap, index, weight = _random_map()
    w = (weight / weight.sum(1, keepdim=True)).numpy()
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    out = vmap(x)
    assert out.shape == (2, 3, 7, 4) and out.dtype == torch.float64
    ref = np.zeros((2, 3, 7, 4))
    for v in range(7):
        for j in range(3):
            ref[..., v, :] += w[v, j] * x[..., int(index[v, j]), :].numpy()
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-7)
    dense = vmap.to_dense().double()
    np.testing.assert_allclose((dense @ x).numpy(), ref, rtol=1e-6, atol=1e-7)
    assert repr(vmap) == "VertexMap(5 -> 7 vertices, k=3)"


def test_rows_are_renormalised_and_the_map_commutes_with_translation():
    index = torch.tensor([[0, 1], [1, 2]])
    vmap = VertexMap(index, torch.tensor([[0.51, 0.51], [0.3, 0.7]]), 3)
    np.testing.assert_allclose(vmap.weight.numpy(), [[0.5, 0.5], [0.3, 0.7]], rtol=1e-7)
    x = torch.randn(4, 3, 3, dtype=torch.float64)
    shift = torch.tensor([1.5, -2.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(vmap(x + shift), vmap(x) + shift)


def test_gradients_flow_to_the_input():
    vmap, _, _ = _random_map()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    vmap.double()
    assert torch.autograd.gradcheck(vmap, (x,))


def test_fit_recovers_an_exact_linear_map():
    # the target mesh's vertices are edge midpoints and vertices of a grid: any bending of
    # the source is followed exactly, and the fit must find the weights 1/2, 1/2 (or 1)
    topo = grid_mesh(4, 5)
    rest = torch.tensor(
        [[c % 5, c // 5, 0.0] for c in range(topo.num_vertices)], dtype=torch.float64
    )
    edges = topo.edge_index[:, topo.edge_index[0] < topo.edge_index[1]].T
    # the grid's sides (a diagonal's midpoint is as near to four vertices as to its two)
    edges = edges[(rest[edges[:, 0]] - rest[edges[:, 1]]).norm(dim=1) < 1.2]
    g = torch.Generator().manual_seed(1)
    source = rest + 0.3 * torch.randn(40, topo.num_vertices, 3, generator=g, dtype=torch.float64)
    mid = lambda x: 0.5 * (x[..., edges[:, 0], :] + x[..., edges[:, 1], :])  # noqa: E731
    target, target_rest = mid(source), mid(rest)
    vmap = VertexMap.fit(source, target, rest, target_rest, k=2, ridge=0.0)
    for v in range(len(edges)):
        got = dict(zip(vmap.index[v].tolist(), vmap.weight[v].tolist(), strict=True))
        assert set(got) == set(edges[v].tolist())
        assert list(got.values()) == pytest.approx([0.5, 0.5], abs=1e-6)
    unseen = rest + 0.3 * torch.randn(5, topo.num_vertices, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(vmap(unseen), mid(unseen), atol=1e-5, rtol=0)
    # more neighbours than needed: still exact, the extra weights go to zero
    wide = VertexMap.fit(source, target, rest, target_rest, k=4, ridge=0.0)
    torch.testing.assert_close(wide(unseen), mid(unseen), atol=1e-5, rtol=0)


def test_fit_with_one_neighbour_copies_the_nearest_vertex():
    rest = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    target_rest = torch.tensor([[0.9, 0.1, 0], [0.1, 0.0, 0]])
    x = torch.randn(3, 3, 3)
    vmap = VertexMap.fit(x, x[:, [1, 0]], rest, target_rest, k=1)
    assert vmap.index[:, 0].tolist() == [1, 0] and vmap.weight.flatten().tolist() == [1.0, 1.0]


def test_the_ridge_picks_the_nearest_weights_where_the_poses_do_not_pin_them():
    # the four sources only ever move as one rigid translate: the data pin the weights only
    # through the rest positions (sum 1, and the rest point reproduced); among the weights
    # that do that, the ridge must pick the nearest to the inverse-distance ones
    rest = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    shift = torch.randn(30, 1, 3, generator=g, dtype=torch.float64)
    target_rest = torch.tensor([[0.25, 0.25, 0.0]], dtype=torch.float64)
    vmap = VertexMap.fit(rest + shift, target_rest + shift, rest, target_rest, k=4, ridge=1e-6)
    order = vmap.index[0].numpy()
    r = rest.numpy()[order]
    d = np.linalg.norm(r - target_rest.numpy(), axis=1)
    w0 = (1 / d) / (1 / d).sum()
    a = np.vstack([np.ones(4), r[:, 0], r[:, 1]])  # the constraints A w = b
    b = np.array([1.0, 0.25, 0.25])
    expected = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)  # nearest point of A w = b
    np.testing.assert_allclose(vmap.weight[0].numpy(), expected, atol=1e-6)
    assert not np.allclose(expected, w0, atol=1e-2)  # the constraint did move them


def test_storage_is_compact_and_float16_costs_micrometres():
    vmap, _, _ = _random_map(v_out=50, v_in=30, k=4, seed=3)
    arrays = vmap.to_arrays(half=True)
    assert arrays["index"].dtype == torch.int16 and arrays["weight"].dtype == torch.float16
    back = VertexMap.from_arrays(arrays)
    assert torch.equal(back.index, vmap.index)
    torch.testing.assert_close(back.weight.sum(1), torch.ones(50))
    x = 0.01 * torch.randn(2, 30, 3) + torch.tensor([0.3, 0.8, -0.2])  # 1 cm around a point
    assert float((back(x) - vmap(x)).abs().max()) < 2e-5
    assert VertexMap.from_arrays(vmap.to_arrays()).weight.equal(vmap.weight)
    big = VertexMap(torch.tensor([[40000]]), torch.ones(1, 1), 40001)
    assert big.to_arrays()["index"].dtype == torch.int32


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \(V_out, k\)"):
        VertexMap(torch.zeros(3, 2, dtype=torch.long), torch.ones(3, 3), 4)
    with pytest.raises(ValueError, match="integers"):
        VertexMap(torch.zeros(3, 2), torch.ones(3, 2), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        VertexMap(torch.tensor([[0, 4]]), torch.ones(1, 2), 4)
    with pytest.raises(ValueError, match="NaN"):
        VertexMap(torch.tensor([[0, 1]]), torch.tensor([[float("nan"), 1.0]]), 4)
    with pytest.raises(ValueError, match=r"output vertex 1 sums to 0\.5000"):
        VertexMap(torch.tensor([[0], [1]]), torch.tensor([[1.0], [0.5]]), 4)
    vmap, _, _ = _random_map()
    with pytest.raises(ValueError, match=r"\(\.\.\., 5, C\)"):
        vmap(torch.zeros(2, 6, 3))
    with pytest.raises(ValueError, match="no weight"):
        VertexMap.from_arrays({"index": vmap.index, "num_sources": torch.tensor(5)})
    x = torch.zeros(3, 4, 3)
    rest = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="like source's 3 meshes"):
        VertexMap.fit(x, torch.zeros(2, 5, 3), rest, torch.zeros(5, 3), k=2)
    with pytest.raises(ValueError, match="source_rest must have shape"):
        VertexMap.fit(x, torch.zeros(3, 5, 3), torch.zeros(3, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"k must lie in \[1, 4\]"):
        VertexMap.fit(x, torch.zeros(3, 5, 3), rest, torch.zeros(5, 3), k=5)
    with pytest.raises(ValueError, match="ridge"):
        VertexMap.fit(x, torch.zeros(3, 5, 3), rest, torch.zeros(5, 3), k=2, ridge=-1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        VertexMap.fit(
            x.clone().fill_(float("nan")), torch.zeros(3, 5, 3), rest, torch.zeros(5, 3), k=2
        )


def test_other_dtypes_gather_and_copies_drop_the_sparse_matrices():
    import copy
    import pickle

    vmap, _, _ = _random_map(v_out=20, v_in=9, k=3, seed=4)
    x = torch.randn(3, 9, 2)
    out = vmap(x)  # the sparse path (float32), which caches its matrices
    half = vmap(x.bfloat16())  # the gather path
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), out, atol=0.05, rtol=0.02)
    for clone in (copy.deepcopy(vmap), pickle.loads(pickle.dumps(vmap))):
        torch.testing.assert_close(clone(x), out)
