from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from meshgraph.generators import grid_mesh, icosphere, icosphere_vertices_faces, torus_mesh
from meshgraph.mesh import (
    GraphTopology,
    MeshTopology,
    check_vertices,
    sparse_csr_tensor,
    sparse_product,
)
from tests.helpers import dense_adjacency_from_faces, dense_normalized_laplacian

TWO_TRIANGLES = [[0, 1, 2], [0, 2, 3]]


# --------------------------------------------------------------------- construction
def test_two_triangles_by_hand():
    mesh = MeshTopology(TWO_TRIANGLES)
    assert mesh.num_vertices == 4
    assert mesh.num_faces == 2
    assert mesh.num_edges == 5
    assert not mesh.has_self_loops
    assert mesh.edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [2, 3]]
    assert mesh.degree.tolist() == [3.0, 2.0, 3.0, 2.0]
    expected = {(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)}
    got = {tuple(e) for e in mesh.edge_index.t().tolist()}
    assert got == expected | {(j, i) for i, j in expected}
    assert torch.all(mesh.edge_weight == 1)
    assert mesh.faces.dtype == torch.int64 and mesh.faces.shape == (2, 3)


@pytest.mark.parametrize(
    "make", [lambda f: f, np.asarray, torch.tensor, lambda f: torch.tensor(f).int()]
)
def test_faces_input_types(make):
    mesh = MeshTopology(make(TWO_TRIANGLES))
    assert mesh.faces.tolist() == TWO_TRIANGLES


def test_laplacian_matches_dense_reference():
    v, f = icosphere_vertices_faces(2)
    mesh = MeshTopology(f)
    w = dense_adjacency_from_faces(f, len(v))
    np.testing.assert_array_equal(mesh.adjacency.toarray(), w)
    lap_ref = dense_normalized_laplacian(w)
    np.testing.assert_allclose(mesh.laplacian_scipy().toarray(), lap_ref, atol=1e-14)
    np.testing.assert_allclose(
        mesh.laplacian(torch.float64).to_dense().numpy(), lap_ref, atol=1e-14
    )
    lam_ref = np.linalg.eigvalsh(lap_ref)[-1]
    assert mesh.lambda_max == pytest.approx(lam_ref, rel=1e-12)
    eye = np.eye(len(v))
    np.testing.assert_allclose(
        mesh.scaled_laplacian(dtype=torch.float64).to_dense().numpy(),
        2 * lap_ref / lam_ref - eye,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        mesh.scaled_laplacian("pose2mesh", dtype=torch.float64).to_dense().numpy(),
        lap_ref / (2 * lam_ref) - eye,
        atol=1e-12,
    )


def test_lambda_max_large_graph_uses_sparse_solver_and_is_deterministic():
    mesh = torus_mesh(30, 40)  # 1200 vertices: beyond the dense threshold
    lam_ref = np.linalg.eigvalsh(dense_normalized_laplacian(mesh.adjacency.toarray()))[-1]
    assert mesh.lambda_max == pytest.approx(lam_ref, rel=1e-7)
    assert torus_mesh(30, 40).lambda_max == mesh.lambda_max


def test_scaled_laplacian_spectrum_textbook_in_unit_interval():
    mesh = grid_mesh(6, 7)
    ev = np.linalg.eigvalsh(mesh.scaled_laplacian_scipy().toarray())
    assert ev.min() >= -1 - 1e-12 and ev.max() <= 1 + 1e-12
    assert ev.max() == pytest.approx(1.0, abs=1e-10)
    ev2 = np.linalg.eigvalsh(mesh.scaled_laplacian_scipy("pose2mesh").toarray())
    assert ev2.min() >= -1 - 1e-12 and ev2.max() <= -0.5 + 1e-12


def test_lambda_max_given_is_used():
    mesh = MeshTopology(TWO_TRIANGLES, lambda_max=2.0)
    assert mesh.lambda_max == 2.0
    lap = mesh.laplacian_scipy().toarray()
    np.testing.assert_allclose(mesh.scaled_laplacian_scipy().toarray(), lap - np.eye(4))


