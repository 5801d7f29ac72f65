"""Joint sets: names, bones, left/right flip pairs, root, and the MeshNet joint graph.

Four sets; the first three in the orders Pose2Mesh uses:

* ``"coco"`` (19): the 17 COCO keypoints, then ``pelvis`` (mid-hips) and ``neck``
  (mid-shoulders). Root: pelvis.
* ``"body29"`` (29): COCO-19, then per side (left before right) the heel, the tip of the big
  toe, and on the hand the knuckles (MCP joints) of the index, the pinky and the thumb: the
  extra landmarks of mediapipe BlazePose, which other detectors share in part
  (OpenPose BODY_25, Halpe-26 and COCO-WholeBody have the feet; COCO-WholeBody the hands).
  They show which way the feet and hands turn, which COCO's ankles and wrists cannot. Root:
  pelvis.
* ``"h36m"`` (17): Human3.6M's Pelvis, R_Hip, R_Knee, R_Ankle, L_Hip, L_Knee, L_Ankle, Torso,
  Neck, Nose, Head, L_Shoulder, L_Elbow, L_Wrist, R_Shoulder, R_Elbow, R_Wrist. Root: Pelvis.
* ``"hand"`` (21): the wrist, then thumb, index, middle, ring and pinky, four joints each from
  the base to the fingertip. Root: wrist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from meshgraph.keypoint_formats import BODY29_EXTRA_NAMES
from meshgraph.mesh import GraphTopology

__all__ = [
    "BODY29",
    "COCO",
    "H36M",
    "HAND",
    "JOINT_SETS",
    "JointSet",
    "extra_joints",
    "get_joint_set",
    "joint_graph",
]


@dataclass(frozen=True)
class JointSet:
    """A named, ordered set of joints with its skeleton.

    Attributes:
        name: Identifier (``"coco"``, ``"body29"``, ``"h36m"``, ``"hand"``).
        names: Joint names, in order.
        bones: Pairs of joint indices joined by a bone.
        flip_pairs: Left/right counterpart pairs (swapped by a horizontal flip).
        root: Index of the root joint (root-relative coordinates, MPJPE alignment).
        links: Extra joint-graph edges beyond bones and flip pairs (for the hand: the
            same-level joints of neighbouring fingers; for Body-29: heel to toe and between
            the knuckles of one hand).
    """

    name: str
    names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    root: int = 0
    links: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(set(self.names)) != n:
            raise ValueError(f"joint set {self.name!r} has duplicate joint names")
        for kind, pairs in (("bone", self.bones), ("flip pair", self.flip_pairs),
                            ("link", self.links)):  # fmt: skip
            for a, b in pairs:
                if not (0 <= a < n and 0 <= b < n) or a == b:
                    raise ValueError(f"joint set {self.name!r}: bad {kind} ({a}, {b})")
        if not 0 <= self.root < n:
            raise ValueError(f"joint set {self.name!r}: root {self.root} out of range")

    @property
    def num_joints(self) -> int:
        """Number of joints."""
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"joint set {self.name!r} has no joint {name!r}") from None

    def extends(self, other: JointSet) -> bool:
        """Whether this set starts with ``other``'s joints, in its order (Body-29 extends COCO-19).

        Example:
            >>> BODY29.extends(COCO), COCO.extends(BODY29), COCO.extends(COCO)
            (True, False, True)
        """
        return self.names[: other.num_joints] == other.names

    def anchors(self, count: int) -> list[int]:
        """For each joint from index ``count`` on, a joint below ``count`` it shares a bone with.

        Where a joint set extends another (Body-29's ten joints after COCO-19's 19), this is
        the old joint each new one hangs from: Body-29's heels and toes hang from the ankles,
        its knuckles and thumbs from the wrists. A joint with no such bone gets the root.

        Example:
            >>> BODY29.anchors(19)[:4]  # left heel, right heel, left toe, right toe
            [15, 16, 15, 16]
        """
        out = []
        for j in range(count, self.num_joints):
            partners = [a if b == j else b for a, b in self.bones if j in (a, b)]
            out.append(next((p for p in partners if p < count), self.root))
        return out

    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left/right pair (apply after mirroring x)."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "pelvis", "neck",
)  # fmt: skip
#: COCO-19: the 17 COCO keypoints + pelvis (mid-hips) + neck (mid-shoulders).
COCO = JointSet(
    name="coco",
    names=_COCO_NAMES,
    bones=(
        (1, 2),
        (0, 1),
        (0, 2),
        (2, 4),
        (1, 3),  # face
        (6, 8),
        (8, 10),
        (5, 7),
        (7, 9),  # arms
        (12, 14),
        (14, 16),
        (11, 13),
        (13, 15),  # legs
        (17, 11),
        (17, 12),
        (17, 18),
        (18, 5),
        (18, 6),
        (18, 0),  # pelvis, neck
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    root=17,
)

#: Body-29: COCO-19, then heels, big-toe tips, index and pinky knuckles and thumbs (left, right).
BODY29 = JointSet(
    name="body29",
    names=_COCO_NAMES + BODY29_EXTRA_NAMES,
    bones=(
        *COCO.bones,
        (15, 19),
        (16, 20),  # ankle - heel
        (15, 21),
        (16, 22),  # ankle - big toe
        (9, 23),
        (10, 24),  # wrist - index knuckle
        (9, 25),
        (10, 26),  # wrist - pinky knuckle
        (9, 27),
        (10, 28),  # wrist - thumb
    ),
    flip_pairs=(*COCO.flip_pairs, *((19 + 2 * k, 20 + 2 * k) for k in range(5))),
    root=17,
    links=((19, 21), (20, 22), (23, 25), (24, 26), (23, 27), (24, 28)),
)

_H36M_NAMES = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
    "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
)  # fmt: skip
#: Human3.6M-17.
H36M = JointSet(
    name="h36m",
    names=_H36M_NAMES,
    bones=(
        (0, 1),
        (1, 2),
        (2, 3),
        (0, 4),
        (4, 5),
        (5, 6),
        (0, 7),
        (7, 8),
        (8, 9),
        (9, 10),
        (8, 11),
        (11, 12),
        (12, 13),
        (8, 14),
        (14, 15),
        (15, 16),
    ),
    flip_pairs=((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)),
    root=0,
)

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_HAND_NAMES = ("wrist", *(f"{f}_{k}" for f in _FINGERS for k in range(1, 5)))
_HAND_BONES = tuple(
    pair
    for f in range(5)
    for pair in (
        (0, 1 + 4 * f),
        (1 + 4 * f, 2 + 4 * f),
        (2 + 4 * f, 3 + 4 * f),
        (3 + 4 * f, 4 + 4 * f),
    )
)
#: Hand-21: wrist, then 4 joints per finger (thumb to pinky), base to tip.
HAND = JointSet(
    name="hand",
    names=_HAND_NAMES,
    bones=_HAND_BONES,
    root=0,
    links=tuple((1 + 4 * f + k, 1 + 4 * (f + 1) + k) for f in range(4) for k in range(4)),
)

#: All joint sets by name.
JOINT_SETS: dict[str, JointSet] = {j.name: j for j in (COCO, BODY29, H36M, HAND)}


def get_joint_set(name: str | JointSet) -> JointSet:
    """Look a joint set up by name (``"coco"``, ``"body29"``, ``"h36m"``, ``"hand"``).

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    if isinstance(name, JointSet):
        return name
    key = str(name).lower()
    if key not in JOINT_SETS:
        raise ValueError(f"unknown joint set {name!r}; known: {sorted(JOINT_SETS)}")
    return JOINT_SETS[key]


