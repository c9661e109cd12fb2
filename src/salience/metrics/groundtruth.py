"""Ground truth and densities: what the fixation metrics score a saliency map against.

The map-independent side of :mod:`salience.metrics.fixation`: binary and count maps from fixation points
(:func:`fixation_map_from_points`), continuous fixation maps (:func:`fixation_density_map`, the MIT
benchmark's ``run_antonioGaussian`` blur or a plain Gaussian), the centre-bias baseline
(:func:`centre_bias_map`), visual-angle conversions (:func:`pixels_per_degree`,
:func:`degrees_to_pixels`), and one image's fixation data prepared once for scoring several maps
(:func:`prepare_ground_truth`, :class:`GroundTruth`).  Fixation points follow the rounding and border
rules of :mod:`salience.metrics.fixation`.  Every public name is also importable from
:mod:`salience.metrics` and :mod:`salience.metrics.fixation`.

>>> from salience.metrics.groundtruth import fixation_map_from_points
>>> int(fixation_map_from_points([[1.0, 2.0], [3.0, 0.0]], (3, 4)).sum())
2
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import check_map
from ._inputs import (
    CONVENTIONS,
    Fix,
    baseline_terms,
    check_convention,
    check_gt,
    density,
    is_points,
    points_to_flat,
    resolve_fixations,
    shape_of_fixations,
)
from ._resize import imresize_bicubic, resize_to, shrink_matrices

__all__ = [
    "GroundTruth",
    "prepare_ground_truth",
    "fixation_density_map",
    "fixation_map_from_points",
    "centre_bias_map",
    "degrees_to_pixels",
    "pixels_per_degree",
]

#: Default ``sigma`` of :func:`fixation_density_map` under ``mit`` (``run_antonioGaussian(F, 25)``).
MIT_SIGMA = 25.0
#: EMD: the maps are shrunk by this factor before the transport problem (MIT benchmark code)
EMD_DOWNSIZE = 32




def fixation_map_from_points(points: Any, shape: tuple[int, int], *, counts: bool = False) -> np.ndarray:
    """Binary ``(H, W)`` uint8 map with 1 at every fixated pixel (the MIT rounding rule, see module doc).

    With ``counts=True`` the map holds the number of fixations per pixel (int32): the metrics read such a
    count map as that many fixations under ``tuebingen`` (``mit`` only sees the set of fixated pixels).

    >>> fixation_map_from_points([[0.5, 0.0], [2.0, 1.4]], (2, 3)).tolist()
    [[0, 1, 0], [0, 0, 1]]
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    shape = (int(shape[0]), int(shape[1]))
    flat = points_to_flat(pts, shape, "points")
    if counts:
        return np.bincount(flat, minlength=shape[0] * shape[1]).astype(np.int32).reshape(shape)
    out = np.zeros(shape, dtype=np.uint8)
    out.ravel()[flat] = 1
    return out


def _antonio_kernel(n_fft: int, s: float) -> np.ndarray:
    f = np.fft.fftfreq(n_fft, d=1.0 / n_fft)  # 0, 1, ..., N/2-1, -N/2, ..., -1 (fftshift of -N/2..N/2-1)
    return np.fft.ifft(np.exp(-(f * f) / (s * s))).real


def _antonio_factors(k, n_fft, rows, cols, weights, h, w):
    """``A (H, n)``, ``B (W, n)`` with ``G = A @ B.T``: one periodic kernel column per fixated pixel."""
    a_r = k[(np.arange(h)[:, None] - rows[None, :]) % n_fft] * weights[None, :]
    b_c = k[(np.arange(w)[:, None] - cols[None, :]) % n_fft]
    return a_r, b_c


def _mit_kernel(h: int, w: int, sigma: float) -> tuple[np.ndarray, int]:
    n = max(h, w)
    n_fft = int(2 ** math.ceil(math.log2(n + n % 2)))
    fc = n * math.sqrt(math.log(2) / (2 * math.pi**2 * sigma**2))
    return _antonio_kernel(n_fft, fc / math.sqrt(math.log(2))), n_fft