def test_isolated_vertex_gets_identity_row_and_components_are_fine():
    # two separate triangles and an isolated vertex 6
    mesh = MeshTopology([[0, 1, 2], [3, 4, 5]], num_vertices=7)
    lap = mesh.laplacian_scipy().toarray()
    row = np.zeros(7)
    row[6] = 1.0
    np.testing.assert_array_equal(lap[6], row)
    np.testing.assert_array_equal(lap[:, 6], row)
    np.testing.assert_allclose(lap, dense_normalized_laplacian(mesh.adjacency.toarray()))
    assert mesh.degree[6] == 0
    # every row stores its diagonal (the isolated one included)
    csr = mesh.laplacian_scipy()
    assert all(i in csr.indices[csr.indptr[i] : csr.indptr[i + 1]] for i in range(7))


def test_graph_topology_self_loops_and_weights():
    w = np.array([[2.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.0, 3.0, 1.0]])
    g = GraphTopology(w)
    assert g.has_self_loops
    assert g.num_edges == 2
    np.testing.assert_allclose(g.degree.numpy(), w.sum(1))
    np.testing.assert_allclose(g.laplacian_scipy().toarray(), dense_normalized_laplacian(w))
    assert g.lambda_max == pytest.approx(np.linalg.eigvalsh(dense_normalized_laplacian(w))[-1])
    # (2, E) edge_index with weights reproduces W
    rebuilt = GraphTopology.from_edge_index(g.edge_index, 3, g.edge_weight)
    np.testing.assert_allclose(rebuilt.adjacency.toarray(), w)


def test_weighted_adjacency_tensor():
    w = np.array([[1.0, 2.0, 0.0], [2.0, 0.0, 0.5], [0.0, 0.5, 0.0]])
    g = GraphTopology(w)
    t = g.weighted_adjacency(torch.float64)
    assert t.layout == torch.sparse_csr
    np.testing.assert_array_equal(t.to_dense().numpy(), w)
    assert g.weighted_adjacency() is g.weighted_adjacency()  # cached


def test_only_self_loops_gives_minus_identity():
    g = GraphTopology(np.eye(3) * 4.0)
    assert g.lambda_max == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(g.scaled_laplacian_scipy().toarray(), -np.eye(3))


