"""Trained Pose2Mesh weights that ship inside the package, and the tool that makes them.

``Pose2Mesh.pretrained("body")`` (Body-29 input, Anny's body) and
``Pose2Mesh.pretrained("hand")`` (Hand-21 input, Anny's right hand) load the files of
:data:`PRETRAINED` from ``meshgraph/weights/``. A shipped file is an ordinary
:meth:`~meshgraph.models.Pose2Mesh.save` checkpoint with its floating weights stored as
float16 (half the size; they are cast back to float32 on loading), its largest matrices
optionally as int8 rows (:func:`int8_rows`: a quarter of the size), and a ``pretrained``
record: its name and its provenance (the command and commit that trained it, the seed, the
data configuration, the training time and hardware, and its metrics on the held-out sets).
:func:`meshgraph.training.export.export_pretrained` (``meshgraph export-weights``) writes one
from a finished ``meshgraph train`` run; it lives with the training, which it evaluates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from meshgraph.io import load_torch

__all__ = [
    "PRETRAINED",
    "PROVENANCE_KEYS",
    "from_int8_rows",
    "int8_rows",
    "load_pretrained",
    "pretrained_info",
    "weights_dir",
]

#: The shipped models: file name, input joint set, and the body model they were trained on.
PRETRAINED: dict[str, dict[str, str]] = {
    "body": {"file": "pose2mesh-body.pt", "joint_set": "body29", "body": "anny"},
    "hand": {"file": "pose2mesh-hand.pt", "joint_set": "hand", "body": "anny-hand.R"},
}

#: Keys a provenance record must hold (see :func:`meshgraph.training.export.export_pretrained`).
PROVENANCE_KEYS = ("command", "commit", "seed", "data", "train_seconds", "hardware", "metrics")


def int8_rows(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """A matrix stored as int8 with one float32 scale per row (symmetric, round to nearest).

    Each row is divided by its largest absolute value over 127 and rounded, so every stored
    weight is within half a step (``max |row| / 254``) of its value; a row of zeros stays zero.

    Args:
        weight: ``(R, C)`` floating matrix.

    Returns:
        ``{"values": (R, C) int8, "scale": (R,) float32}`` (:func:`from_int8_rows` inverts it).

    Raises:
        ValueError: For a tensor that is not a finite floating matrix.

    Example:
        >>> w = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]])
        >>> q = int8_rows(w)
        >>> q["values"].tolist(), q["scale"].tolist()
        ([[64, -127, 32], [0, 0, 0]], [0.007874015718698502, 0.0])
    """
    if not (isinstance(weight, torch.Tensor) and weight.is_floating_point() and weight.dim() == 2):
        raise ValueError(
            f"int8_rows stores floating matrices, got {getattr(weight, 'shape', weight)}"
        )
    if not torch.isfinite(weight).all():
        raise ValueError("int8_rows: the matrix holds NaN or infinite values")
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(w / safe[:, None]).clamp(-127, 127).to(torch.int8)
    return {"values": values, "scale": scale}


def from_int8_rows(stored: dict[str, torch.Tensor]) -> torch.Tensor:
    """The float32 matrix of :func:`int8_rows`'s output.

    Raises:
        ValueError: If the entry is not an int8 matrix with one scale per row.
    """
    values, scale = stored.get("values"), stored.get("scale")
    if not (isinstance(values, torch.Tensor) and values.dtype == torch.int8 and values.dim() == 2):
        raise ValueError("an int8-rows entry needs an int8 matrix 'values'")
    if not (isinstance(scale, torch.Tensor) and scale.shape == (values.shape[0],)):
        raise ValueError(f"an int8-rows entry needs one 'scale' per row ({values.shape[0]})")
    return values.float() * scale.float()[:, None]


def weights_dir() -> Path:
    """The folder of the shipped weight files (``meshgraph/weights`` in the installed package)."""
    return Path(__file__).resolve().parent.parent / "weights"


def _entry(name: str) -> dict[str, str]:
    """The :data:`PRETRAINED` entry of ``name``, or a clear error."""
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}: choose one of {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def _body_matches(recorded: str | None, expected: str) -> bool:
    """Anny's body under any topology (``anny``, ``anny-notoes_collapse10pc``), or the hand."""
    if recorded is None:
        return False
    if expected == "anny":
        return recorded == "anny" or (recorded.startswith("anny-") and "hand" not in recorded)
    return recorded == expected or recorded.startswith(expected + "-")


