"""The dataset protocol: the sample keys that training and evaluation read, with units and frames.

Any map-style dataset whose samples (or batches) carry these keys works with
:func:`~meshgraph.training.evaluate.evaluate` and :func:`check_sample`;
:class:`~meshgraph.data.SyntheticPoseMeshDataset` is one implementation, a loader of real
files is another. ``J`` is the input joint set's size (``dataset.joint_set``), ``J'`` the mesh
joint set's (Human3.6M-17 for bodies, Hand-21 for hands), ``V`` the mesh's vertex count.

Frames and units: 3D quantities are in metres, in *camera axes* (x right, y down, z forward,
OpenCV), and root-relative (the root joint of their joint set at the origin); 2D input is
Pose2Mesh's normalisation of pixel keypoints (:func:`~meshgraph.geometry.normalize_keypoints`).

A dataset may also offer, and the trainer and evaluation use when present:

* ``__getitems__(indices)`` returning a batch dict at once (PyTorch's batched fetching);
* ``set_epoch(epoch)`` (new noise for each epoch);
* ``is_hand`` (F-scores are reported for hands).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from meshgraph.bodies.joint_sets import JointSet

__all__ = [
    "OPTIONAL_KEYS",
    "REQUIRED_KEYS",
    "SAMPLE_KEYS",
    "PoseMeshDataset",
    "SampleKey",
    "check_sample",
    "stack_samples",
]


@dataclass(frozen=True)
class SampleKey:
    """One key of a sample: its shape (per sample), dtype kind and meaning."""

    shape: tuple[str, ...]
    dtype: str
    doc: str


#: Every key a sample may carry. ``J``: input joints, ``J'``: mesh joints, ``V``: vertices.
SAMPLE_KEYS: dict[str, SampleKey] = {
    "keypoints_2d": SampleKey(("J", "2"), "float",
        "network input: normalised 2D joints, 0 where a joint is not visible"),
    "visible": SampleKey(("J",), "bool", "the joints a detector reported"),
    "exact": SampleKey((), "bool",
        "the 2D input is the exact keypoints, not a detector's (Pose2MeshConfig.exactness_input)"),
    "joints_3d": SampleKey(("J", "3"), "float",
        "input joint set in 3D: root-relative, camera axes, metres"),
    "mesh_joints_3d": SampleKey(("J'", "3"), "float",
        "mesh joint set regressed from the mesh: root-relative, camera axes, metres"),
    "vertices": SampleKey(("V", "3"), "float",
        "mesh vertices: root-relative (mesh joints' root), camera axes, metres"),
    "keypoints_2d_pixels": SampleKey(("J", "2"), "float", "the 2D input in pixels"),
    "keypoints_2d_gt": SampleKey(("J", "2"), "float", "the exact 2D joints in pixels"),
    "box": SampleKey(("4",), "float", "normalisation box x0, y0, width, height (pixels)"),
    "root": SampleKey(("3",), "float", "the root joint in camera coordinates (metres)"),
}  # fmt: skip
#: What :func:`~meshgraph.training.evaluate.evaluate` needs.
REQUIRED_KEYS: tuple[str, ...] = ("keypoints_2d", "joints_3d", "mesh_joints_3d", "vertices")
#: Keys used when present.
OPTIONAL_KEYS: tuple[str, ...] = tuple(k for k in SAMPLE_KEYS if k not in REQUIRED_KEYS)


@runtime_checkable
class PoseMeshDataset(Protocol):
    """What training and evaluation need of a dataset: a length, samples, and its joint set."""

    joint_set: JointSet

    def __len__(self) -> int:
        """Number of samples."""
        ...

    def __getitem__(self, index: int) -> Mapping[str, Tensor]:
        """One sample: a dict with (at least) :data:`REQUIRED_KEYS`."""
        ...


def check_sample(
    sample: Mapping[str, Any],
    joint_set: JointSet,
    mesh_joint_set: JointSet | None = None,
    num_vertices: int | None = None,
    *,
    keys: Sequence[str] = REQUIRED_KEYS,
) -> None:
    """Check a sample (or a batch: a leading axis) against the protocol.

    Raises:
        KeyError: A required key is missing (the message lists the keys the protocol needs).
        ValueError: A tensor of the wrong shape, or NaN/inf in a float tensor (named).
        TypeError: A value that is not a tensor, or of the wrong dtype kind.
    """
    missing = [k for k in keys if k not in sample]
    if missing:
        raise KeyError(
            f"the sample has no {missing}; the dataset protocol needs {list(keys)} "
            "(meshgraph.data.protocol.SAMPLE_KEYS says what each holds)"
        )
    sizes = {"J": joint_set.num_joints, "2": 2, "3": 3, "4": 4}
    if mesh_joint_set is not None:
        sizes["J'"] = mesh_joint_set.num_joints
    if num_vertices is not None:
        sizes["V"] = num_vertices
    for key, value in sample.items():
        spec = SAMPLE_KEYS.get(key)
        if spec is None:
            continue
        if not isinstance(value, Tensor):
            raise TypeError(f"sample[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
        if spec.dtype == "bool" and value.dtype != torch.bool:
            raise TypeError(f"sample[{key!r}] must be bool, got {value.dtype}")
        if spec.dtype == "float" and not value.is_floating_point():
            raise TypeError(f"sample[{key!r}] must be floating point, got {value.dtype}")
        want = tuple(sizes.get(s) for s in spec.shape)
        # the trailing dims (none for a per-sample scalar such as ``exact``)
        got = tuple(value.shape[value.dim() - len(want) :]) if value.dim() >= len(want) else ()
        if value.dim() not in (len(want), len(want) + 1) or any(
            w is not None and w != g for w, g in zip(want, got, strict=True)
        ):
            shape = "(" + ", ".join(spec.shape) + ")"
            raise ValueError(
                f"sample[{key!r}] must have shape {shape} (or a batch of them) with "
                f"{', '.join(f'{k} = {v}' for k, v in sizes.items() if k in spec.shape)}, "
                f"got {tuple(value.shape)}"
            )
        if spec.dtype == "float" and not bool(torch.isfinite(value).all()):
            raise ValueError(f"sample[{key!r}] contains NaN or inf")


def stack_samples(dataset: Any, indices: Sequence[int]) -> dict[str, Tensor]:
    """A batch of ``dataset``: its ``__getitems__`` when it has one, else stacked samples."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return getitems(list(indices))
    samples = [dataset[i] for i in indices]
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
