"""Synthetic SMPL, SMPL-H and MANO model files with a humanoid skeleton (tests only).

The licensed model files cannot be part of the tests, so these stand in for them: the real
kinematic trees, joint names and mesh sizes (6,890 and 778 vertices), joints at plausible places
of a T-posed adult (SMPL's convention: y up, facing +z, metres), and a mesh of tubes along the
bones. Each tube is skinned rigidly to the bone it belongs to and the joint regressor averages
the ring of vertices that sits on each joint, so regressing the posed vertices gives exactly the
posed joints. smplx's face-keypoint and MANO fingertip vertex ids are moved onto the head and the
fingertips.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

SEGMENTS = 8  # vertices per ring

# SMPL's 22 body joints (T-pose, y up, facing +z, x = the subject's left).
BODY = {
    "pelvis": ((0.0, 0.0, 0.0), -1),
    "left_hip": ((0.07, -0.09, 0.0), 0),
    "right_hip": ((-0.07, -0.09, 0.0), 0),
    "spine1": ((0.0, 0.11, -0.01), 0),
    "left_knee": ((0.10, -0.47, 0.0), 1),
    "right_knee": ((-0.10, -0.47, 0.0), 2),
    "spine2": ((0.0, 0.24, 0.0), 3),
    "left_ankle": ((0.09, -0.87, -0.04), 4),
    "right_ankle": ((-0.09, -0.87, -0.04), 5),
    "spine3": ((0.0, 0.30, 0.02), 6),
    "left_foot": ((0.11, -0.93, 0.09), 7),
    "right_foot": ((-0.11, -0.93, 0.09), 8),
    "neck": ((0.0, 0.51, -0.01), 9),
    "left_collar": ((0.07, 0.42, 0.0), 9),
    "right_collar": ((-0.07, 0.42, 0.0), 9),
    "head": ((0.0, 0.58, 0.04), 12),
    "left_shoulder": ((0.17, 0.45, -0.02), 13),
    "right_shoulder": ((-0.17, 0.45, -0.02), 14),
    "left_elbow": ((0.43, 0.43, -0.04), 16),
    "right_elbow": ((-0.43, 0.43, -0.04), 17),
    "left_wrist": ((0.68, 0.43, -0.04), 18),
    "right_wrist": ((-0.68, 0.43, -0.04), 19),
}
# fingers of a left hand relative to its wrist (palm down, thumb forward); smplx's order
_FINGER_BASES = {"index": (0.09, 0.0, 0.025), "middle": (0.095, 0.0, 0.005),
                 "pinky": (0.08, 0.0, -0.035), "ring": (0.09, 0.0, -0.015),
                 "thumb": (0.03, -0.01, 0.04)}  # fmt: skip
_FINGER_DIRS = {"thumb": (0.6, 0.0, 0.8)}
_TIPS = {"thumb": 744, "index": 320, "middle": 443, "ring": 554, "pinky": 671}  # MANO
_FACE = {"nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583}


def _hand(side: str, wrist: int, wrist_pos: np.ndarray) -> dict:
    sign = 1.0 if side == "left" else -1.0
    out = {}
    for finger, base in _FINGER_BASES.items():
        d = np.array(_FINGER_DIRS.get(finger, (1.0, 0.0, 0.0)))
        d = d / np.linalg.norm(d) * np.array([sign, 1.0, 1.0])
        pos = wrist_pos + np.array(base) * np.array([sign, 1.0, 1.0])
        parent = wrist
        for k in (1, 2, 3):
            name = f"{side}_{finger}{k}"
            out[name] = (tuple(pos), parent)
            parent = -2  # placeholder: the previous phalanx, resolved by the caller
            pos = pos + 0.03 * d
    return out


def skeleton(kind: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, rest joints (J, 3), parents (J,)) of ``"smpl"``, ``"smplh"`` or ``"mano"``."""
    names = list(BODY)
    pos = [BODY[n][0] for n in names]
    parents = [BODY[n][1] for n in names]
    if kind == "smpl":
        for side, w in (("left", 20), ("right", 21)):
            sign = 1.0 if side == "left" else -1.0
            names.append(f"{side}_hand")
            pos.append(tuple(np.array(pos[w]) + np.array([0.08 * sign, -0.01, -0.01])))
            parents.append(w)
    else:
        for side, w in (("left", 20), ("right", 21)):
            for name, (p, parent) in _hand(side, w, np.array(pos[w])).items():
                parents.append(len(names) - 1 if parent == -2 else parent)
                names.append(name)
                pos.append(p)
        if kind == "mano":  # the right hand alone, wrist at the origin
            keep = [names.index("right_wrist")] + [
                i for i, n in enumerate(names) if n.startswith("right_") and n[-1].isdigit()
            ]
            remap = {old: new for new, old in enumerate(keep)}
            wrist = np.array(pos[keep[0]])
            names = [names[i] for i in keep]
            parents = [-1] + [remap[parents[i]] for i in keep[1:]]
            pos = [tuple(np.array(pos[i]) - wrist) for i in keep]
    return names, np.array(pos, dtype=np.float64), np.array(parents)


def _tube(a: np.ndarray, b: np.ndarray, rings: int, radius: float) -> np.ndarray:
    d = b - a
    d = d / np.linalg.norm(d)
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    t = np.linspace(0.0, 1.0, rings)[:, None, None]
    ang = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    circle = radius * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)
    return a[None, None] + t * (b - a)[None, None] + circle[None]  # (rings, SEGMENTS, 3)