@pytest.mark.parametrize(
    ("adjacency", "error", "match"),
    [
        (np.zeros((2, 3)), ValueError, "square"),
        (np.array([[0, 1], [0, 0]]), ValueError, "symmetric"),
        (np.array([[0, -1], [-1, 0]]), ValueError, "non-negative"),
        (np.array([[0, np.nan], [np.nan, 0]]), ValueError, "non-finite"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
        (np.zeros((0, 0)), ValueError, "no vertices"),
    ],
)
def test_graph_topology_bad_input(adjacency, error, match):
    with pytest.raises(error, match=match):
        GraphTopology(adjacency)


def test_from_edge_index_errors():
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        GraphTopology.from_edge_index(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        GraphTopology.from_edge_index(torch.tensor([[0, 5], [5, 0]]), num_vertices=3)
    with pytest.raises(ValueError, match="negative"):
        GraphTopology.from_edge_index(torch.tensor([[0, -1], [-1, 0]]))
    with pytest.raises(TypeError, match="integer"):
        GraphTopology.from_edge_index(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


# --------------------------------------------------------------------- bad faces
@pytest.mark.parametrize(
    ("faces", "kwargs", "error", "match"),
    [
        ([[0, 1, 5]], {"num_vertices": 4}, ValueError, r"index 5, out of range for 4.*face 0"),
        ([[0, 1, 2], [0, -1, 2]], {}, ValueError, r"negative.*face 1"),
        ([[0, 1, 2], [3, 3, 2]], {}, ValueError, r"degenerate.*face 1 = \[3, 3, 2\]"),
        ([[0, 1, 2, 3]], {}, ValueError, r"shape \(F, 3\), got \(1, 4\)"),
        ([0, 1, 2], {}, ValueError, r"shape \(F, 3\), got \(3,\)"),
        (np.zeros((0, 3), dtype=np.int64), {}, ValueError, "empty"),
        ([], {}, ValueError, r"shape \(F, 3\)"),
        ([[0.0, 1.0, 2.0]], {}, TypeError, "integer"),
        (torch.tensor([[0.0, 1.0, 2.0]]), {}, TypeError, "integer"),
        (torch.tensor([[True, False, True]]), {}, TypeError, "integer"),
        ([[0, 1, 2]], {"num_vertices": 0}, ValueError, "positive"),
        ([[0, 1, 2]], {"num_vertices": 2.5}, TypeError, "num_vertices"),
    ],
)
def test_bad_faces(faces, kwargs, error, match):
    with pytest.raises(error, match=match):
        MeshTopology(faces, **kwargs)


def test_pyg_layout_faces_get_a_hint():
    faces = torch.tensor([[0, 0], [1, 2], [2, 3]])  # (3, F) as PyG keeps them
    with pytest.raises(ValueError, match="PyG"):
        MeshTopology(faces.repeat(1, 2))


# --------------------------------------------------------------------- geometry
def _naive_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    out = np.zeros((len(f), 3))
    for i, (a, b, c) in enumerate(f):
        n = np.cross(v[b] - v[a], v[c] - v[a])
        out[i] = n / np.linalg.norm(n)
    return out


def test_face_normals_and_edge_lengths_match_loops(dtype, device):
    v, f = icosphere_vertices_faces(1)
    mesh = MeshTopology(f).to(device)
    verts = torch.tensor(v, dtype=dtype, device=device)
    n = mesh.face_normals(verts)
    assert n.shape == (len(f), 3) and n.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(n.cpu().double().numpy(), _naive_normals(v, f), atol=tol)
    # outward normals on a sphere: the normal points along the face centre
    centres = v[f].mean(axis=1)
    assert np.all(np.einsum("ij,ij->i", n.cpu().double().numpy(), centres) > 0)
    lengths = mesh.edge_lengths(verts).cpu().double().numpy()
    # columns: corners 0-1, 0-2, 1-2 (the losses' order)
    ref = np.stack(
        [np.linalg.norm(v[f[:, b]] - v[f[:, a]], axis=1) for a, b in ((0, 1), (0, 2), (1, 2))],
        axis=1,
    )
    np.testing.assert_allclose(lengths, ref, atol=tol)
    raw = mesh.face_normals(verts, normalize=False).cpu().double().numpy()
    areas = 0.5 * np.linalg.norm(raw, axis=1)
    # Heron's formula, independent of the cross product
    a, b, c = ref.T
    s = (a + b + c) / 2
    np.testing.assert_allclose(areas, np.sqrt(s * (s - a) * (s - b) * (s - c)), rtol=1e-4)


def test_batched_geometry_equals_per_sample():
    v, f = icosphere_vertices_faces(1)
    mesh = MeshTopology(f)
    batch = torch.randn(4, len(v), 3, dtype=torch.float64)
    n = mesh.face_normals(batch)
    e = mesh.edge_lengths(batch)
    assert n.shape == (4, len(f), 3) and e.shape == (4, len(f), 3)
    for b in range(4):
        torch.testing.assert_close(n[b], mesh.face_normals(batch[b]))
        torch.testing.assert_close(e[b], mesh.edge_lengths(batch[b]))


def test_degenerate_face_geometry_gives_zero_normal():
    mesh = MeshTopology([[0, 1, 2]])
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])  # collinear
    assert torch.equal(mesh.face_normals(v), torch.zeros(1, 3))


@pytest.mark.parametrize(
    ("verts", "error", "match"),
    [
        (torch.zeros(3, 3), ValueError, "has 3 vertices"),
        (torch.zeros(4, 2), ValueError, r"\(V, 3\)"),
        (torch.zeros(2, 2, 4, 3), ValueError, r"\(B, V, 3\)"),
        (torch.zeros(4, 3, dtype=torch.long), TypeError, "floating"),
        (
            torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, float("nan"), 0], [0, 0, 1]]),
            ValueError,
            "NaN",
        ),
        (
            torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, float("inf")]]),
            ValueError,
            r"\(3, 2\)",
        ),
        (np.zeros((4, 3)), TypeError, "torch.Tensor"),
    ],
)
def test_bad_vertices(verts, error, match):
    mesh = MeshTopology(TWO_TRIANGLES)
    with pytest.raises(error, match=match):
        mesh.face_normals(verts)
    with pytest.raises(error, match=match):
        mesh.edge_lengths(verts)


