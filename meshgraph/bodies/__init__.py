"""Body and hand models, joint sets and joint regressors.

Anny (:class:`AnnyModel`) is the default, licence-free model. SMPL, SMPL-H and MANO work
through smplx with the user's licensed files (:mod:`meshgraph.bodies.smpl`).
"""

from meshgraph.bodies.anny_model import AnnyModel
from meshgraph.bodies.base import BodyModel, axis_angle_to_matrix, fit_joint_regressor
from meshgraph.bodies.joint_sets import (
    BODY29,
    COCO,
    H36M,
    HAND,
    JOINT_SETS,
    JointSet,
    get_joint_set,
    joint_graph,
)
from meshgraph.bodies.registry import (
    create_body,
    parse_body_name,
    register_body,
    registered_bodies,
)
from meshgraph.bodies.smpl import SMPLModel

__all__ = [
    "BODY29",
    "COCO",
    "H36M",
    "HAND",
    "JOINT_SETS",
    "AnnyModel",
    "BodyModel",
    "JointSet",
    "SMPLModel",
    "axis_angle_to_matrix",
    "create_body",
    "fit_joint_regressor",
    "get_joint_set",
    "joint_graph",
    "parse_body_name",
    "register_body",
    "registered_bodies",
]