def _shape_modes(verts: np.ndarray, num_betas: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth shape directions: per beta, a random stretch of the mesh about its centre (about
    3 % per unit beta), so that shapes stay humanoid (real betas are smooth too)."""
    centred = verts - verts.mean(0)
    stretch = (
        0.03 * rng.standard_normal((num_betas, 3)) / np.sqrt(np.arange(1, num_betas + 1))[:, None]
    )
    return np.einsum("vc,bc->vcb", centred, stretch)


def build(kind: str, num_betas: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """The model dict (smplx's keys) of a humanoid ``kind`` model."""
    names, joints, parents = skeleton(kind)
    n_verts = 778 if kind == "mano" else 6890
    nj = len(names)
    hand = kind == "mano"
    # tubes: one per bone (parent -> joint, skinned to the parent), one beyond every leaf
    tubes = []
    for j in range(1, nj):
        p = parents[j]
        tubes.append((joints[p], joints[j], p, j))
    children = {p for p in parents[1:]}
    for j in range(nj):
        if j not in children:
            p = parents[j]
            d = joints[j] - joints[p]
            if names[j] == "head":  # the skull goes up from the head joint
                tip = joints[j] + np.array([0.0, 0.15, 0.0])
            else:
                tip = joints[j] + 0.5 * d
            tubes.append((joints[j], tip, j, -1))
    rings = n_verts // (SEGMENTS * len(tubes))
    verts, weights_of, faces, end_ring, start_ring = [], [], [], {}, {}
    for a, b, bone, joint in tubes:
        length = np.linalg.norm(b - a)
        finger = hand or any(f in names[bone] for f in _FINGER_BASES)
        radius = min(0.006 if finger else 0.04, 0.3 * length)
        ring = _tube(a, b, rings, radius).reshape(-1, 3)
        start = len(verts)
        verts.extend(ring)
        weights_of.extend([bone] * len(ring))
        for r in range(rings - 1):
            for s in range(SEGMENTS):
                i0 = start + r * SEGMENTS + s
                i1 = start + r * SEGMENTS + (s + 1) % SEGMENTS
                faces.append((i0, i1, i0 + SEGMENTS))
                faces.append((i1, i1 + SEGMENTS, i0 + SEGMENTS))
        if joint >= 0:
            end_ring[joint] = list(range(start + (rings - 1) * SEGMENTS, start + rings * SEGMENTS))
        start_ring.setdefault(bone, list(range(start, start + SEGMENTS)))
    # the leftover vertices close triangles on the last ring of the tubes, beyond their end
    k = 0
    while len(verts) < n_verts:
        a, b, bone, _ = tubes[k % len(tubes)]
        offset = (k // len(tubes)) % (SEGMENTS - 1)
        first = (k % len(tubes)) * rings * SEGMENTS + (rings - 1) * SEGMENTS + offset
        second = first + 1
        verts.append(b + 0.002 * (offset + 1) * (b - a) / np.linalg.norm(b - a))
        weights_of.append(bone)
        faces.append((first, second, len(verts) - 1))
        k += 1
    verts = np.array(verts)
    jreg = np.zeros((nj, n_verts))
    for j in range(nj):
        ring = end_ring.get(j, start_ring.get(j))
        jreg[j, ring] = 1.0 / len(ring)
    weights = np.zeros((n_verts, nj))
    weights[np.arange(n_verts), weights_of] = 1.0
    faces = np.array(faces, dtype=np.int64)
    # move the keypoint vertex ids onto the head and the fingertips
    place = {}
    if hand:
        for finger, target in _TIPS.items():
            tip = names.index(f"right_{finger}3")
            cand = [i for i, w in enumerate(weights_of) if w == tip]
            place[target] = max(cand, key=lambda i: np.linalg.norm(verts[i] - joints[0]))
    else:
        head = names.index("head")
        cand = np.array([i for i, w in enumerate(weights_of) if w == head])
        c = verts[cand] - joints[head]
        front, side, up = c[:, 2], c[:, 0], c[:, 1]
        picks = {"nose": front, "leye": front + side + up, "reye": front - side + up,
                 "lear": side, "rear": -side}  # fmt: skip
        used: set[int] = set()
        for key, score in picks.items():
            order = cand[np.argsort(-score)]
            place[_FACE[key]] = next(int(i) for i in order if int(i) not in used)
            used.add(place[_FACE[key]])
    perm = np.arange(n_verts)  # new index -> old index
    for target, source in place.items():
        where = int(np.nonzero(perm == source)[0][0])
        perm[target], perm[where] = perm[where], perm[target]
    inverse = np.argsort(perm)
    verts, weights, jreg = verts[perm], weights[perm], jreg[:, perm]
    faces = inverse[faces]
    rng = np.random.default_rng(seed)
    n_pose = 9 * (nj - 1)
    kintree = np.stack([parents, np.arange(nj)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    out = {
        "v_template": verts,
        "shapedirs": _shape_modes(verts, num_betas, rng),
        "posedirs": np.zeros((n_verts, 3, n_pose)),
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces,
    }
    if kind == "mano":
        out["hands_components"] = np.eye(45)
        out["hands_mean"] = np.zeros(45)
    elif kind == "smplh":
        for s in ("l", "r"):
            out[f"hands_components{s}"] = np.eye(45)
            out[f"hands_mean{s}"] = np.zeros(45)
    return out


def write(folder: str | Path, kind: str, num_betas: int = 10) -> Path:
    """Write ``SMPL_NEUTRAL.pkl``, ``SMPLH_NEUTRAL.npz`` or ``MANO_RIGHT.pkl`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = build(kind, num_betas)
    if kind == "smplh":
        path = folder / "SMPLH_NEUTRAL.npz"
        np.savez(path, **data)
        return path
    path = folder / ("SMPL_NEUTRAL.pkl" if kind == "smpl" else "MANO_RIGHT.pkl")
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return path