def test_check_vertices_returns_batched_view():
    v = torch.zeros(5, 3)
    assert check_vertices(v, 5).shape == (1, 5, 3)


def test_geometry_is_differentiable():
    v, f = icosphere_vertices_faces(0)
    mesh = MeshTopology(f)
    verts = torch.tensor(v, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: mesh.face_normals(x), (verts,))
    assert torch.autograd.gradcheck(lambda x: mesh.edge_lengths(x), (verts,))


# --------------------------------------------------------------------- interop and device
def test_pyg_data_roundtrip():
    from torch_geometric.data import Data

    v, f = icosphere_vertices_faces(1)
    mesh = MeshTopology(f)
    data = mesh.to_data(pos=torch.tensor(v, dtype=torch.float32))
    assert data.face.shape == (3, len(f))
    assert data.num_nodes == len(v)
    assert data.edge_index.shape == (2, 2 * mesh.num_edges)
    back = MeshTopology.from_data(data)
    assert torch.equal(back.faces, mesh.faces)
    # a PyG Data with an isolated trailing vertex keeps its vertex count
    data2 = Data(face=torch.tensor([[0], [1], [2]]), num_nodes=5)
    assert MeshTopology.from_data(data2).num_vertices == 5
    with pytest.raises(ValueError, match="no 'face'"):
        MeshTopology.from_data(Data(num_nodes=3))
    with pytest.raises(ValueError, match=r"\(3, F\)"):
        MeshTopology.from_data(Data(face=torch.zeros(4, 2, dtype=torch.long), num_nodes=4))


def test_pyg_face_to_edge_agrees_and_faceless_data_points_to_graphs():
    from torch_geometric.data import Data
    from torch_geometric.transforms import FaceToEdge

    v, f = icosphere_vertices_faces(1)
    mesh = MeshTopology(f)
    data = Data(pos=torch.tensor(v, dtype=torch.float32), face=torch.tensor(f).t().contiguous())
    edges = FaceToEdge(remove_faces=True)(data)  # PyG's own edges of the faces, faces dropped
    key = lambda ei: sorted(map(tuple, ei.t().tolist()))  # noqa: E731
    assert key(edges.edge_index) == key(mesh.edge_index)
    with pytest.raises(ValueError, match=r"no 'face'.*GraphTopology\.from_edge_index"):
        MeshTopology.from_data(edges)
    graph = GraphTopology.from_edge_index(edges.edge_index, edges.num_nodes)
    assert torch.equal(graph.laplacian().to_dense(), mesh.laplacian().to_dense())


def test_trimesh_interop():
    trimesh = pytest.importorskip("trimesh")
    tm = trimesh.creation.icosphere(subdivisions=2)
    mesh = MeshTopology.from_trimesh(tm)
    assert mesh.num_vertices == len(tm.vertices)
    assert mesh.num_edges == len(tm.edges_unique)
    ref = np.sort(np.asarray(tm.edges_unique), axis=1)
    ref = ref[np.lexsort((ref[:, 1], ref[:, 0]))]
    np.testing.assert_array_equal(mesh.edges.numpy(), ref)
    n = mesh.face_normals(torch.tensor(tm.vertices))
    np.testing.assert_allclose(n.numpy(), tm.face_normals, atol=1e-10)


