"""meshgraph.geometry: the frame of a set of joints (the other functions are tested where they
were written first: test_models, data/test_camera, test_losses, bodies/test_base)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.generators import icosphere_vertices_faces
from meshgraph.geometry import axis_angle_to_matrix, frame_from_joints, mirror_permutation
from meshgraph.models import joint_frame


def test_frame_from_joints_by_hand():
    joints = torch.tensor([[[0.0, 0, 0], [0, 0, 2], [1, 0, 0.5], [-1, 0, 0.5]]])
    r = frame_from_joints(joints, up=(0, 1), side=(3, 2))
    # side: -1 -> 1 along x; up: +z; third: x cross z = -y
    torch.testing.assert_close(r[0], torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]))


def test_frame_from_joints_is_a_rotation_that_turns_with_the_joints():
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(8, 5, 3, generator=g, dtype=torch.float64)
    r = frame_from_joints(joints, up=(0, 1), side=(2, 3))
    eye = torch.eye(3, dtype=torch.float64).expand(8, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(8, dtype=torch.float64))
    q = axis_angle_to_matrix(torch.randn(8, 3, generator=g, dtype=torch.float64))
    turned = frame_from_joints(joints @ q.transpose(1, 2), up=(0, 1), side=(2, 3))
    torch.testing.assert_close(turned, q @ r)


def test_degenerate_side_falls_back_to_a_perpendicular():
    joints = torch.tensor([[[0.0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3]]])  # side parallel to up
    r = frame_from_joints(joints, up=(0, 1), side=(2, 3))
    torch.testing.assert_close(r[0].T @ r[0], torch.eye(3))
    assert torch.isfinite(r).all()


def test_joint_frame_names_the_joints_of_each_set():
    g = torch.Generator().manual_seed(1)
    joints = torch.randn(3, 19, 3, generator=g)
    # COCO-19: pelvis 17, neck 18, right hip 12, left hip 11
    torch.testing.assert_close(
        joint_frame(joints, "coco"), frame_from_joints(joints, up=(17, 18), side=(12, 11))
    )


def test_mirror_permutation_pairs_each_vertex_with_its_mirror_image():
    # by hand: two mirrored pairs and a vertex on the plane, in a shuffled order
    v = torch.tensor([[0.3, 1.0, 0.0], [0.0, 2.0, 1.0], [-0.5, 0.0, 0.2], [-0.3, 1.0, 0.0],
                      [0.5, 0.0, 0.2]])  # fmt: skip
    assert mirror_permutation(v).tolist() == [3, 1, 4, 0, 2]
    # along another axis, the plane elsewhere (through the centroid)
    moved = v[:, [1, 0, 2]] + torch.tensor([2.0, -3.0, 1.0])
    assert mirror_permutation(moved, axis=1).tolist() == [3, 1, 4, 0, 2]
    # an icosphere (symmetric across x = 0): against a brute-force float64 search
    pts, _ = icosphere_vertices_faces(2)
    perm = mirror_permutation(torch.from_numpy(pts)).numpy()
    for i, p in enumerate(pts):
        q = p * np.array([-1.0, 1.0, 1.0])
        j = min(range(len(pts)), key=lambda k: float(np.sum((pts[k] - q) ** 2)))
        assert perm[i] == j
    assert (perm[perm] == np.arange(len(pts))).all()


def test_mirror_permutation_refuses_meshes_that_are_not_symmetric():
    # centroid x 0.1: the pair at x = +-0.3 lands at -0.1 and 0.5 (0.2 from each other), the
    # lone vertex at x = -0.1, 0.4 from itself
    v = torch.tensor([[0.3, 1.0, 0.0], [-0.3, 1.0, 0.0], [0.3, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"not mirror symmetric along axis 0: vertex 2 .* 0\.4 "):
        mirror_permutation(v, atol=0.3)
    assert mirror_permutation(v, atol=0.45).tolist() == [1, 0, 2]  # the tolerance decides
    # two vertices on one spot: not one-to-one
    twin = torch.tensor([[0.3, 0.0, 0.0], [0.3, 0.0, 0.0], [-0.3, 0.0, 0.0], [-0.3, 0.0, 0.0]])
    with pytest.raises(ValueError, match="not one-to-one"):
        mirror_permutation(twin)
    with pytest.raises(ValueError, match=r"shape \(V, 3\)"):
        mirror_permutation(torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="axis must be"):
        mirror_permutation(v, axis=3)
    bad = v.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mirror_permutation(bad)
