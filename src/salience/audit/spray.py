"""Spectral Relevance Analysis (SpRAy): cluster the explanation maps of a data set to find the strategies a
model uses, so that a shortcut (a watermark, a border, a stamp) shows up as a cluster of its own.

Lapuschkin, Wäldchen, Binder, Montavon, Samek & Müller, "Unmasking Clever Hans predictors and assessing what
machines really learn", Nature Communications 10:1096 (2019).  The steps, as in the paper's Methods:

1. every map is made the same small size (``size``, default 32 x 32) by area averaging, so that maps of
   any resolution can be compared and pixel-level noise averages out;
2. each map is made comparable with the others: its absolute value is taken (the *magnitude* of the
   evidence; Grad-CAM-like maps are non-negative already, signed maps such as gradients or LRP keep their
   magnitude) and it is divided by its sum, so each map is a distribution of evidence over the image
   (summing to 1).  The paper normalises the down-sized maps without fixing one convention; this L1
   normalisation is our choice: it makes SpRAy blind to the overall scale of a map (a map and ten times
   the map are the same point) and makes a cluster's mean map a mean distribution of evidence, whose
   share in a region is a number between 0 and 1.  A map that is zero everywhere stays zero (no evidence);
3. a symmetric k-nearest-neighbour graph over the flattened maps (Euclidean distance; an edge of weight 1
   where either map is among the other's ``n_neighbors`` nearest), its normalised Laplacian
   ``L = I - D^-1/2 W D^-1/2``, and the smallest eigenvalues of ``L`` (each connected component of the graph on
   its own: dense ``scipy.linalg.eigh`` up to 500 maps, sparse ``scipy.sparse.linalg.eigsh`` above);
4. the number of clusters is the position of the largest gap between consecutive eigenvalues (the
   *eigengap*: ``c`` well separated groups give ``c`` eigenvalues near 0, then a jump) unless it is
   given, and the maps are clustered by k-means on the row-normalised spectral embedding (Ng, Jordan &
   Weiss, NIPS 2001).  k-means is seeded (k-means++ starts, ten restarts, the lowest inertia kept), so the
   result is deterministic for a given ``seed``.

Clusters are numbered by size, the largest first.  Everything is numpy/scipy (no torch, no scikit-learn).

>>> import numpy as np
>>> from salience.audit.spray import spray
>>> rng = np.random.default_rng(0)
>>> maps = rng.random((40, 64, 64)) * 0.05  # noise
>>> maps[:25, :16, :16] += 1.0   # 25 maps look at the top-left corner
>>> maps[25:, -16:, -16:] += 1.0  # 15 at the bottom-right corner
>>> r = spray(maps)
>>> r.n_clusters, r.sizes.tolist(), sorted(r.members(1).tolist()) == list(range(25, 40))
(2, [25, 15], True)
>>> bool(r.mean_maps[0, :8, :8].sum() > 0.5)  # the largest cluster's evidence sits top-left
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..check import check_int
from ..errors import InputError

__all__ = ["SprayResult", "spray"]

#: Up to this many maps in a connected component its Laplacian is decomposed densely (``scipy.linalg.eigh``);
#: above it, by ``eigsh`` (Lanczos on sparse products: on the loaded 2-core VM two BLAS threads made a dense
#: 1,000-map decomposition take 6.6 s, eigsh takes well under one; docs/audit.md).
DENSE_LIMIT = 500


@dataclass(frozen=True)
class SprayResult:
    """What :func:`spray` found.

    Attributes
    ----------
    labels: ``(N,)`` int64, the cluster of each map; clusters are numbered by size, the largest is 0.
    n_clusters: the number of clusters (chosen by the largest eigengap unless it was given).
    eigenvalues: ``(K,)`` float64, the smallest ``K`` eigenvalues of the normalised graph Laplacian,
        ascending, in ``[0, 2]``; ``K = max(max_clusters, n_clusters) + 1`` (at most ``N``).
    eigengaps: ``(K - 1,)`` float64, ``np.diff(eigenvalues)``; the chosen ``n_clusters`` is
        ``argmax(eigengaps) + 1`` when it was not given.
    sizes: ``(n_clusters,)`` int64, the number of maps in each cluster (non-increasing).
    mean_maps: ``(n_clusters, h, w)`` float64, the mean of each cluster's down-sampled, normalised maps
        (each sums to 1 unless all its maps are zero).
    size: ``(h, w)``, the size the maps were down-sampled to.
    """

    labels: np.ndarray
    n_clusters: int
    eigenvalues: np.ndarray
    eigengaps: np.ndarray
    sizes: np.ndarray
    mean_maps: np.ndarray
    size: tuple[int, int]

    def members(self, k: int) -> np.ndarray:
        """The indices (int64, ascending) of the maps in cluster ``k``, ``0 <= k < n_clusters``."""
        k = check_int("k", k, minimum=0)
        if k >= self.n_clusters:
            raise InputError(f"cluster k must be < n_clusters = {self.n_clusters}, got {k}")
        return np.flatnonzero(self.labels == k).astype(np.int64)


def spray(maps: Any, *, size: tuple[int, int] | int = (32, 32), n_neighbors: int = 10,
          n_clusters: int | None = None, max_clusters: int = 10, seed: int = 0) -> SprayResult:
    """Spectral Relevance Analysis of a set of explanation maps (Lapuschkin et al. 2019).

    Parameters
    ----------
    maps: ``(N, H, W)`` array, or a sequence of ``N`` 2-D maps, each of any size (numpy arrays or
        anything ``numpy.asarray`` reads); real and finite.  Not modified.  ``N >= 2``.
    size: ``(h, w)`` (or one int for a square) the maps are down-sampled to by area averaging.
    n_neighbors: neighbours of each map in the affinity graph (capped at ``N - 1``).
    n_clusters: the number of clusters, or ``None`` to take the largest eigengap among the first
        ``max_clusters``.
    max_clusters: the most clusters the eigengap may choose (capped at ``N - 1``).
    seed: the seed of k-means (its starts); the same seed gives the same result.

    Returns
    -------
    SprayResult: ``labels``, ``n_clusters``, ``eigenvalues``, ``eigengaps``, ``sizes``, ``mean_maps``,
    ``size`` and ``members(k)``.

    Raises
    ------
    InputError: fewer than 2 maps, a map that is not 2-D or is empty, NaN or infinite values, a
        non-numeric map, ``n_clusters`` larger than ``N``, a bad ``size``/``n_neighbors``/``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.zeros((6, 10, 10))
    >>> maps[:3, 0, 0] = 1.0
    >>> maps[3:, 9, 9] = 5.0   # the scale does not matter, the place does
    >>> spray(maps, n_neighbors=2).labels.tolist()
    [0, 0, 0, 1, 1, 1]
    """
    hw = _check_size(size)
    seed = check_int("seed", seed, minimum=0)
    n_neighbors = check_int("n_neighbors", n_neighbors, minimum=1)
    max_clusters = check_int("max_clusters", max_clusters, minimum=1)
    x = _prepare(maps, hw)  # (N, h*w) float64, each row sums to 1 (or is 0)
    n = x.shape[0]
    if n_clusters is not None:
        n_clusters = check_int("n_clusters", n_clusters, minimum=1)
        if n_clusters > n:
            raise InputError(f"n_clusters must be <= the number of maps ({n}), got {n_clusters}")
    n_eig = min(n, max(max_clusters, n_clusters or 0) + 1)
    w = _knn_affinity(x, min(n_neighbors, n - 1))
    values, vectors = _smallest_eigen(w, n_eig, seed)
    gaps = np.diff(values)
    if n_clusters is None:
        n_clusters = int(np.argmax(gaps[: min(max_clusters, n - 1)])) + 1 if gaps.size else 1
    labels = _cluster(vectors[:, :n_clusters], n_clusters, seed)
    sizes = np.bincount(labels, minlength=n_clusters).astype(np.int64)
    means = np.stack([x[labels == k].mean(axis=0) for k in range(n_clusters)]).reshape(n_clusters, *hw)
    return SprayResult(labels=labels, n_clusters=int(n_clusters), eigenvalues=values, eigengaps=gaps,
                       sizes=sizes, mean_maps=means, size=hw)


def _check_size(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise InputError(f"size must be (height, width) or one integer, got {size!r}")
    h, w = (check_int("size", s) for s in size)
    if h * w > 256 * 256:
        raise InputError(f"size {h}x{w} is too large for SpRAy (at most 65,536 pixels a map; 32x32 is usual)")
    return h, w


def _prepare(maps: Any, hw: tuple[int, int]) -> np.ndarray:
    """Down-sample (area averaging), take magnitudes, normalise each map to sum 1: ``(N, h*w)`` float64."""
    import cv2

    if isinstance(maps, np.ndarray):
        if maps.ndim != 3:
            raise InputError(f"maps must be an (N, H, W) array or a sequence of 2-D maps, got shape {maps.shape}")
        seq: Sequence[Any] = list(maps)
    elif isinstance(maps, (str, bytes)) or not hasattr(maps, "__len__"):
        raise InputError(f"maps must be an (N, H, W) array or a sequence of 2-D maps, got {type(maps).__name__}")
    else:
        seq = maps
    if len(seq) < 2:
        raise InputError(f"SpRAy needs at least 2 maps to cluster, got {len(seq)}")
    h, w = hw
    out = np.empty((len(seq), h * w), dtype=np.float64)
    for i, m in enumerate(seq):
        try:
            a = np.asarray(m.detach().cpu() if hasattr(m, "detach") else m)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"map {i} cannot be read as an array: {exc}") from None
        if a.ndim != 2 or a.size == 0:
            raise InputError(f"map {i} must be a non-empty 2-D array (H, W), got shape {a.shape}")
        if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise InputError(f"map {i} must hold real numbers, got dtype {a.dtype}")
        a = np.abs(a.astype(np.float64))
        if not np.isfinite(a).all():
            raise InputError(f"map {i} contains NaN or infinite values; fix or drop it before SpRAy")
        if a.shape != (h, w):
            # INTER_AREA averages the source pixels under each target pixel when shrinking (and
            # interpolates when a map is smaller than the target, e.g. a 7x7 CAM)
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
        a = a.ravel()
        s = a.sum()
        out[i] = a / s if s > 0 else 0.0
    return out


def _knn_affinity(x: np.ndarray, k: int) -> Any:
    """Symmetric binary k-NN affinity (scipy CSR), Euclidean distance, computed in row blocks."""
    from scipy import sparse

    n = x.shape[0]
    sq = np.einsum("ij,ij->i", x, x)
    rows = np.empty((n, k), dtype=np.int64)
    step = max(1, min(n, 2**24 // max(n, 1)))  # ~128 MB of distances a block
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        d = sq[lo:hi, None] + sq[None, :] - 2.0 * (x[lo:hi] @ x.T)
        d[np.arange(hi - lo), np.arange(lo, hi)] = np.inf  # not its own neighbour
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(d, axis=1)[:, :k]
        rows[lo:hi] = part
    i = np.repeat(np.arange(n), k)
    a = sparse.csr_matrix((np.ones(n * k), (i, rows.ravel())), shape=(n, n))
    a = a.maximum(a.T)  # an edge where either is among the other's neighbours
    return a.tocsr()


def _smallest_eigen(w: Any, n_eig: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_eig`` smallest eigenvalues (ascending, float64) and eigenvectors of ``I - D^-1/2 W D^-1/2``.

    The Laplacian is block-diagonal over the graph's connected components, so each component is decomposed
    on its own and the spectra are merged: a Krylov solver (``eigsh``) finds one vector per eigenspace, and
    ``c`` separate groups of maps make the eigenvalue 0 ``c``-fold, which it would miss."""
    from scipy.sparse.csgraph import connected_components

    n = w.shape[0]
    n_comp, comp = connected_components(w, directed=False)
    values, vectors = [], []
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        val, vec = _component_eigen(w[idx][:, idx], min(n_eig, len(idx)), seed)
        full = np.zeros((n, len(val)))
        full[idx] = vec
        values.append(val)
        vectors.append(full)
    allv = np.concatenate(values)
    order = np.argsort(allv, kind="stable")[:n_eig]
    return np.clip(allv[order], 0.0, 2.0), np.concatenate(vectors, axis=1)[:, order]


