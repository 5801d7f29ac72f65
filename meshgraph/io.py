"""Reading and writing files safely: meshes, tensors, arrays, atomic writes.

Every file meshgraph reads from disk goes through a loader that never runs code from the file
and turns a damaged file into an error that names it:

* :func:`load_torch`: ``torch.load`` with ``weights_only=True`` (tensors and plain containers
  only; a pickled object that is not on torch's allow-list is refused);
* :func:`load_array` / :func:`load_arrays`: ``.npy`` / ``.npz`` with ``allow_pickle=False``;
* :func:`check_pickle`: a ``.pkl`` (the format of the licensed SMPL files) is unpickled with an
  allow-list of NumPy, SciPy-sparse and chumpy classes before smplx reads it;
* :func:`load_mesh`: ``.obj`` read directly, other formats through trimesh, in the file's
  vertex order (:func:`weld_vertices` merges a triangle soup's corners).

Writing: :func:`save_obj` and :func:`save_ply` write meshes (the one place for mesh files;
``meshgraph.viz`` still imports them), :func:`atomic_write` replaces a file in one step (a
killed writer leaves the old file), and :func:`folder_lock` keeps two runs out of one output
folder.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import pickle
import re
import socket
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from meshgraph._optional import require

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "FolderInUseError",
    "UnsafeFileError",
    "atomic_write",
    "check_pickle",
    "folder_lock",
    "load_array",
    "load_arrays",
    "load_mesh",
    "load_torch",
    "save_obj",
    "save_ply",
    "weld_vertices",
]


class UnsafeFileError(ValueError):
    """A file holds Python objects that meshgraph refuses to unpickle (it could run code)."""


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file (expected {what})")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (expected {what})")
    return path


def load_torch(
    path: str | os.PathLike,
    *,
    what: str = "torch file",
    map_location: Any = "cpu",
    mmap: bool = False,
) -> Any:
    """``torch.load`` a file safely (``weights_only=True``), with errors that name the file.

    Args:
        path: The file (a checkpoint, a model, a dataset shard).
        what: What the file should be, for the messages (``"Pose2Mesh model"``).
        map_location: As for :func:`torch.load` (a device, a string, a dict or a callable).
        mmap: Map the tensors' storage from the file instead of reading it (``torch.load``'s
            ``mmap``): a caller that needs only a file's plain values (a model's config)
            reads only those. Files in torch's legacy (non-zip) format are read whole.

    Returns:
        The loaded object: tensors in dicts, lists, tuples and plain Python values.

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeFileError: If it holds other Python objects (a crafted or foreign pickle).
        ValueError: If it is empty, truncated or not a torch file.
    """
    import torch

    path = _existing_file(path, what)
    mmap = mmap and zipfile.is_zipfile(path)  # torch maps only its zip format
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        first = _first_line(err)
        if "weights only load failed" in str(err).lower():
            raise UnsafeFileError(
                f"{path}: refused to load this {what}: it holds Python objects other than "
                f"tensors and plain containers, which could run code ({first})"
            ) from None
        raise ValueError(f"{path} is not a readable {what} ({first})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as err:
        msg = f"{path} is not a readable {what}: truncated or corrupt ({_first_line(err)})"
        raise ValueError(msg) from None


def _first_line(err: BaseException) -> str:
    """The first line of an error's message (torch's are long), or its type's name."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _read_numpy(path: Path, what: str, archive: bool) -> Any:
    """``np.load`` with ``allow_pickle=False``: one array, or every array of an archive."""
    try:
        with open(path, "rb") as fh:  # closed here even when np.load fails half-way
            out = np.load(fh, allow_pickle=False)
            if isinstance(out, np.lib.npyio.NpzFile):
                with out:
                    if not archive:
                        raise ValueError("an .npz archive, expected one .npy array")
                    return {k: out[k] for k in out.files}
            if archive:
                raise ValueError("one .npy array, expected an .npz archive")
            return out
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise UnsafeFileError(
                f"{path}: refused to load this {what}: it holds pickled Python objects"
            ) from None
        raise ValueError(f"{path} is not a readable {what} ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{path} is not a readable {what}: truncated or corrupt ({err})") from None


def load_array(path: str | os.PathLike, *, what: str = "NumPy array file") -> np.ndarray:
    """Read a ``.npy`` array with ``allow_pickle=False``, with errors that name the file.

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeFileError: If it holds pickled Python objects.
        ValueError: If it is empty, truncated or not a ``.npy`` array.
    """
    return _read_numpy(_existing_file(path, what), what, archive=False)