def fixation_density_map(
    fixations: Any,
    shape: tuple[int, int] | None = None,
    *,
    sigma: float | None = None,
    convention: str = "mit",
) -> np.ndarray:
    """Continuous fixation map (float64, ``shape``) from points or a binary/count map.

    ``convention="mit"`` reproduces ``run_antonioGaussian(F, sigma)`` of the MIT benchmark (default
    ``sigma=25``): a Gaussian transfer function applied on an FFT grid zero-padded to the next power of two
    ``N >= max(H, W)``, so the spatial Gaussian's standard deviation is ``sigma * N / max(H, W)`` pixels
    (32 px for an 800-pixel-wide image), with circular boundaries on the padded grid (mass near the
    bottom/right edges leaks away) and no normalisation.  It is computed as a separable sum of the same
    periodic kernel over the fixated pixels (exact up to round-off: agrees with Octave to ~1e-18).

    ``convention="gaussian"``: a plain Gaussian blur with standard deviation ``sigma`` pixels (default 25;
    ``scipy.ndimage.gaussian_filter``, zero padding outside the image, truncated at 4 sigma).  Use
    :func:`degrees_to_pixels` to express sigma in degrees of visual angle.

    ``fixations``: (N, 2) points (``shape`` required) or a 2-D map (its values are the weights).

    >>> g = fixation_density_map([[10.0, 10.0]], (40, 50))
    >>> g.shape, int(g.argmax())
    ((40, 50), 510)
    """
    if convention not in ("mit", "gaussian"):
        raise InputError(f"unknown convention {convention!r} for fixation_density_map; expected 'mit' or 'gaussian'")
    a = np.asarray(fixations)
    if a.ndim == 2 and not is_points(a) or (shape is not None and a.shape == tuple(shape) and a.ndim == 2):
        f = check_map(a, "fixations")
        if np.any(f < 0):
            raise InputError("fixations (a fixation map) has negative values")
        shape = f.shape
        flat = np.flatnonzero(f)
        weights = f.ravel()[flat]
    else:
        if shape is None:
            raise InputError("fixation_density_map needs shape=(H, W) when fixations are points")
        shape = (int(shape[0]), int(shape[1]))
        flat_all = points_to_flat(np.asarray(a, dtype=np.float64).reshape(-1, 2), shape, "fixations")
        flat, counts = np.unique(flat_all, return_counts=True)
        weights = np.ones(flat.size) if convention == "mit" else counts.astype(np.float64)
    h, w = shape
    sig = MIT_SIGMA if sigma is None else float(sigma)
    if not sig > 0:
        raise InputError(f"sigma must be > 0, got {sigma}")
    if convention == "gaussian":
        from scipy.ndimage import gaussian_filter

        f = np.zeros(shape)
        f.ravel()[flat] = weights
        return gaussian_filter(f, sig, mode="constant", truncate=4.0)
    k, n_fft = _mit_kernel(h, w, sig)
    rows, cols = np.divmod(flat, w)
    if flat.size <= 1500:
        a_r, b_c = _antonio_factors(k, n_fft, rows, cols, weights, h, w)
        return a_r @ b_c.T
    f = np.zeros((n_fft, n_fft))
    f[rows, cols] = weights
    kf = np.fft.rfft(k).real
    spec = np.fft.rfft2(f) * (np.fft.fft(k).real[:, None] * kf[None, :])
    return np.fft.irfft2(spec, s=(n_fft, n_fft))[:h, :w]


