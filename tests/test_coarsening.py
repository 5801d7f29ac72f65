from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import meshgraph.coarsening as coarsening
from meshgraph import MeshHierarchy, coarsen, heavy_edge_matching
from meshgraph.generators import grid_mesh, icosphere, icosphere_vertices_faces, torus_mesh
from meshgraph.mesh import GraphTopology, MeshTopology
from meshgraph.nn import MeshPool, MeshUnpool


def _csr(dense) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray(dense, dtype=np.float64))


# --------------------------------------------------------------------- hand-worked matchings
def test_path_graph():
    # degrees 1, 2, 2, 1 -> visit 0, 3, 1, 2: 0 takes 1, 3 takes 2
    path = _csr([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]])
    assert heavy_edge_matching(path).tolist() == [0, 0, 1, 1]


def test_kite_graph():
    # edges 0-1, 0-2, 1-2, 2-3; degrees 2, 2, 3, 1 -> visit 3, 0, 1, 2
    # 3 takes its only neighbour 2 (cluster 0); 0 then takes 1 (cluster 1)
    kite = _csr([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]])
    assert heavy_edge_matching(kite).tolist() == [1, 1, 0, 0]


def test_score_uses_self_loops_and_degrees():
    # W01 = 2, W02 = 1, W13 = 5, W22 = 10; degrees 3, 7, 11, 5 -> visit 0, 3, 1, 2
    # vertex 0: score(1) = (4 + 0 + 0) / (3 + 7) = 0.4, score(2) = (2 + 0 + 10) / (3 + 11) = 0.857
    # -> 0 takes 2 although the edge to 1 is heavier; then 3 takes 1.
    w = np.zeros((4, 4))
    w[0, 1] = w[1, 0] = 2
    w[0, 2] = w[2, 0] = 1
    w[1, 3] = w[3, 1] = 5
    w[2, 2] = 10
    assert heavy_edge_matching(_csr(w)).tolist() == [0, 1, 0, 1]


