from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.nn import (
    MeshPool,
    MeshUnpool,
    binary_tree_pool,
    binary_tree_unpool,
    cluster_pool,
    cluster_unpool,
    pair_pool,
)


def _naive_pool(x: np.ndarray, cluster: np.ndarray, m: int, reduce: str) -> np.ndarray:
    out = np.zeros((x.shape[0], m, x.shape[2]))
    for c in range(m):
        members = np.flatnonzero(cluster == c)
        if members.size:
            vals = x[:, members]
            out[:, c] = vals.max(axis=1) if reduce == "max" else vals.mean(axis=1)
    return out


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_cluster_pool_matches_loop_for_any_cluster_sizes(reduce):
    rng = np.random.default_rng(0)
    cluster = rng.integers(0, 7, size=40)
    cluster[cluster == 3] = 4  # cluster 3 is empty -> zeros
    x = rng.standard_normal((3, 40, 5))
    out = cluster_pool(torch.from_numpy(x), torch.from_numpy(cluster), 7, reduce)
    # float64 means of O(1) values in another summation order: rounding ~1e-16 of the terms
    np.testing.assert_allclose(out.numpy(), _naive_pool(x, cluster, 7, reduce), atol=1e-12)
    single = cluster_pool(torch.from_numpy(x[0]), torch.from_numpy(cluster), 7, reduce)
    np.testing.assert_allclose(single.numpy(), out[0].numpy(), atol=1e-12)


def test_cluster_unpool_and_binary_tree_ops_by_hand():
    x = torch.tensor([[1.0], [2.0]])
    assert cluster_unpool(x, torch.tensor([1, 0, 1])).tolist() == [[2.0], [1.0], [2.0]]
    assert binary_tree_unpool(x).tolist() == [[1.0], [1.0], [2.0], [2.0]]
    y = torch.tensor([[[1.0], [4.0], [3.0], [-2.0]]])
    assert binary_tree_pool(y, "max").tolist() == [[[4.0], [3.0]]]
    assert binary_tree_pool(y, "mean").tolist() == [[[2.5], [0.5]]]


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_modules_match_naive_pooling(layout, reduce):
    h = MeshHierarchy.build(icosphere(2), 4, layout=layout)
    for level in range(3):
        pool = MeshPool(h, level, reduce)
        x = torch.randn(2, h.sizes[level], 3, dtype=torch.float64)
        out = pool(x)
        assert out.shape == (2, h.sizes[level + 1], 3)
        ref = _naive_pool(x.numpy(), h.clusters[level].numpy(), h.sizes[level + 1], reduce)
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
        unpool = MeshUnpool(h, level + 1)
        up = unpool(out)
        assert up.shape == x.shape
        torch.testing.assert_close(up, out[:, h.clusters[level]])
        torch.testing.assert_close(pool(up), out)  # unpool then pool is the identity


def test_binary_tree_pooling_of_real_vertices_matches_compact_where_no_fakes():
    h_c = MeshHierarchy.build(icosphere(2), 2)
    h_t = MeshHierarchy.build(icosphere(2), 2, layout="binary_tree")
    x = torch.randn(1, 162, 2).abs() + 1  # positive: fake zeros never win a max
    pooled_c = MeshPool(h_c, 0)(x)
    pooled_t = h_t.from_layout(MeshPool(h_t, 0)(h_t.to_layout(x)), level=1)
    torch.testing.assert_close(pooled_t, pooled_c)


def test_cluster_max_pool_gradient_when_the_max_is_zero():
    """Hand-worked: the whole gradient goes to the maximum, shared among ties only (a zero
    maximum used to lose a share to the scatter's initial value)."""
    cluster = torch.tensor([0, 0, 1, 1, 2])
    x = torch.tensor([[0.0], [-1.0], [0.0], [0.0], [-3.0]], requires_grad=True)
    out = cluster_pool(x, cluster, 4)
    assert out.flatten().tolist() == [0.0, 0.0, -3.0, 0.0]  # cluster 3 is empty: zero
    out.sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.5, 0.5, 1.0]


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_pair_pooling_equals_the_scatter_pooling(reduce):
    """Heavy-edge clusters (1 or 2 members) take the two-gather path: same values, same
    gradients as the general scatter pooling, ties included (integer features)."""
    from meshgraph.nn.pool import _cluster_pairs

    h = MeshHierarchy.build(icosphere(3), 4)
    for level in range(3):
        pool = MeshPool(h, level, reduce)
        assert pool.pairs is not None
        x = torch.randint(-2, 3, (2, h.sizes[level], 4)).double().requires_grad_()
        w = torch.randn(2, h.sizes[level + 1], 4, dtype=torch.float64)
        fast = pool(x)
        (g_fast,) = torch.autograd.grad((fast * w).sum(), x)
        ref = cluster_pool(x, h.clusters[level], h.sizes[level + 1], reduce)
        (g_ref,) = torch.autograd.grad((ref * w).sum(), x)
        torch.testing.assert_close(fast, ref)
        torch.testing.assert_close(g_fast, g_ref)
    # other cluster maps (a triple, an empty cluster) keep the general path
    assert _cluster_pairs(torch.tensor([0, 0, 0, 1]), 2) is None
    assert _cluster_pairs(torch.tensor([0, 0, 2]), 3) is None
    pairs = _cluster_pairs(torch.tensor([1, 0, 1, 2]), 3)
    assert pairs.tolist() == [[1, 0, 3], [1, 2, 3]]
    x = torch.tensor([[4.0], [1.0], [-2.0], [7.0]])
    assert pair_pool(x, pairs).tolist() == [[1.0], [4.0], [7.0]]
    assert pair_pool(x, pairs, "mean").tolist() == [[1.0], [1.0], [7.0]]
    with pytest.raises(ValueError, match=r"\(2, M\)"):
        pair_pool(x, pairs[0])


def test_gradients_flow():
    h = MeshHierarchy.build(icosphere(1), 3)
    x = torch.randn(2, h.sizes[0], 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: MeshPool(h, 0, "mean")(t), (x,))
    y = torch.randn(2, h.sizes[1], 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: MeshUnpool(h, 1)(t), (y,))


def test_repr_and_errors():
    h = MeshHierarchy.build(icosphere(1), 3, layout="binary_tree")
    assert repr(MeshPool(h, 0)) == (
        f"MeshPool(level=0, {h.sizes[0]} -> {h.sizes[1]}, reduce='max', layout='binary_tree')"
    )
    assert repr(MeshUnpool(h, 2)).startswith(f"MeshUnpool(level=2, {h.sizes[2]} -> {h.sizes[1]}")
    with pytest.raises(ValueError, match="level"):
        MeshPool(h, 2)
    with pytest.raises(ValueError, match="level"):
        MeshUnpool(h, 0)
    with pytest.raises(ValueError, match="reduce"):
        MeshPool(h, 0, "sum")
    with pytest.raises(ValueError, match=r"at level 0, got \(2, 5, 3\)"):
        MeshPool(h, 0)(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="even"):
        binary_tree_pool(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="reduce"):
        cluster_pool(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), 1, "min")


def test_modules_follow_device(device):
    h = MeshHierarchy.build(icosphere(1), 2)
    pool = MeshPool(h, 0).to(device)
    unpool = MeshUnpool(h, 1).to(device)
    x = torch.randn(2, h.sizes[0], 3, device=device)
    assert unpool(pool(x)).device.type == device.type
    assert MeshPool(h, 0).state_dict() == {}