def centre_bias_map(shape: tuple[int, int], *, sigma_fraction: float = 0.25) -> np.ndarray:
    """Isotropic centred Gaussian ``exp(-d^2 / (2 sigma^2))``, ``sigma = sigma_fraction * H``, max 1.

    The default baseline of :func:`evaluate`'s information gain (sigma = H/4: 150 px for 600 x 800).

    >>> float(centre_bias_map((3, 3))[1, 1])
    1.0
    """
    h, w = int(shape[0]), int(shape[1])
    sig = sigma_fraction * h
    r = np.arange(h) - (h - 1) / 2.0
    c = np.arange(w) - (w - 1) / 2.0
    return np.exp(-(r[:, None] ** 2) / (2 * sig * sig)) * np.exp(-(c[None, :] ** 2) / (2 * sig * sig))


def pixels_per_degree(distance: float, screen_size: float, screen_pixels: int) -> float:
    """Pixels per degree of visual angle at the screen centre.

    ``distance`` (viewer to screen) and ``screen_size`` (the extent spanned by ``screen_pixels``) in the same
    unit.  ``screen_pixels / (2 * degrees(atan(screen_size / (2 * distance))))``.

    >>> round(pixels_per_degree(60.0, 52.0, 1920), 1)
    41.0
    """
    if not (distance > 0 and screen_size > 0 and screen_pixels > 0):
        raise InputError("distance, screen_size and screen_pixels must all be positive")
    return float(screen_pixels / (2.0 * math.degrees(math.atan(screen_size / (2.0 * distance)))))


def degrees_to_pixels(deg: float, pixels_per_degree: float) -> float:
    """Convert degrees of visual angle to pixels: ``deg * pixels_per_degree``.

    >>> degrees_to_pixels(1.0, 35.0)
    35.0
    """
    if not pixels_per_degree > 0:
        raise InputError(f"pixels_per_degree must be > 0, got {pixels_per_degree}")
    return float(deg) * float(pixels_per_degree)


def _density_from_fix(fix: Fix) -> tuple[np.ndarray, Any]:
    """The MIT continuous map of the fixated pixels (both conventions; see :func:`evaluate`), and its
    factors ``(A, B)`` (``G = A @ B.T``) when it was built as a separable sum (None otherwise)."""
    if fix.unique.size > 1500:
        f = np.zeros(fix.shape)
        f.ravel()[fix.unique] = 1.0
        return fixation_density_map(f, convention="mit"), None
    h, w = fix.shape
    k, n_fft = _mit_kernel(h, w, MIT_SIGMA)
    rows, cols = np.divmod(fix.unique, w)
    a_r, b_c = _antonio_factors(k, n_fft, rows, cols, np.ones(fix.unique.size), h, w)
    return a_r @ b_c.T, (a_r, b_c)