def _component_eigen(w: Any, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of one connected component's normalised Laplacian."""
    from scipy import linalg, sparse
    from scipy.sparse.linalg import eigsh

    n = w.shape[0]
    deg = np.asarray(w.sum(axis=1)).ravel()  # >= 1: every map has k >= 1 neighbours
    dinv = sparse.diags(1.0 / np.sqrt(deg))
    m = dinv @ w @ dinv  # the normalised affinity; L = I - m, so L's smallest are m's largest
    if n <= max(DENSE_LIMIT, k + 2):
        lap = np.eye(n) - m.toarray()
        values, vectors = linalg.eigh((lap + lap.T) / 2.0, subset_by_index=[0, k - 1])
        return np.asarray(values, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    mu, vectors = eigsh(m, k=k, which="LA", v0=v0, tol=1e-10, ncv=min(n, max(2 * k + 1, 40)))
    order = np.argsort(-mu)
    return 1.0 - mu[order], np.asarray(vectors[:, order], dtype=np.float64)


def _cluster(emb: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means on the row-normalised embedding; labels renumbered by cluster size (ties: first member)."""
    n = emb.shape[0]
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    y = emb / np.where(norm > 0, norm, 1.0)
    labels = _kmeans(y, k, np.random.default_rng(seed))
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else n for c in range(k)])
    order = np.lexsort((first, -sizes))  # largest first, then by first member
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]


def _kmeans(y: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 10, iters: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts (Arthur & Vassilvitskii 2007); the lowest-inertia of ``n_init``."""
    n = y.shape[0]
    best, best_inertia = np.zeros(n, dtype=np.int64), np.inf
    for _ in range(n_init):
        centres = np.empty((k, y.shape[1]))
        centres[0] = y[rng.integers(n)]
        d2 = ((y - centres[0]) ** 2).sum(axis=1)
        for c in range(1, k):
            total = d2.sum()
            j = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
            centres[c] = y[j]
            d2 = np.minimum(d2, ((y - centres[c]) ** 2).sum(axis=1))
        labels = np.full(n, -1, dtype=np.int64)
        for _ in range(iters):
            dist = ((y[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
            new = dist.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                members = y[labels == c]
                # an emptied cluster restarts at the point farthest from its centre
                centres[c] = members.mean(axis=0) if len(members) else y[dist.min(axis=1).argmax()]
        inertia = float(((y - centres[labels]) ** 2).sum())
        if inertia < best_inertia - 1e-12:
            best, best_inertia = labels.copy(), inertia
    return best
