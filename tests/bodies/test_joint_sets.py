from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.bodies import COCO, H36M, HAND, JointSet, get_joint_set, joint_graph
from meshgraph.nn import MeshChebConv


def test_sizes_roots_and_orders():
    assert COCO.num_joints == 19 and COCO.names[17:] == ("pelvis", "neck")
    assert COCO.names[COCO.root] == "pelvis"
    assert H36M.num_joints == 17 and len(H36M.bones) == 16 and len(H36M.flip_pairs) == 6
    assert H36M.names[H36M.root] == "Pelvis"
    assert HAND.num_joints == 21 and HAND.names[HAND.root] == "wrist"
    assert HAND.names[1:5] == ("thumb_1", "thumb_2", "thumb_3", "thumb_4")
    assert HAND.names[17:] == ("pinky_1", "pinky_2", "pinky_3", "pinky_4")


@pytest.mark.parametrize("js", [COCO, H36M, HAND])
def test_skeleton_connects_every_joint(js):
    import scipy.sparse as sp
    import scipy.sparse.csgraph as cg

    e = np.array(js.bones)
    adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(js.num_joints,) * 2)
    assert cg.connected_components(adj, directed=False)[0] == 1


def test_flip_pairs_are_left_right():
    for js in (COCO, H36M):
        for a, b in js.flip_pairs:
            na, nb = js.names[a].lower(), js.names[b].lower()
            assert {na[:2], nb[:2]} in ({"l_", "r_"}, {"le", "ri"})
            assert na.split("_", 1)[1] == nb.split("_", 1)[1]
    perm = H36M.flip_permutation()
    assert perm[1] == 4 and perm[4] == 1 and perm[0] == 0
    assert np.array_equal(perm[perm], np.arange(17))


def test_lookup_and_errors():
    assert get_joint_set("H36M") is H36M
    assert get_joint_set(HAND) is HAND
    assert H36M.index("Neck") == 8
    with pytest.raises(ValueError, match="known"):
        get_joint_set("mpii")
    with pytest.raises(KeyError, match="Hip"):
        H36M.index("Hip")
    with pytest.raises(ValueError, match="bad bone"):
        JointSet("x", ("a", "b"), ((0, 2),))
    with pytest.raises(ValueError, match="duplicate"):
        JointSet("x", ("a", "a"), ())


def test_joint_graphs():
    g = joint_graph("h36m")
    w = g.adjacency.toarray()
    assert np.all(np.diag(w) == 1)
    expected = {tuple(sorted(p)) for p in H36M.bones + H36M.flip_pairs}
    got = {(i, j) for i, j in zip(*np.nonzero(np.triu(w, 1)), strict=True)}
    assert got == expected
    hand = joint_graph(HAND)
    assert hand.num_edges == 20 + 16  # bones + same-level links of neighbouring fingers
    assert hand.adjacency[1, 5] == 1 and hand.adjacency[4, 8] == 1 and hand.adjacency[1, 9] == 0
    assert not joint_graph(COCO, self_loops=False).has_self_loops
    conv = MeshChebConv(5, 8, 3, g)
    assert conv(torch.randn(2, 17, 5)).shape == (2, 17, 8)