class GroundTruth:
    """The per-image work of the metrics that does not depend on the saliency map, done once.

    Made by :func:`prepare_ground_truth`; :func:`evaluate` accepts it in place of ``fixations`` and then
    reuses, for every map scored against it, the resolved fixated pixels, the continuous fixation map and
    its statistics (mean, centred sum of squares, the MIT and pysaliency densities), its 1/32 EMD
    histogram, the other images' fixations (sAUC) and the baseline map's terms (IG).  Worth it when several
    methods are scored on the same images.  The arrays it holds are private read-only copies.

    Attributes: ``shape`` ``(H, W)``; ``n_fixations`` (fixations as given) and ``n_fixated_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.metrics import evaluate, prepare_ground_truth
    >>> gt = prepare_ground_truth(np.array([[10.0, 5.0], [12.0, 5.0], [10.0, 5.0]]), (20, 30))
    >>> gt
    GroundTruth(shape=(20, 30), n_fixations=3, n_fixated_pixels=2, other_fixations=False)
    >>> gt.shape, gt.n_fixations, gt.n_fixated_pixels
    ((20, 30), 3, 2)
    >>> sorted(evaluate(np.random.default_rng(0).random((20, 30)), gt, metrics="nss,cc"))
    ['cc', 'nss']
    """

    def __init__(self, fix: Fix | None, g: np.ndarray | None, other: Fix | None, baseline: np.ndarray | None,
                 shape: tuple[int, int] | None = None):
        # fix is None only in the per-metric ground truth of cc/kld/sim/emd, which never reads it
        self.fix: Fix = fix  # type: ignore[assignment]
        self.shape: tuple[int, int] = fix.shape if fix is not None else tuple(shape)  # type: ignore[arg-type,assignment]
        self.other = other
        self._g = g
        self._factors: Any = None
        self._baseline = baseline
        self._cache: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return (f"GroundTruth(shape={self.shape}, n_fixations={self.n_fixations}, "
                f"n_fixated_pixels={self.n_fixated_pixels}, other_fixations={self.other is not None})")

    @property
    def n_fixations(self) -> int:
        return int(self.fix.flat.size)

    @property
    def n_fixated_pixels(self) -> int:
        return int(self.fix.unique.size)

    @property
    def g(self) -> np.ndarray:
        """The continuous fixation map ``(H, W)`` (given, or the MIT blur of the fixated pixels)."""
        if self._g is None:
            g, self._factors = _density_from_fix(self.fix)
            g.flags.writeable = False
            self._g = g
        return self._g

    @property
    def g_flat(self) -> np.ndarray:
        return self.cached("g_flat")

    @property
    def g_constant(self) -> bool:
        lo, hi, _ = self.cached("g_stats")
        return not hi > lo

    def precompute(self, convention: str | Sequence[str] = CONVENTIONS) -> GroundTruth:
        """Compute now (instead of on first use) everything map-independent that :func:`evaluate` needs
        under ``convention`` (one name or several): the continuous map, its statistics and densities, the
        EMD histogram and the baseline terms of IG.  Returns ``self``."""
        convs = (convention,) if isinstance(convention, str) else tuple(convention)
        for conv in convs:
            check_convention(conv)
            for key in ("g_flat", "g_stats", ("emd", EMD_DOWNSIZE)):
                self.cached(key)
            if self.fix is not None:
                b = self.baseline()
                self._ig_terms(b, conv)
        return self

    def _ig_terms(self, baseline: np.ndarray, convention: str) -> float | np.ndarray:
        key = ("ig", convention, id(baseline))
        base = self._cache.get(key)
        if base is None:
            b = baseline if baseline.shape == self.shape else resize_to(baseline, self.shape, convention)
            base = self._cache[key] = baseline_terms(b, self.fix, convention)  # type: ignore[arg-type]
        return base

    def baseline(self) -> np.ndarray:
        if self._baseline is None:
            self._baseline = _centre_bias_cached(self.shape)
        return self._baseline

    def cached(self, key: Any) -> Any:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._compute(key)
            self._cache[key] = hit
        return hit

    def _compute(self, key: Any) -> Any:
        if key == "g_flat":
            return np.ascontiguousarray(self.g).ravel()
        if key == "g_stats":
            g = self.g_flat
            return float(g.min()), float(g.max()), float(g.sum())
        if key == "dens_tue":
            return np.ascontiguousarray(density(self.g)).ravel()
        if isinstance(key, tuple) and key[0] == "emd":
            return _emd_histogram(self.g, key[1], self._factors)
        raise KeyError(key)  # pragma: no cover


def _emd_histogram(g: np.ndarray, downsize: int, factors: Any) -> np.ndarray:
    """EMD.m's ``imresize(G, 1/downsize)`` normalised to sum 1 (a G built as ``A @ B.T`` shrinks its
    thin factors instead of the full map: same values up to round-off)."""
    mats = shrink_matrices(g.shape, 1.0 / downsize) if factors is not None else None
    if mats is not None:
        im1 = (mats[0] @ factors[0]) @ (mats[1] @ factors[1]).T
    else:
        im1 = imresize_bicubic(g, 1.0 / downsize)
    return im1 / im1.sum()


_CENTRE: dict[tuple[int, int], np.ndarray] = {}


def _centre_bias_cached(shape: tuple[int, int]) -> np.ndarray:
    key = (int(shape[0]), int(shape[1]))
    b = _CENTRE.get(key)
    if b is None:
        if len(_CENTRE) > 8:
            _CENTRE.clear()
        b = centre_bias_map(key)
        b.flags.writeable = False
        _CENTRE[key] = b
    return b