def test_ties_go_to_smallest_index():
    # a star: centre 0 (degree 3) visited last; leaf 1 is visited first and takes the centre
    star = _csr([[0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    assert heavy_edge_matching(star).tolist() == [0, 0, 1, 2]
    # a 4-cycle: all degrees equal -> visit 0 first, neighbours 1 and 3 tie -> 1
    cycle = _csr([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
    assert heavy_edge_matching(cycle).tolist() == [0, 0, 1, 1]


def test_coarse_graph_is_pt_w_p():
    mesh = icosphere(2)
    graphs, clusters = coarsen(mesh, 3)
    for level in range(2):
        w = graphs[level].toarray()
        c = clusters[level]
        p = np.zeros((w.shape[0], c.max() + 1))
        p[np.arange(len(c)), c] = 1
        np.testing.assert_array_equal(graphs[level + 1].toarray(), p.T @ w @ p)
    assert graphs[1].diagonal().min() >= 0 and graphs[1].diagonal().max() == 2
    # total weight is preserved by P^T W P
    assert graphs[2].sum() == pytest.approx(graphs[0].sum())


# --------------------------------------------------------------------- compat mode
def _release_reference(w: sp.csr_matrix, levels: int) -> list[np.ndarray]:
    """The Pose2Mesh matching as pose2mesh-reference.md describes it, written as a plain loop."""
    clusters = []
    for level in range(levels):
        n = w.shape[0]
        colsum = np.asarray(w.sum(axis=0)).reshape(-1)
        order = np.argsort(colsum)
        degree = colsum - w.diagonal() if level == 0 else colsum
        indptr, indices, data = w.indptr, w.indices, w.data
        marked = np.zeros(n, dtype=bool)
        cluster = np.zeros(n, dtype=np.int64)
        count = 0
        for i in order:
            if marked[i]:
                continue
            marked[i] = True
            best, best_score = -1, 0.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if marked[j]:
                    continue
                wii = data[indptr[i]]
                wjj = data[indptr[j]] if indptr[j + 1] > indptr[j] else 0.0
                score = (2.0 * data[p] + wii + wjj) * (1.0 / (degree[i] + degree[j] + 1e-9))
                if score > best_score:
                    best, best_score = j, score
            cluster[i] = count
            if best >= 0:
                cluster[best] = count
                marked[best] = True
            count += 1
        clusters.append(cluster)
        coo = w.tocoo()
        w = sp.csr_matrix((coo.data, (cluster[coo.row], cluster[coo.col])), shape=(count, count))
        w.sum_duplicates()
        w.eliminate_zeros()
        w.sort_indices()
    return clusters


@pytest.mark.parametrize(
    "mesh",
    [icosphere(3), grid_mesh(9, 11), torus_mesh(10, 14), MeshTopology([[0, 1, 2], [2, 3, 4]], 7)],
    ids=["icosphere", "grid", "torus", "isolated"],
)
def test_compat_pose2mesh_matches_literal_release_loop(mesh):
    _graphs, clusters = coarsen(mesh, 5, compat="pose2mesh")
    ref = _release_reference(mesh.adjacency, 4)
    for ours, theirs in zip(clusters, ref, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_compat_sets_release_rescale():
    h = MeshHierarchy.build(icosphere(2), 3, compat="pose2mesh")
    assert all(t.rescale == "pose2mesh" for t in h.topologies)
    assert isinstance(h.topologies[0], MeshTopology)  # faces kept
    h2 = MeshHierarchy.build(icosphere(2), 3)
    assert all(t.rescale == "textbook" for t in h2.topologies)


def test_bad_options():
    mesh = icosphere(1)
    with pytest.raises(ValueError, match="compat"):
        coarsen(mesh, 2, compat="release")
    with pytest.raises(ValueError, match="num_levels"):
        coarsen(mesh, 0)
    with pytest.raises(TypeError, match="num_levels"):
        coarsen(mesh, 2.0)
    with pytest.raises(ValueError, match="layout"):
        MeshHierarchy.build(mesh, 2, layout="padded")
    with pytest.raises(TypeError, match="topology"):
        MeshHierarchy.build(np.eye(3), 2)
    with pytest.raises(ValueError, match="square"):
        heavy_edge_matching(sp.csr_matrix(np.ones((2, 3))))


# --------------------------------------------------------------------- hierarchy invariants
def _check_hierarchy(topology: GraphTopology, num_levels: int) -> None:
    compact = MeshHierarchy.build(topology, num_levels)
    padded = compact.sizes[-1] * 2 ** (num_levels - 1)
    if padded > coarsening.MAX_BINARY_TREE_PADDING * max(compact.sizes[0], 1):
        # more levels than the graph has (e.g. 6 levels of a 6-vertex graph: 128 padded
        # vertices): the binary tree is refused, the compact layout is checked alone below
        with pytest.raises(ValueError, match="binary-tree levels would pad"):
            MeshHierarchy.build(topology, num_levels, layout="binary_tree")
        tree = compact
    else:
        tree = MeshHierarchy.build(topology, num_levels, layout="binary_tree")
    assert compact.real_sizes == tree.real_sizes == compact.sizes
    for level in range(num_levels - 1):
        c = compact.real_clusters[level].numpy()
        n, m = compact.real_sizes[level], compact.real_sizes[level + 1]
        # every vertex in exactly one cluster, every cluster non-empty with <= 2 members
        assert c.shape == (n,)
        counts = np.bincount(c, minlength=m)
        assert counts.shape == (m,) and counts.min() >= 1 and counts.max() <= 2
        # sizes shrink by at most half
        assert m >= n / 2
        adj = compact.topologies[level].adjacency
        coo = adj.tocoo()
        off = coo.row != coo.col
        if off.any():
            assert m < n
            # maximal matching: no edge joins two singletons
            single = counts[c] == 1
            assert not np.any(single[coo.row[off]] & single[coo.col[off]])
        if tree is compact:
            continue
        # binary tree: exact halving, children 2k and 2k+1, consistent with the clusters
        assert tree.sizes[level] == 2 * tree.sizes[level + 1]
        perm, perm_up = tree.perms[level].numpy(), tree.perms[level + 1].numpy()
        real = perm >= 0
        assert np.array_equal(np.sort(perm[real]), np.arange(n))
        pos = np.flatnonzero(real)
        assert np.all(perm_up[pos // 2] == c[perm[real]])
        # fake vertices are isolated in the padded graph
        padded = tree.topologies[level].adjacency
        assert np.all(np.diff(padded.indptr)[~real] == 0)
        # the padded graph is the real graph, permuted
        inv = tree.inverse_perms[level].numpy()
        np.testing.assert_array_equal(padded[inv][:, inv].toarray(), adj.toarray())
    # unpooling then pooling returns the signal, on both layouts
    for h in {id(compact): compact, id(tree): tree}.values():
        for level in range(1, num_levels):
            x = torch.randn(2, h.sizes[level], 3, dtype=torch.float64)
            for reduce in ("max", "mean"):
                up = MeshUnpool(h, level)(x)
                torch.testing.assert_close(MeshPool(h, level - 1, reduce)(up), x)
        xr = torch.randn(2, topology.num_vertices, 4)
        assert torch.equal(h.from_layout(h.to_layout(xr)), xr)


@st.composite
def meshes(draw) -> MeshTopology:
    kind = draw(st.sampled_from(["icosphere", "grid", "holes", "isolated", "components", "one"]))
    if kind == "icosphere":
        _, f = icosphere_vertices_faces(draw(st.integers(0, 3)))
        return MeshTopology(f)
    if kind == "one":
        return MeshTopology([[0, 1, 2]])
    rows, cols = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    f = grid_mesh(rows, cols).faces.numpy()
    n = rows * cols
    if kind == "holes":
        keep = draw(st.lists(st.booleans(), min_size=len(f), max_size=len(f)))
        keep[0] = True
        f = f[np.asarray(keep)]
    if kind == "isolated":
        n += draw(st.integers(1, 5))
    if kind == "components":
        _, g = icosphere_vertices_faces(1)
        f = np.concatenate([f, g + n])
        n += 42
    return MeshTopology(f, num_vertices=n)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mesh=meshes(), num_levels=st.integers(1, 6))
# a triangle and 3 isolated vertices stall at 4 vertices: 6 levels would pad to 128 (> 16 x 6)
@example(mesh=MeshTopology([[0, 1, 2]], num_vertices=6), num_levels=6)
def test_hierarchy_properties(mesh, num_levels):
    _check_hierarchy(mesh, num_levels)


@settings(max_examples=15, deadline=None)
@given(mesh=meshes())
def test_matching_is_deterministic_and_independent_of_global_seed(mesh):
    np.random.seed(1)  # noqa: NPY002 - the matching must not depend on it
    a = coarsen(mesh, 4)[1]
    np.random.seed(2)  # noqa: NPY002
    b = coarsen(mesh, 4)[1]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_sizes_roughly_halve_on_meshes():
    for mesh in (icosphere(4), torus_mesh(40, 50)):
        h = MeshHierarchy.build(mesh, 6)
        ratios = np.array(h.sizes[1:]) / np.array(h.sizes[:-1])
        assert np.all((ratios >= 0.5) & (ratios < 0.6)), ratios


def test_binary_tree_padding_by_hand():
    # path 0-1-2: level 1 clusters {0,1}->0, {2}->1 ; level 2: {0,1}->0
    path = GraphTopology(_csr([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    h = MeshHierarchy.build(path, 3, layout="binary_tree")
    assert h.real_sizes == [3, 2, 1]
    assert h.sizes == [4, 2, 1]
    assert h.perms[2].tolist() == [0]
    # coarse vertex 0 of level 1 -> children of level-2 vertex 0 in ascending id: 0 (={0,1}), 1
    assert h.perms[1].tolist() == [0, 1]
    # level 0: children of {0,1} then of {2} padded with one fake
    assert h.perms[0].tolist() == [0, 1, 2, -1]
    assert h.fake_fraction[0] == pytest.approx(0.25)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    assert h.to_layout(x).tolist() == [[1.0], [2.0], [3.0], [0.0]]


def test_layout_maps_check_shapes():
    h = MeshHierarchy.build(icosphere(1), 3, layout="binary_tree")
    with pytest.raises(ValueError, match="shape"):
        h.to_layout(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="shape"):
        h.from_layout(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="level"):
        h.to_layout(torch.zeros(42, 1), level=7)
    with pytest.raises(ValueError, match="level"):
        MeshPool(h, level=2)
    with pytest.raises(ValueError, match="level"):
        MeshUnpool(h, level=0)


def test_repr_and_len():
    h = MeshHierarchy.build(grid_mesh(4, 4), 3)
    assert len(h) == h.num_levels == 3
    assert repr(h).startswith("MeshHierarchy(layout='compact', compat=None, sizes=[16,")


# --------------------------------------------------------------------- persistence
@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_save_load_roundtrip(tmp_path, layout):
    mesh = icosphere(2)
    h = MeshHierarchy.build(mesh, 4, layout=layout)
    path = tmp_path / "h.npz"
    h.save(path)
    loaded = MeshHierarchy.load(path)
    assert loaded.sizes == h.sizes and loaded.real_sizes == h.real_sizes
    assert loaded.layout == layout
    assert isinstance(loaded.topologies[0], MeshTopology) == (layout == "compact")
    for a, b in zip(loaded.topologies, h.topologies, strict=True):
        assert (a.adjacency != b.adjacency).nnz == 0
        assert a._lambda_max == b.lambda_max  # stored: no eigensolver on load
    for a, b in zip(loaded.clusters, h.clusters, strict=True):
        assert torch.equal(a, b)
    if layout == "binary_tree":
        for a, b in zip(loaded.perms, h.perms, strict=True):
            assert torch.equal(a, b)


def test_cache_dir_computes_once(tmp_path, monkeypatch):
    mesh = icosphere(2)
    h = MeshHierarchy.build(mesh, 4, cache_dir=tmp_path)
    files = list(tmp_path.glob("hierarchy-*.npz"))
    assert len(files) == 1

    def boom(*args, **kwargs):
        raise AssertionError("coarsen should not run on a cache hit")

    monkeypatch.setattr(coarsening, "coarsen", boom)
    again = MeshHierarchy.build(mesh, 4, cache_dir=tmp_path)
    assert again.sizes == h.sizes
    assert again.topologies[0] is mesh  # the given topology is reused
    monkeypatch.undo()
    # other options -> other file
    MeshHierarchy.build(mesh, 4, layout="binary_tree", cache_dir=tmp_path)
    MeshHierarchy.build(mesh, 3, cache_dir=tmp_path)
    MeshHierarchy.build(mesh, 4, compat="pose2mesh", cache_dir=tmp_path)
    MeshHierarchy.build(icosphere(1), 4, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("hierarchy-*.npz"))) == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_default_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGRAPH_CACHE_DIR", str(tmp_path / "c"))
    assert coarsening.default_cache_dir() == tmp_path / "c"
    MeshHierarchy.build(icosphere(1), 2, cache_dir=True)
    assert len(list((tmp_path / "c").glob("hierarchy-*.npz"))) == 1


def test_corrupt_cache_is_rebuilt_with_warning(tmp_path):
    mesh = icosphere(2)
    MeshHierarchy.build(mesh, 3, cache_dir=tmp_path)
    (path,) = tmp_path.glob("hierarchy-*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unusable"):
        h = MeshHierarchy.build(mesh, 3, cache_dir=tmp_path)
    assert h.sizes == MeshHierarchy.build(mesh, 3).sizes
    # and the file was rewritten and is valid again
    assert MeshHierarchy.load(path).sizes == h.sizes


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no hierarchy file"):
        MeshHierarchy.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a meshgraph hierarchy"):
        MeshHierarchy.load(other)
    path = tmp_path / "h.npz"
    MeshHierarchy.build(icosphere(1), 3).save(path)
    with pytest.raises(ValueError, match="does not match"):
        MeshHierarchy.load(path, topology=icosphere(2))
    with pytest.raises(ValueError, match="another graph"):
        MeshHierarchy.load(path, expected_key="0" * 64)