def test_to_device_returns_copy_with_moved_tensors(device):
    mesh = MeshTopology(TWO_TRIANGLES)
    moved = mesh.to(device)
    assert moved is not mesh
    assert moved.device == device and mesh.device == torch.device("cpu")
    assert moved.faces.device.type == device.type
    assert moved.edge_index.device.type == device.type
    assert moved.scaled_laplacian().device.type == device.type
    assert moved.lambda_max == mesh.lambda_max
    assert "device=" in repr(moved)


def test_sparse_csr_tensor_matches_scipy():
    m = sp.random(6, 5, density=0.4, random_state=0, format="coo")
    t = sparse_csr_tensor(m, dtype=torch.float64)
    assert t.layout == torch.sparse_csr
    np.testing.assert_allclose(t.to_dense().numpy(), m.toarray())


def test_repr_mentions_sizes():
    assert repr(grid_mesh(3, 3)).startswith("MeshTopology(num_vertices=9, num_faces=8")
    assert "self_loops=True" in repr(GraphTopology(np.eye(2)))


def test_generators_sizes():
    assert [icosphere(k).num_vertices for k in range(4)] == [12, 42, 162, 642]
    ico = icosphere(3)
    assert ico.num_edges == 3 * ico.num_faces // 2  # closed manifold
    tor = torus_mesh(5, 6)
    assert torch.all(tor.degree == 6)
    with pytest.raises(ValueError):
        grid_mesh(1, 5)
    with pytest.raises(ValueError):
        torus_mesh(2, 5)
    with pytest.raises(ValueError):
        icosphere(-1)


def test_to_networkx_against_networkx_own_graph_functions():
    import networkx as nx

    from meshgraph import MeshHierarchy

    mesh = MeshTopology(icosphere_vertices_faces(1)[1], num_vertices=44)  # two isolated
    g = mesh.to_networkx()
    assert g.number_of_nodes() == 44 and g.number_of_edges() == mesh.num_edges == 120
    assert nx.number_connected_components(g) == 3
    faces = mesh.faces.tolist()
    assert all(g.has_edge(a, b) and g.has_edge(b, c) and g.has_edge(c, a) for a, b, c in faces)
    coarse = MeshHierarchy.build(mesh, 3).topologies[2]  # weighted, with self-loops
    gc = coarse.to_networkx()
    assert nx.number_of_selfloops(gc) == int(np.count_nonzero(coarse.adjacency.diagonal()))
    # networkx counts a self-loop twice in a weighted degree; W_ii once in ours
    deg = dict(gc.degree(weight="weight"))
    loops = coarse.adjacency.diagonal()
    np.testing.assert_allclose([deg[i] - loops[i] for i in range(coarse.num_vertices)],
                               coarse.degree.double().numpy(), rtol=1e-6)  # fmt: skip
    back = nx.to_scipy_sparse_array(gc, nodelist=range(gc.number_of_nodes()), weight="weight")
    np.testing.assert_array_equal(back.toarray(), coarse.adjacency.toarray())


def test_sparse_product_and_its_gradient_match_dense_float64():
    m = sp.random(7, 5, density=0.4, random_state=np.random.default_rng(3), format="csr")
    dense = torch.from_numpy(m.toarray())
    csr, csr_t = (sparse_csr_tensor(a, dtype=torch.float64) for a in (m, m.T))
    rows = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    out = sparse_product(csr, csr_t, rows)
    np.testing.assert_allclose(out.detach().numpy(), m.toarray() @ rows.detach().numpy())
    grad = torch.randn(7, 4, dtype=torch.float64)
    out.backward(grad)
    np.testing.assert_allclose(rows.grad.numpy(), (dense.T @ grad).numpy(), rtol=1e-12)
    assert torch.autograd.gradcheck(lambda r: sparse_product(csr, csr_t, r), (rows,))