def prepare_ground_truth(
    fixations: Any,
    shape: tuple[int, int] | None = None,
    *,
    fixation_map: Any = None,
    other_fixations: Any = None,
    baseline_map: Any = None,
    convention: str | Sequence[str] | None = None,
) -> GroundTruth:
    """Resolve one image's fixation data once, for scoring several saliency maps with :func:`evaluate`.

    ``fixations``: ``(N, 2)`` points (then ``shape`` = ``(H, W)`` or ``fixation_map`` gives the image size)
    or a binary/count map.  ``fixation_map``: the continuous ground truth; default: the MIT blur of the
    fixated pixels (:func:`fixation_density_map`), computed on first use.  ``other_fixations``: for sAUC.
    ``baseline_map``: for IG (default :func:`centre_bias_map`).  Validation is the same as in
    :func:`evaluate`; the inputs are copied, so later changes to them do not affect the object.
    ``convention``: ``None`` computes the rest lazily, on first use; ``"mit"``, ``"tuebingen"`` or both
    compute now what those conventions need (:meth:`GroundTruth.precompute`).

    ``evaluate(smap, prepare_ground_truth(fix, ...), ...)`` returns exactly what
    ``evaluate(smap, fix, ...)`` with the same arguments returns.

    >>> import numpy as np
    >>> from salience.metrics import evaluate
    >>> gt = prepare_ground_truth(np.array([[40.0, 30.0], [10.0, 50.0]]), (60, 80))
    >>> smap = np.random.default_rng(0).random((60, 80))
    >>> evaluate(smap, gt, metrics="nss,cc") == evaluate(smap, np.array([[40.0, 30.0], [10.0, 50.0]]),
    ...                                                   metrics="nss,cc")
    True
    """
    if isinstance(fixations, GroundTruth):
        raise InputError("fixations is already a GroundTruth; pass it to evaluate() directly")
    g = check_gt(fixation_map) if fixation_map is not None else None
    target: Any
    if g is not None:
        target = g.shape
    elif shape_of_fixations(fixations) is not None:
        target = shape_of_fixations(fixations)
    elif shape is not None:
        target = (int(shape[0]), int(shape[1]))
    else:
        raise InputError("prepare_ground_truth needs shape=(H, W) when fixations are points and no "
                         "fixation_map gives the image size")
    if shape is not None and tuple(int(v) for v in shape) != tuple(target):
        raise InputError(f"shape={tuple(shape)} does not match the fixation data's size {tuple(target)}")
    gt = build_ground_truth(fixations, target, g, other_fixations, baseline_map, copy=True)
    return gt if convention is None else gt.precompute(convention)


def build_ground_truth(fixations: Any, shape: tuple[int, int], g: np.ndarray | None, other_fixations: Any,
                  baseline_map: Any, *, copy: bool) -> GroundTruth:
    """The :class:`GroundTruth` of checked inputs at the image size ``shape`` (internal: used by
    :func:`prepare_ground_truth`, which copies, and by :func:`salience.metrics.evaluate`, which does not)."""
    fix = resolve_fixations(fixations, shape)
    if fix.shape != tuple(shape):
        raise InputError(f"the fixation map has shape {fix.shape} but fixation_map has shape {tuple(shape)}")
    other = None
    if other_fixations is not None:
        other = resolve_fixations(other_fixations, shape, "other_fixations")
        if other.shape != tuple(shape):
            raise InputError(f"other_fixations map has shape {other.shape}, expected {tuple(shape)}")
    b = check_map(baseline_map, "baseline_map") if baseline_map is not None else None
    if copy:
        if g is not None:
            g = np.array(g, dtype=np.float64)
            g.flags.writeable = False
        if b is not None:
            b = np.array(b, dtype=np.float64)
            b.flags.writeable = False
    return GroundTruth(fix, g, other, b)
