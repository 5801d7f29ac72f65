"""A fixed sparse linear map from the vertices of one topology to those of another.

A network can work on a small mesh and answer on a large one: every output vertex is a
weighted sum of ``k`` input vertices, like the upsampling matrices of CoMA and of CMR's
1,723 -> 6,890-vertex SMPL. :meth:`VertexMap.fit` learns the weights from pairs of meshes
posed alike in both topologies (least squares per output vertex over its ``k`` nearest input
vertices at rest, with a small ridge term), so the map also learns how the large mesh bends
where the small one is too coarse to follow. Rows sum to one: the map commutes with
translations, and weights stored in float16 stay exact to within micrometres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from meshgraph.mesh import sparse_csr_tensor, sparse_product

__all__ = ["VertexMap"]

_FIT_CHUNK = 512  # target vertices solved at once (bounds the memory of a fit)


def _index_dtype(num_sources: int) -> torch.dtype:
    """The smallest integer dtype that holds the indices (for compact files)."""
    return torch.int16 if num_sources <= torch.iinfo(torch.int16).max else torch.int32


class VertexMap(nn.Module):
    """``out[..., v, :] = sum_j weight[v, j] * x[..., index[v, j], :]``.

    Args:
        index: ``(V_out, k)`` integer indices of the input vertices each output vertex reads.
        weight: ``(V_out, k)`` their weights. Each row is divided by its sum (in float64), so
            that the map commutes with translations; sums must lie within 5 % of one.
        num_sources: ``V_in``, the vertices of the input topology.

    Raises:
        ValueError: On shapes that do not match, indices outside ``[0, num_sources)``,
            non-finite weights, or a row whose weights do not sum to about one.
    """

    def __init__(self, index: Tensor, weight: Tensor, num_sources: int) -> None:
        super().__init__()
        index, weight = torch.as_tensor(index), torch.as_tensor(weight)
        if index.dim() != 2 or weight.shape != index.shape or index.shape[1] < 1:
            raise ValueError(
                "index and weight must both have shape (V_out, k) with k >= 1, got "
                f"{tuple(index.shape)} and {tuple(weight.shape)}"
            )
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise ValueError(f"index must hold integers, got {index.dtype}")
        if not weight.is_floating_point():
            raise ValueError(f"weight must be floating point, got {weight.dtype}")
        num_sources = int(num_sources)
        if num_sources < 1:
            raise ValueError(f"num_sources must be positive, got {num_sources}")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_sources):
            raise ValueError(
                f"index must lie in [0, {num_sources}) (num_sources), got values in "
                f"[{int(index.min())}, {int(index.max())}]"
            )
        w = weight.detach().cpu().double()
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weight contains NaN or inf")
        sums = w.sum(1)
        bad = torch.nonzero((sums - 1.0).abs() > 0.05).flatten()
        if bad.numel():
            v = int(bad[0])
            raise ValueError(
                f"the weights of every output vertex must sum to about 1 (translation "
                f"invariance); output vertex {v} sums to {float(sums[v]):.4f}"
            )
        self.num_sources = num_sources
        self.register_buffer("index", index.detach().cpu().long().clone(), persistent=False)
        self.register_buffer("weight", (w / sums[:, None]).float(), persistent=False)
        self._csr: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor]] = {}

    @property
    def num_targets(self) -> int:
        """``V_out``, the vertices of the output topology."""
        return int(self.index.shape[0])

    @property
    def k(self) -> int:
        """Input vertices read per output vertex."""
        return int(self.index.shape[1])

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the sparse matrices out (made again when needed)."""
        state = self.__dict__.copy()
        state["_csr"] = {}
        return state

    def _matrices(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """The CSR matrix ``(V_out, V_in)`` and its transpose, made once per dtype and device."""
        key = (dtype, device)
        if key not in self._csr:
            rows = np.repeat(np.arange(self.num_targets), self.k)
            m = sp.csr_matrix(
                (
                    self.weight.detach().cpu().double().numpy().reshape(-1),
                    (rows, self.index.cpu().numpy().reshape(-1)),
                ),
                shape=(self.num_targets, self.num_sources),
            )
            self._csr[key] = (
                sparse_csr_tensor(m, dtype=dtype, device=device),
                sparse_csr_tensor(m.T, dtype=dtype, device=device),
            )
        return self._csr[key]

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(..., V_in, C)`` features or positions to ``(..., V_out, C)``.

        One sparse product for the whole batch (float32 and float64; other dtypes gather and
        sum): the vertices are copied to ``(V_in, C * batch)`` rows first, so that the
        product reads contiguous rows. Differentiable with respect to ``x``; the map itself
        is fixed.
        """
        if x.dim() < 2 or x.shape[-2] != self.num_sources:
            raise ValueError(
                f"expected input of shape (..., {self.num_sources}, C), got {tuple(x.shape)}"
            )
        if x.device != self.index.device:
            raise ValueError(
                f"input on {x.device}, VertexMap on {self.index.device}: move one of them"
            )
        if x.dtype not in (torch.float32, torch.float64):
            gathered = x.index_select(-2, self.index.reshape(-1))
            gathered = gathered.unflatten(-2, (self.num_targets, self.k))
            return torch.einsum("...vkc,vk->...vc", gathered, self.weight.to(x.dtype))
        lead, c = x.shape[:-2], x.shape[-1]
        n = math.prod(lead)
        rows = x.reshape(n, self.num_sources, c).permute(1, 2, 0).reshape(self.num_sources, -1)
        out = sparse_product(*self._matrices(x.dtype, x.device), rows)
        out = out.view(self.num_targets, c, n).permute(2, 0, 1)
        return out.reshape(*lead, self.num_targets, c)

    def to_dense(self) -> Tensor:
        """The ``(V_out, V_in)`` matrix (float32), for small maps and tests."""
        out = torch.zeros(self.num_targets, self.num_sources, device=self.weight.device)
        rows = torch.arange(self.num_targets, device=self.weight.device)[:, None]
        out.index_put_((rows.expand_as(self.index), self.index), self.weight, accumulate=True)
        return out

    def to_arrays(self, half: bool = False) -> dict[str, Tensor]:
        """Compact tensors for a checkpoint; :meth:`from_arrays` restores the map.

        The indices take the smallest integer type that holds them, the weights float16 if
        ``half`` (the rows are renormalised on loading, so this costs micrometres).
        """
        weight = self.weight.cpu()
        return {
            "index": self.index.cpu().to(_index_dtype(self.num_sources)),
            "weight": weight.half() if half else weight.clone(),
            "num_sources": torch.tensor(self.num_sources),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, Tensor]) -> VertexMap:
        """The map :meth:`to_arrays` stored.

        Raises:
            ValueError: If a key is missing or the arrays do not make a map.
        """
        missing = [k for k in ("index", "weight", "num_sources") if k not in arrays]
        if missing:
            raise ValueError(f"incomplete vertex map: no {', '.join(missing)}")
        return cls(arrays["index"], arrays["weight"].float(), int(arrays["num_sources"]))

    @classmethod
    def fit(
        cls,
        source: Tensor,
        target: Tensor,
        source_rest: Tensor,
        target_rest: Tensor,
        k: int = 8,
        ridge: float = 1e-3,
    ) -> VertexMap:
        """Least-squares map from meshes posed alike in two topologies of one body.

        Each target vertex reads its ``k`` nearest source vertices at rest. Its weights
        minimise ``sum_n |target[n, v] - sum_j w_j source[n, index_j]|^2 + ridge * N * s^2 *
        |w - w_0|^2`` subject to ``sum_j w_j = 1``, where ``w_0`` are inverse-distance weights
        at rest and ``s`` the RMS spread of the neighbours: the ridge keeps the weights from
        growing large (a large weight amplifies the errors of whatever the map is given)
        where the poses do not pin them down. Solved in float64.

        Args:
            source: ``(N, V_in, 3)`` meshes in the source topology.
            target: ``(N, V_out, 3)`` the same bodies in the target topology.
            source_rest: ``(V_in, 3)`` the source at rest (picks the neighbours).
            target_rest: ``(V_out, 3)`` the target at rest.
            k: Source vertices per target vertex.
            ridge: Strength of the pull towards ``w_0`` (relative; 0 for plain least squares).

        Raises:
            ValueError: On shapes that do not match, ``k`` outside ``[1, V_in]``, a negative
                ridge or non-finite inputs.
        """
        from scipy.spatial import cKDTree

        source, target = torch.as_tensor(source), torch.as_tensor(target)
        source_rest, target_rest = torch.as_tensor(source_rest), torch.as_tensor(target_rest)
        if source.dim() != 3 or source.shape[-1] != 3 or target.dim() != 3:
            raise ValueError(
                "source and target must have shape (N, V, 3), got "
                f"{tuple(source.shape)} and {tuple(target.shape)}"
            )
        n, v_in = source.shape[:2]
        if target.shape[0] != n or target.shape[-1] != 3:
            raise ValueError(
                f"target must have shape ({n}, V_out, 3) like source's {n} meshes, got "
                f"{tuple(target.shape)}"
            )
        v_out = target.shape[1]
        if source_rest.shape != (v_in, 3) or target_rest.shape != (v_out, 3):
            raise ValueError(
                f"source_rest must have shape ({v_in}, 3) and target_rest ({v_out}, 3), got "
                f"{tuple(source_rest.shape)} and {tuple(target_rest.shape)}"
            )
        if not 1 <= k <= v_in:
            raise ValueError(f"k must lie in [1, {v_in}] (source vertices), got {k}")
        if ridge < 0 or not np.isfinite(ridge):
            raise ValueError(f"ridge must be finite and non-negative, got {ridge}")
        arrays = [x.detach().cpu().double().numpy() for x in (source, target)]
        rests = [x.detach().cpu().double().numpy() for x in (source_rest, target_rest)]
        if not all(np.isfinite(a).all() for a in arrays + rests):
            raise ValueError("the meshes contain NaN or inf")
        src, tgt = arrays
        dist, index = cKDTree(rests[0]).query(rests[1], k)
        dist, index = dist.reshape(v_out, k), index.reshape(v_out, k)
        w0 = 1.0 / np.maximum(dist, 1e-9)
        w0 /= w0.sum(1, keepdims=True)
        if k == 1:
            return cls(torch.from_numpy(index), torch.ones(v_out, 1), v_in)
        # w = w0 + Q z, Q an orthonormal basis of the weight changes that keep the sum
        q, _ = np.linalg.qr(np.vstack([-np.ones((1, k - 1)), np.eye(k - 1)]))  # (k, k-1)
        weight = np.empty((v_out, k))
        for lo in range(0, v_out, _FIT_CHUNK):
            hi = min(lo + _FIT_CHUNK, v_out)
            nb = src[:, index[lo:hi]]  # (N, chunk, k, 3)
            a = np.einsum("nvkc,kj->vncj", nb, q).reshape(hi - lo, n * 3, k - 1)
            r = (tgt[:, lo:hi] - np.einsum("nvkc,vk->nvc", nb, w0[lo:hi])).transpose(1, 0, 2)
            spread = ((nb - nb.mean(2, keepdims=True)) ** 2).sum(axis=(2, 3)).mean(0) / k
            gram = np.einsum("vmi,vmj->vij", a, a)
            gram += (ridge * n * 3 * spread + 1e-12)[:, None, None] * np.eye(k - 1)
            rhs = np.einsum("vmi,vm->vi", a, r.reshape(hi - lo, n * 3))
            z = np.linalg.solve(gram, rhs[..., None])[..., 0]
            weight[lo:hi] = w0[lo:hi] + z @ q.T
        return cls(torch.from_numpy(index), torch.from_numpy(weight), v_in)

    def extra_repr(self) -> str:
        """Sizes and ``k``, for ``repr``."""
        return f"{self.num_sources} -> {self.num_targets} vertices, k={self.k}"
