"""meshgraph.geometry: the frame of a set of joints (the other functions are tested where they
were written first: test_models, data/test_camera, test_losses, bodies/test_base)."""

from __future__ import annotations

import torch

from meshgraph.geometry import axis_angle_to_matrix, frame_from_joints
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