def _read(name: str, directory: str | os.PathLike | None, map_location: Any) -> dict[str, Any]:
    entry = _entry(name)
    path = Path(directory) if directory is not None else weights_dir()
    path = path / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the pretrained {name} weights are missing (this installation of meshgraph "
            f"ships none for {name!r}); train a model with `meshgraph train --kind {name}` and "
            "load it with Pose2Mesh.load"
        )
    ckpt = load_torch(path, what=f"pretrained {name} weight file", map_location=map_location)
    info = ckpt.get("pretrained") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a pretrained meshgraph weight file (no provenance record)")
    if info.get("name") != name:
        raise ValueError(f"{path} holds the {info.get('name')!r} model, not {name!r}")
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    if config.get("joint_set") != entry["joint_set"]:
        raise ValueError(
            f"{path}: the {name} model should take {entry['joint_set']!r} joints, this one "
            f"takes {config.get('joint_set')!r}"
        )
    if not _body_matches(config.get("body"), entry["body"]):
        raise ValueError(
            f"{path}: the {name} model should be trained on {entry['body']!r}, this one was "
            f"trained on {config.get('body')!r}"
        )
    return {"path": path, "ckpt": ckpt, "info": info}


_SIDES = {"R": "R", "right": "R", "L": "L", "left": "L"}


def load_pretrained(
    name: str = "body",
    *,
    side: str | None = None,
    directory: str | os.PathLike | None = None,
    map_location: Any = "cpu",
    full_mesh: bool = True,
    flip_test: bool = False,
) -> Any:
    """The shipped Pose2Mesh model ``name`` (``"body"`` or ``"hand"``), in eval mode.

    Its provenance record is the model's ``provenance`` attribute.

    Args:
        name: Which model.
        side: Hands: ``"right"``/``"R"`` (the default, the shipped weights) or
            ``"left"``/``"L"``: the right hand's weights mirrored, exactly
            (:meth:`~meshgraph.models.Pose2Mesh.mirrored`).
        directory: Where the weight files lie (default: :func:`weights_dir`).
        map_location: As for :meth:`~meshgraph.models.Pose2Mesh.load`.
        full_mesh: For a file whose network works on a simplified mesh and answers on the
            full one through an output map (the body: Anny's 1,229-vertex topology mapped to
            its 13,718 vertices), ``False`` gives the network's own mesh: the same joints,
            faster, fewer vertices (:meth:`~meshgraph.models.Pose2Mesh.without_output_map`).
        flip_test: Average each answer with the answer to the mirrored input
            (:meth:`~meshgraph.models.Pose2Mesh.flip_tested`; the body only: a hand's mirror
            image is the other hand). It builds the body model once, to pair the vertices.

    Raises:
        ValueError: For an unknown name or side, a side for the body, or a file that holds
            another model (another name, joint set or body model), no provenance record, or
            unusable weights; ``flip_test`` for the hand.
        FileNotFoundError: If the file is missing.
    """
    from meshgraph.models.pose2mesh import Pose2Mesh

    _entry(name)
    if side is not None and name != "hand":
        raise ValueError(f"side={side!r}: only the hand has sides, not the {name}")
    if side is not None and side not in _SIDES:
        raise ValueError(f"side={side!r} is not a side: 'right' ('R') or 'left' ('L')")

    read = _read(name, directory, map_location)
    ckpt, path = read["ckpt"], read["path"]
    state = ckpt.get("state_dict")
    if isinstance(state, dict):  # float16 storage -> float32
        ckpt = dict(ckpt)
        ckpt["state_dict"] = {
            k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.float16 else v
            for k, v in state.items()
        }
    try:
        model = Pose2Mesh.from_checkpoint(ckpt)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: not a usable Pose2Mesh model ({err})") from None
    if not full_mesh:
        model = model.without_output_map()
    if side is not None and _SIDES[side] == "L":
        model = model.mirrored()
    if flip_test:
        model = model.flip_tested()
    model.provenance = read["info"]
    return model.eval()


def pretrained_info(name: str = "body", *, directory: str | os.PathLike | None = None) -> dict:
    """The provenance record of the shipped model ``name``.

    See :func:`meshgraph.training.export.export_pretrained` for its keys.
    """
    return _read(name, directory, "cpu")["info"]