def load_arrays(path: str | os.PathLike, *, what: str = "NumPy .npz file") -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` with ``allow_pickle=False``, errors naming the file.

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeFileError: If an array holds pickled Python objects.
        ValueError: If it is empty, truncated or not an ``.npz`` archive.
    """
    return _read_numpy(_existing_file(path, what), what, archive=True)


# (module, name) pairs a model pickle may name; chumpy classes (any module under chumpy) are
# replaced by inert stand-ins during the check
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy", "bool_"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("copy_reg", "__newobj__"), ("copyreg", "__newobj__"),
    ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),
    ("__builtin__", "set"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "slice"), ("__builtin__", "slice"),
}  # fmt: skip
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}
_SPARSE_MODULES = {"scipy.sparse", "scipy.sparse.csc", "scipy.sparse.csr", "scipy.sparse.coo",
                   "scipy.sparse._csc", "scipy.sparse._csr", "scipy.sparse._coo"}  # fmt: skip


class _Inert:
    """Stands in for a chumpy object while a pickle is checked (stores its state, runs nothing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _CheckingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        if module.startswith("numpy.dtypes") or (module == "numpy" and name.endswith("DType")):
            return super().find_class(module, name)
        if module in _SPARSE_MODULES and name in _SPARSE:
            return super().find_class(module, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return _Inert
        raise UnsafeFileError(f"it names {module}.{name}, which is not a model-file class")


def check_pickle(path: str | os.PathLike, *, what: str = "model file") -> Path:
    """Check that a ``.pkl`` holds only arrays and the classes model files use, without running it.

    The file is unpickled with an allow-list (NumPy arrays and dtypes, SciPy sparse matrices,
    chumpy objects, replaced by inert stand-ins, and plain containers); anything else (a
    function call, a module, a class of another package) is refused before it can run. The
    licensed SMPL, SMPL-H and MANO ``.pkl`` files pass; smplx then reads them.

    Args:
        path: The ``.pkl`` file.
        what: What the file should be, for the messages.

    Returns:
        The path.

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeFileError: If the pickle names anything outside the allow-list.
        ValueError: If it is empty, truncated or not a pickle.
    """
    path = _existing_file(path, what)
    data = path.read_bytes()
    try:
        _CheckingUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafeFileError as err:
        raise UnsafeFileError(f"{path}: refused to load this {what}: {err}") from None
    except Exception as err:
        raise ValueError(f"{path} is not a readable {what} ({type(err).__name__}: {err})") from None
    return path


def _obj_lines(fh: Any) -> Iterator[tuple[int, list[str]]]:
    """The ``(line number, fields)`` of an .obj file: comments cut, continued lines joined."""
    held: list[str] = []
    start = 0
    for lineno, line in enumerate(fh, 1):
        text = line.split("#", 1)[0].rstrip()
        if not held:
            start = lineno
        if text.endswith("\\"):
            held.append(text[:-1])
            continue
        held.append(text)
        parts = " ".join(held).split()
        held = []
        if parts:
            yield start, parts
    if held and (parts := " ".join(held).split()):
        yield start, parts


# .obj lines for the vectorised reader. _W is whitespace other than a newline (str.split()'s
# whitespace, which the line reader uses); a vertex line takes its first 3 fields, a triangle
# line 3 positive indices, each with optional /texture/normal indices
_W = r"[^\S\n]"
_OBJ_KIND = re.compile(rf"^{_W}*([vf])(?:{_W}|$)", re.MULTILINE)
_OBJ_VERTEX = re.compile(rf"^{_W}*v{_W}+(\S+){_W}+(\S+){_W}+(\S+)[^\n]*$", re.MULTILINE)
_OBJ_CORNER = rf"{_W}+(\d+)(?:/\S*)?"
_OBJ_TRI_QUAD = re.compile(  # 3 or 4 corners (the 4th group is "" for a triangle)
    rf"^{_W}*f{_OBJ_CORNER}{_OBJ_CORNER}{_OBJ_CORNER}(?:{_OBJ_CORNER})?{_W}*$", re.MULTILINE
)
_OBJ_FACE = re.compile(rf"^{_W}*f{_W}+([^\n]*)$", re.MULTILINE)
_OBJ_COMMENT = re.compile(r"#[^\n]*")
_OBJ_SLASHES = re.compile(r"(?<=\S)/\S*")


def _read_obj_fast(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Vertices and fan-triangulated faces of an .obj text, read with whole-text patterns.

    Gives ``None`` on anything it leaves to the line reader :func:`_read_obj_lines`, which
    has the line numbers for the messages: continued lines, a vertex with fewer than 3
    coordinates, a face with fewer than 3 corners, an unreadable number, and indices that
    are 0 or negative (relative to the vertices read so far). What it returns is what the
    line reader returns.
    """
    if "\\" in text:
        return None
    if "#" in text:
        text = _OBJ_COMMENT.sub("", text)
    kinds = _OBJ_KIND.findall(text)
    n_verts = kinds.count("v")
    n_faces = len(kinds) - n_verts
    rows = _OBJ_VERTEX.findall(text)
    if len(rows) != n_verts:
        return None
    try:
        verts = np.fromiter(
            map(float, itertools.chain.from_iterable(rows)), np.float64, 3 * n_verts
        )
        corners = _OBJ_TRI_QUAD.findall(text)
        if len(corners) == n_faces:  # triangles and quads
            counts = np.fromiter((4 if c[3] else 3 for c in corners), np.int64, n_faces)
        else:  # larger polygons
            corners = [_OBJ_SLASHES.sub("", row).split() for row in _OBJ_FACE.findall(text)]
            if len(corners) != n_faces or any(len(c) < 3 for c in corners):
                return None
            counts = np.fromiter(map(len, corners), np.int64, n_faces)
        # the empty 4th corner of a triangle drops out; an index is never "" otherwise
        fields = filter(None, itertools.chain.from_iterable(corners))
        flat = np.fromiter(map(int, fields), np.int64, int(counts.sum()))
    except (ValueError, OverflowError):
        return None
    if flat.size and flat.min() <= 0:
        return None
    # fan triangulation: corner 0 with corners (k, k + 1), k = 1 .. count - 2, per polygon
    start = np.cumsum(counts) - counts
    tris = counts - 2
    first = np.repeat(start, tris)
    k = np.arange(int(tris.sum())) - np.repeat(np.cumsum(tris) - tris, tris) + 1
    faces = np.stack([flat[first], flat[first + k], flat[first + k + 1]], axis=1) - 1
    return verts.reshape(-1, 3), faces.reshape(-1, 3)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and fan-triangulated faces of an .obj file (fast path, else line by line)."""
    with open(path) as fh:
        text = fh.read()
    fast = _read_obj_fast(text)
    if fast is not None:
        return fast
    return _read_obj_lines(path)


def _read_obj_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The line reader of :func:`_read_obj`: every case, with line numbers in its errors."""
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path) as fh:
        for lineno, parts in _obj_lines(fh):
            try:
                if parts[0] == "v":
                    if len(parts) < 4:
                        raise ValueError("a vertex needs 3 coordinates")
                    verts.append([float(x) for x in parts[1:4]])
                    continue
                if parts[0] != "f":
                    continue
                idx = [int(p.split("/")[0]) for p in parts[1:]]
            except ValueError as err:
                raise ValueError(f"{path}:{lineno}: malformed line ({err})") from None
            if len(idx) < 3:
                raise ValueError(f"{path}:{lineno}: a face needs at least 3 vertices")
            if 0 in idx:
                raise ValueError(f"{path}:{lineno}: .obj vertex indices start at 1, got 0")
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]  # 1-based or negative
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), np.asarray(
        faces, dtype=np.int64
    ).reshape(-1, 3)


def weld_vertices(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """Merge the vertices that lie at exactly the same position into one.

    A triangle soup (an ``.stl`` file, which stores each triangle's corners apart) or a mesh
    split along texture seams has several vertices at one point, so its graph falls apart into
    pieces. Welding keeps the first vertex of each position, in the order of first appearance
    (a mesh without repeated positions comes back unchanged), renumbers the faces and drops
    the faces left with a repeated corner. Positions are compared exactly, without a tolerance:
    the corners a file shares are written from the same numbers.

    Args:
        vertices: ``(V, 3)`` positions (array or tensor).
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(vertices, faces)`` of the welded mesh, float64 ``(V', 3)`` and int64 ``(F', 3)``.

    Raises:
        ValueError: On a wrong shape, NaN/inf positions or face indices out of range.

    Example:
        >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
        >>> vw, fw = weld_vertices(v, [[0, 1, 2], [3, 4, 5]])
        >>> len(vw), fw.tolist()
        (4, [[0, 1, 2], [1, 3, 2]])
    """
    v = _numpy(vertices).astype(np.float64)
    f = _numpy(faces)
    if f.size and f.dtype.kind not in "iu":
        raise ValueError(f"faces must be integers, got {f.dtype}")
    f = f.astype(np.int64)
    _check_mesh(v, f)
    _, first, inverse = np.unique(v, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # unique positions in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    new_faces = rank[inverse][f]
    keep = (
        (new_faces[:, 0] != new_faces[:, 1])
        & (new_faces[:, 1] != new_faces[:, 2])
        & (new_faces[:, 0] != new_faces[:, 2])
    )
    return v[first[order]], new_faces[keep]


def load_mesh(
    path: str | os.PathLike, *, merge_vertices: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read vertices ``(V, 3)`` and triangle faces ``(F, 3)`` from a mesh file.

    Wavefront ``.obj`` is always read directly, in the file's vertex order: texture and normal
    indices are ignored, so a textured mesh is not split along its UV seams, and polygons are
    fan-triangulated. Every other format (``.ply``, ``.stl``, ``.off``, ``.glb``, ...) goes
    through trimesh, which keeps the file's vertices and their order. ``.npz`` files with
    ``vertices`` and ``faces`` arrays work too. For a fixed-topology model the order is the
    model's vertex order, so nothing is merged unless asked or the format has no shared
    vertices.

    Args:
        path: The mesh file.
        merge_vertices: Weld the vertices that share a position (:func:`weld_vertices`).
            ``None`` (default) welds ``.stl`` files only, whose triangles never share corners;
            ``True`` also welds a mesh split along seams (a ``.glb`` often is); ``False``
            keeps every file's vertices as stored.

    Returns:
        ``(vertices, faces)`` as float64 and int64 arrays.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImportError: If the format needs trimesh and it is not installed.
        ValueError: If the file is empty or malformed, its format unknown, or its faces index
            missing vertices (the message names the file).
        TypeError: If ``merge_vertices`` is not a bool or ``None``.
    """
    if merge_vertices is not None and not isinstance(merge_vertices, bool):
        raise TypeError(f"merge_vertices must be a bool or None, got {merge_vertices!r}")
    path = _existing_file(path, "mesh file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        z = load_arrays(path, what="mesh file")
        if "vertices" not in z or "faces" not in z:
            raise ValueError(f"{path} must contain 'vertices' and 'faces' arrays")
        verts, faces = z["vertices"], z["faces"]
    elif suffix == ".obj":
        try:
            verts, faces = _read_obj(path)
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a text .obj file") from None
    else:
        trimesh = require("trimesh")
        if suffix.lstrip(".") not in trimesh.available_formats():
            raise ValueError(
                f"{path}: unknown mesh format {suffix or '(no extension)'!r}; use .obj, .ply, "
                ".stl, .off, .glb or .npz"
            )
        try:
            mesh = trimesh.load(path, force="mesh", process=False)
            verts = np.asarray(mesh.vertices, dtype=np.float64)
            faces = np.asarray(mesh.faces, dtype=np.int64)
        except Exception as err:  # trimesh raises many types on a malformed file
            raise ValueError(f"{path} is not a readable {suffix} mesh ({err})") from None
    verts = np.asarray(verts)
    faces = np.asarray(faces)
    if verts.dtype.kind not in "iuf" or faces.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: vertices must be real numbers and faces integers, got {verts.dtype} and "
            f"{faces.dtype}"
        )
    verts, faces = verts.astype(np.float64), faces.astype(np.int64)
    if verts.ndim != 2 or verts.shape[1] != 3 or len(verts) == 0:
        raise ValueError(f"{path}: no vertices, or not (V, 3) (got {verts.shape})")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"{path}: no triangle faces (got faces of shape {faces.shape})")
    if faces.min() < 0 or faces.max() >= len(verts):
        raise ValueError(
            f"{path}: face indices must lie in [0, {len(verts) - 1}], got "
            f"[{faces.min()}, {faces.max()}]"
        )
    if not np.isfinite(verts).all():
        raise ValueError(f"{path}: vertices contain NaN or inf")
    if merge_vertices or (merge_vertices is None and suffix == ".stl"):
        verts, faces = weld_vertices(verts, faces)
        if len(faces) == 0:
            raise ValueError(f"{path}: every face has a repeated corner once welded")
    return verts, faces


def _numpy(a: Any) -> np.ndarray:
    """A NumPy array of a tensor (detached, on the CPU) or of anything array-like."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index out of range for {len(vertices)} vertices")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices contain NaN or inf")


def save_obj(
    path: str | os.PathLike, vertices: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor
) -> Path:
    """Write a triangle mesh as Wavefront OBJ (1-based face indices).

    Args:
        path: Output file.
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices (0-based).

    Returns:
        The path written.
    """
    v, f = _numpy(vertices).astype(np.float64), _numpy(faces).astype(np.int64)
    _check_mesh(v, f)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write(f"# meshgraph: {len(v)} vertices, {len(f)} faces\n")
        np.savetxt(fh, v, fmt="v %.8g %.8g %.8g")
        np.savetxt(fh, f + 1, fmt="f %d %d %d")
    return path


def save_ply(
    path: str | os.PathLike,
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    colors: np.ndarray | torch.Tensor | None = None,
) -> Path:
    """Write a triangle mesh as ASCII PLY, optionally with per-vertex RGB colours.

    Args:
        path: Output file.
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices.
        colors: Optional ``(V, 3)`` colours, floats in ``[0, 1]`` or uint8.

    Returns:
        The path written.
    """
    v, f = _numpy(vertices).astype(np.float64), _numpy(faces).astype(np.int64)
    _check_mesh(v, f)
    header = ["ply", "format ascii 1.0", f"element vertex {len(v)}"]
    header += ["property float x", "property float y", "property float z"]
    rgb = None
    if colors is not None:
        c = _numpy(colors)
        if c.shape != v.shape:
            raise ValueError(f"colors must have shape {v.shape}, got {c.shape}")
        rgb = c if c.dtype == np.uint8 else np.clip(np.round(c * 255), 0, 255).astype(np.uint8)
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("\n".join(header) + "\n")
        if rgb is None:
            np.savetxt(fh, v, fmt="%.8g %.8g %.8g")
        else:
            rows = np.concatenate([v, rgb.astype(np.float64)], axis=1)
            np.savetxt(fh, rows, fmt="%.8g %.8g %.8g %d %d %d")
        np.savetxt(fh, np.concatenate([np.full((len(f), 1), 3), f], axis=1), fmt="%d %d %d %d")
    return path


def _file_mode(path: Path) -> int:
    """The permission bits ``path`` should get: its own if it exists, else what ``open`` gives."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file, which then replaces ``path``.

    A reader (or a killed writer) never sees a half-written file: the temporary file lives in
    the same folder, is flushed and synced, then renamed over ``path``; on any error it is
    removed and ``path`` is untouched. The file keeps the permissions of the one it replaces;
    a new one gets those of a plain ``open`` (``0o666`` less the umask).

    Args:
        path: The destination (its folder is created).
        write: Called with the open binary temporary file.

    Returns:
        ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> atomic_write(p, lambda fh: fh.write(b"ok")).read_bytes()
        b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp's 0o600 would make shared files private
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class FolderInUseError(RuntimeError):
    """Another live process holds the lock of an output folder."""


_LOCK_NAME = ".meshgraph.lock"
_HELD: set[Path] = set()  # folders this process holds (a nested lock on one is a no-op)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, enabled: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the ``with`` block.

    The lock is an advisory ``flock`` on ``folder/.meshgraph.lock``, which also records the
    holder's process id and host: the operating system releases it when the holder exits or
    is killed, so a dead run never keeps a folder. The same process may nest locks on one
    folder (the pipeline holds it while its trainer takes it again).

    Args:
        folder: The output folder.
        enabled: ``False`` makes this a no-op (ranks other than 0 of a distributed run).

    Yields:
        The folder.

    Raises:
        FolderInUseError: If another live process holds the folder.
        OSError: If the folder cannot be created.
    """
    folder = Path(folder)
    if not enabled:
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD:
        yield folder
        return
    fh = open(key / _LOCK_NAME, "a+")  # held open for the whole block
    try:
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            raise FolderInUseError(
                f"{folder} is in use by another meshgraph run ({holder}); wait for it to end "
                "or choose another output folder"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        _HELD.add(key)
        try:
            yield folder
        finally:
            _HELD.discard(key)
    finally:
        fh.close()  # closing the file releases the lock


def _try_lock(fh: Any) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
