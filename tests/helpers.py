"""Independent float64 NumPy references, and a Python child process, for several test modules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def dense_adjacency_from_faces(faces: np.ndarray, n: int) -> np.ndarray:
    """Binary symmetric adjacency by a plain loop over the faces."""
    w = np.zeros((n, n))
    for a, b, c in np.asarray(faces):
        for i, j in ((a, b), (b, c), (c, a)):
            w[i, j] = w[j, i] = 1.0
    return w


def dense_normalized_laplacian(w: np.ndarray) -> np.ndarray:
    """I - D^-1/2 W D^-1/2 with degree counting self-loops; isolated vertices -> identity row."""
    d = w.sum(axis=1)
    dinv = np.zeros_like(d)
    dinv[d > 0] = 1.0 / np.sqrt(d[d > 0])
    return np.eye(len(w)) - dinv[:, None] * w * dinv[None, :]


def dense_cheb_conv(
    x: np.ndarray, w: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, rescale: str
) -> np.ndarray:
    """Chebyshev convolution by the definition, in float64 with dense matrices.

    x: (B, N, Fin); weight: (K, Fin, Fout).
    """
    lap = dense_normalized_laplacian(w)
    lam = np.linalg.eigvalsh(lap)[-1]
    eye = np.eye(len(w))
    scaled = 2.0 * lap / lam - eye if rescale == "textbook" else lap / (2.0 * lam) - eye
    out = np.zeros((x.shape[0], x.shape[1], weight.shape[2]))
    for b in range(x.shape[0]):
        t_prev, t = None, x[b]
        for k in range(weight.shape[0]):
            if k == 1:
                t_prev, t = t, scaled @ t
            elif k > 1:
                t_prev, t = t, 2.0 * scaled @ t - t_prev
            out[b] += t @ weight[k]
    if bias is not None:
        out += bias
    return out


def assert_matmul_close(actual: np.ndarray, a: np.ndarray, b: np.ndarray, eps: float) -> None:
    """``actual`` equals ``a @ b`` (computed here in float64) to a rounding error of ``eps``.

    The tolerance of each element follows the size of the terms summed into it,
    ``|a| @ |b|``, not the size of the result: an element near zero summed from large terms
    carries the rounding error of those terms. ``64 * eps`` per unit of term size covers the
    rounding of the inputs to ``eps``'s precision and of any summation order (a BLAS kernel's
    blocking differs between CPUs), and is still far below a wrong term.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ref = a @ b
    scale = np.abs(a) @ np.abs(b)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == ref.shape, (actual.shape, ref.shape)
    err = np.abs(actual - ref)
    bad = err > 64 * eps * scale
    assert not bad.any(), (
        f"{int(bad.sum())} elements off: worst error {err.max():.3g} against term size "
        f"{scale.reshape(-1)[int(np.argmax(err))]:.3g}"
    )


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python process (this interpreter); its stdout and stderr as text.

    A non-zero exit fails (``CalledProcessError``), as does a run over 300 s.
    """
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