def joint_graph(joint_set: str | JointSet, *, self_loops: bool = True) -> GraphTopology:
    """The graph MeshNet convolves the joints on: bones + flip pairs + links (+ self-loops).

    All edges have weight 1; self-loops (weight 1) are kept, as in Pose2Mesh, and change the
    normalised Laplacian (a self-loop counts in the degree).

    Example:
        >>> g = joint_graph("h36m")
        >>> g.num_vertices, g.num_edges, g.has_self_loops
        (17, 22, True)
    """
    js = get_joint_set(joint_set)
    n = js.num_joints
    pairs = np.array(list(js.bones) + list(js.flip_pairs) + list(js.links), dtype=np.int64)
    w = sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    w = w + w.T
    if self_loops:
        w = w + sp.identity(n, format="csr")
    w = w.tocsr()
    w.data[:] = 1.0
    return GraphTopology(w)


def extra_joints(joint_set: str | JointSet) -> list[int]:
    """The joints of a body joint set beyond COCO-19, which a COCO-17 detector does not give.

    Body-29's heels, big toes, knuckles and thumbs; none for COCO-19 itself, and none for a
    joint set that does not hold all of COCO-19 (Human3.6M-17, the hand).

    Args:
        joint_set: A joint set or its name.

    Returns:
        Their indices, in order.

    Example:
        >>> extra_joints("body29")[:2], len(extra_joints("body29")), extra_joints("coco")
        ([19, 20], 10, [])
    """
    js = get_joint_set(joint_set)
    if not set(COCO.names) <= set(js.names):
        return []
    return [i for i, name in enumerate(js.names) if name not in COCO.names]
