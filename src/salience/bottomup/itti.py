"""The Itti-Koch-Niebur (1998) saliency model.

L. Itti, C. Koch, E. Niebur. A model of saliency-based visual attention for rapid scene analysis.
IEEE Transactions on Pattern Analysis and Machine Intelligence 20(11):1254-1259, 1998.

The pipeline, in the paper's notation (``docs/methods.md`` has the full account and every departure):

1. Dyadic Gaussian pyramids over nine scales, ``σ = 0..8``.
2. Early features.  Intensity ``I = (r + g + b) / 3``.  ``r, g, b`` are divided by ``I`` where
   ``I > max(I) / 10`` and set to 0 elsewhere (hue decoupled from intensity), then four broadly tuned
   colours: ``R = r - (g + b)/2``, ``G = g - (r + b)/2``, ``B = b - (r + g)/2``,
   ``Y = (r + g)/2 - |r - g|/2 - b`` (negative values set to 0).  Orientation: Gabor energy at 0, 45, 90
   and 135 degrees on each pyramid level.
3. Centre-surround feature maps for centre scales ``c ∈ {2, 3, 4}`` and surround scales ``s = c + δ``,
   ``δ ∈ {3, 4}``: ``I(c,s) = |I(c) ⊖ I(s)|``, ``RG(c,s) = |(R(c) - G(c)) ⊖ (R(s) - G(s))|``,
   ``BY(c,s) = |(B(c) - Y(c)) ⊖ (B(s) - Y(s))|``, ``O(c,s,θ) = |O(c,θ) ⊖ O(s,θ)|``: 6 + 12 + 24 = 42 maps.
4. The normalisation operator ``N(.)``: scale a map to ``[0, M]``, find the mean ``m̄`` of its local maxima
   other than the global one, multiply the map by ``(M - m̄)²`` (1998).  Or the iterative
   difference-of-Gaussians competition of Itti & Koch (2001), ``normalization="iterative"``.
5. Conspicuity maps at scale 4 by across-scale addition ``⊕``: ``Ī = ⊕ N(I(c,s))``,
   ``C̄ = ⊕ [N(RG(c,s)) + N(BY(c,s))]``, ``Ō = Σ_θ N(⊕ N(O(c,s,θ)))``.
6. Saliency ``S = (N(Ī) + N(C̄) + N(Ō)) / 3`` (or the maximum, ``combination="max"``), divided by its
   maximum and resized to the input's size.

Everything runs on OpenCV primitives in float32; the full model on a 640 x 480 image takes a few
milliseconds on one core (``benchmarks/bench_bottomup.py``).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..io import load_image, method_input
from .pyramid import expand_bilinear, expand_levels, laplacian_level, resize_map, to_size

__all__ = ["IttiParams", "IttiResult", "itti_koch", "itti_koch_map", "normalize_map", "normalize_stack",
           "local_maxima_coefficients", "conspicuity_maps", "Conspicuity", "AddedChannels", "CHANNELS"]

#: The three feature channels of the model, in the order used by :attr:`IttiParams.weights`.
CHANNELS: tuple[str, str, str] = ("intensity", "color", "orientation")
_CHANNEL_ALIASES = {"intensity": "intensity", "color": "color", "colour": "color", "orientation": "orientation"}
_NORMALIZATIONS = ("local-maxima", "iterative")
_COMBINATIONS = ("mean", "max")

#: A map whose value range is below this is taken as flat (no structure): N(.) makes it zero.  Values are
#: O(1) (intensity in [0, 1], colour opponency at most 3), float32 rounding noise is ~1e-7.
_FLAT_EPS = 1e-5


# ---- parameters ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IttiParams:
    """Parameters of :func:`itti_koch`, with the defaults of Itti, Koch & Niebur (1998).

    Attributes
    ----------
    n_scales:
        Number of pyramid scales (0 .. ``n_scales - 1``).  Paper: 9.
    centre_scales:
        Centre scales ``c``.  Paper: ``(2, 3, 4)``.
    deltas:
        Surround offsets ``δ``, surround scale ``s = c + δ``.  Paper: ``(3, 4)``.
    orientations:
        Gabor orientations in degrees.  ``θ`` is the orientation of the preferred bar or edge, counter-
        clockwise from horizontal as the image is displayed: 0 = horizontal, 90 = vertical.  Paper:
        ``(0, 45, 90, 135)``.
    channels:
        Which feature channels to compute, any of ``"intensity"``, ``"color"`` (or ``"colour"``),
        ``"orientation"``; e.g. ``("color",)`` runs the colour channel alone.
    weights:
        Weights of the intensity, colour and orientation conspicuity maps in the combination, in that
        order (a mapping ``{"color": 2.0}`` is also accepted; missing entries are 1).  Paper: equal.
    normalization:
        ``"local-maxima"``: the 1998 operator ``N(.)``.  ``"iterative"``: the iterative difference-of-
        Gaussians rule of Itti & Koch (2001), with ``iterations`` and the ``dog_*`` constants below.
    combination:
        ``"mean"`` (the paper's ``S = (N(Ī) + N(C̄) + N(Ō)) / 3``, weighted) or ``"max"`` (the
        point-wise maximum of the weighted normalised conspicuity maps).
    output_scale:
        Scale at which conspicuity and saliency maps are computed.  Paper: 4.  The returned map is
        resized to the input's size.
    hue_threshold:
        ``r, g, b`` are divided by ``I`` only where ``I`` exceeds this fraction of ``max(I)``; elsewhere the
        colour channels are 0.  Paper: 1/10.
    local_max_threshold:
        For the 1998 ``N(.)``: local maxima below this fraction of the map's range are not counted in
        ``m̄`` (the paper does not say which maxima count; this keeps flat-region ripples out).
    gabor_wavelength, gabor_sigma:
        Wavelength of the Gabor carrier and standard deviation of its Gaussian envelope, in pixels of
        each pyramid level.  The Gabor filter is applied to the Laplacian (band-pass) level, so it sees
        the band around 1/4 cycle per pixel; its energy (the modulus of the even/odd quadrature pair) is
        the orientation feature.  Defaults 4 and 2: neighbouring orientations 45 degrees apart cross at
        about half of the peak response.  The kernel is truncated at 3 ``gabor_sigma``.
    iterations:
        Iterations of the 2001 rule (``normalization="iterative"`` only).
    dog_excitation, dog_inhibition, dog_sigma_ex, dog_sigma_inh, dog_bias:
        The 2001 rule's constants ``c_ex = 0.5``, ``c_inh = 1.5``, ``σ_ex = 2 %`` and ``σ_inh = 25 %``
        of the map's width, and the global inhibition ``C_inh = 0.02``.

    Examples
    --------
    >>> from salience.bottomup.itti import IttiParams
    >>> IttiParams().centre_scales, IttiParams(combination="max").combination
    ((2, 3, 4), 'max')
    >>> IttiParams(channels=["colour"]).channels
    ('color',)
    """

    n_scales: int = 9
    centre_scales: tuple[int, ...] = (2, 3, 4)
    deltas: tuple[int, ...] = (3, 4)
    orientations: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0)
    channels: tuple[str, ...] = CHANNELS
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    normalization: str = "local-maxima"
    combination: str = "mean"
    output_scale: int = 4
    hue_threshold: float = 0.1
    local_max_threshold: float = 0.1
    gabor_wavelength: float = 4.0
    gabor_sigma: float = 2.0
    iterations: int = 3
    dog_excitation: float = 0.5
    dog_inhibition: float = 1.5
    dog_sigma_ex: float = 0.02
    dog_sigma_inh: float = 0.25
    dog_bias: float = 0.02

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        n = _int("n_scales", self.n_scales, 2, 16)
        set_(self, "n_scales", n)
        centres = _int_tuple("centre_scales", self.centre_scales, 0, n - 1)
        deltas = _int_tuple("deltas", self.deltas, 1, n - 1)
        if max(centres) + max(deltas) > n - 1:
            raise InputError(
                f"IttiParams: the coarsest surround scale c + δ = {max(centres)} + {max(deltas)} exceeds the "
                f"last pyramid scale {n - 1}; lower centre_scales/deltas or raise n_scales"
            )
        set_(self, "centre_scales", centres)
        set_(self, "deltas", deltas)
        set_(self, "orientations", _orientations(self.orientations))
        set_(self, "channels", _channels(self.channels))
        set_(self, "weights", _weights(self.weights, self.channels))
        set_(self, "normalization", _choice("normalization", self.normalization, _NORMALIZATIONS,
                                            "'local-maxima' (Itti et al. 1998) or 'iterative' (Itti & Koch 2001)"))
        set_(self, "combination", _choice("combination", self.combination, _COMBINATIONS, "'mean' or 'max'"))
        set_(self, "output_scale", _int("output_scale", self.output_scale, 0, n - 1))
        set_(self, "hue_threshold", _real("hue_threshold", self.hue_threshold, 0.0, 1.0, hi_open=True))
        set_(self, "local_max_threshold",
             _real("local_max_threshold", self.local_max_threshold, 0.0, 1.0, hi_open=True))
        set_(self, "gabor_wavelength", _real("gabor_wavelength", self.gabor_wavelength, 2.0, 64.0))
        set_(self, "gabor_sigma", _real("gabor_sigma", self.gabor_sigma, 0.25, 32.0))
        set_(self, "iterations", _int("iterations", self.iterations, 1, 100))
        set_(self, "dog_excitation", _real("dog_excitation", self.dog_excitation, 0.0, 10.0))
        set_(self, "dog_inhibition", _real("dog_inhibition", self.dog_inhibition, 0.0, 10.0))
        set_(self, "dog_sigma_ex", _real("dog_sigma_ex", self.dog_sigma_ex, 1e-4, 10.0))
        set_(self, "dog_sigma_inh", _real("dog_sigma_inh", self.dog_sigma_inh, 1e-4, 10.0))
        set_(self, "dog_bias", _real("dog_bias", self.dog_bias, 0.0, 10.0))

    @classmethod
    def from_overrides(cls, base: IttiParams | None = None, **overrides: Any) -> IttiParams:
        """``base`` (default: the paper's parameters) with some fields replaced; unknown names are errors."""
        base = cls() if base is None else base
        if not isinstance(base, IttiParams):
            raise InputError(f"params must be an IttiParams (or None for the defaults), got {type(base).__name__}")
        if not overrides:
            return base
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InputError(
                f"unknown Itti-Koch parameter(s) {', '.join(map(repr, unknown))}; valid names: "
                f"{', '.join(sorted(names))}"
            )
        return dataclasses.replace(base, **overrides)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise InputError(f"IttiParams.{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _real(name: str, value: Any, lo: float, hi: float, *, hi_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else math.nan
    if not (ok and math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)):
        bracket = ")" if hi_open else "]"
        raise InputError(f"IttiParams.{name} must be a number in [{lo:g}, {hi:g}{bracket}, got {value!r}")
    return v


def _seq(name: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"IttiParams.{name} must be a sequence (tuple or list), got {value!r}")
    items = tuple(value)
    if not items:
        raise InputError(f"IttiParams.{name} must not be empty")
    return items


def _int_tuple(name: str, value: Any, lo: int, hi: int) -> tuple[int, ...]:
    items = _seq(name, value)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
            raise InputError(f"IttiParams.{name} must hold integers in [{lo}, {hi}], got {value!r}")
    out = tuple(sorted({int(v) for v in items}))
    if len(out) != len(items):
        raise InputError(f"IttiParams.{name} has repeated values: {value!r}")
    return out


def _orientations(value: Any) -> tuple[float, ...]:
    items = _seq("orientations", value)
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise InputError(f"IttiParams.orientations must hold finite angles in degrees, got {value!r}")
        out.append(float(v))
    mods = {round(v % 180.0, 9) for v in out}
    if len(mods) != len(out):
        raise InputError(
            f"IttiParams.orientations has angles that coincide modulo 180 degrees: {value!r} (an orientation "
            "and its opposite are the same Gabor energy)"
        )
    if len(out) > 32:
        raise InputError(f"IttiParams.orientations has {len(out)} angles; at most 32 are supported")
    return tuple(out)


def _channels(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else _seq("channels", value)
    names = []
    for v in items:
        key = _CHANNEL_ALIASES.get(str(v).strip().lower()) if isinstance(v, str) else None
        if key is None:
            raise InputError(
                f"IttiParams.channels: unknown channel {v!r}; choose from 'intensity', 'color', 'orientation'"
            )
        if key in names:
            raise InputError(f"IttiParams.channels names {key!r} twice: {value!r}")
        names.append(key)
    return tuple(c for c in CHANNELS if c in names)


def _weights(value: Any, channels: tuple[str, ...]) -> tuple[float, float, float]:
    if isinstance(value, Mapping):
        vals = [1.0, 1.0, 1.0]
        for k, v in value.items():
            key = _CHANNEL_ALIASES.get(str(k).strip().lower())
            if key is None:
                raise InputError(
                    f"IttiParams.weights: unknown channel {k!r}; use 'intensity', 'color', 'orientation'"
                )
            vals[CHANNELS.index(key)] = v
        items: tuple = tuple(vals)
    else:
        items = _seq("weights", value)
        if len(items) != 3:
            raise InputError(
                f"IttiParams.weights must have 3 entries (intensity, color, orientation), got {value!r}"
            )
    out = tuple(_real("weights", v, 0.0, 1e6) for v in items)
    if sum(out[CHANNELS.index(c)] for c in channels) <= 0:
        raise InputError(
            f"IttiParams.weights {out} give every enabled channel {channels} weight 0; at least one must be > 0"
        )
    return out  # type: ignore[return-value]


def _choice(name: str, value: Any, options: tuple[str, ...], described: str) -> str:
    key = value.strip().lower().replace("_", "-") if isinstance(value, str) else None
    if key not in options:
        raise InputError(f"IttiParams.{name} must be {described}, got {value!r}")
    return key


# ---- result ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IttiResult:
    """Everything :func:`itti_koch` computes, for inspection and plotting.

    Attributes
    ----------
    saliency:
        float32 ``(H, W)`` at the input's size, in ``[0, 1]`` (divided by its maximum; all zeros when the
        image has no contrast at all).
    feature_maps:
        The centre-surround feature maps (before ``N(.)``), each float32 ``>= 0`` at its centre scale,
        keyed ``"intensity c2s5"``, ``"rg c2s5"``, ``"by c3s7"``, ``"orientation 45 c4s8"``.  With the
        default parameters there are 42: 6 intensity, 6 red/green, 6 blue/yellow, 24 orientation.
    conspicuity:
        The conspicuity maps ``Ī``, ``C̄``, ``Ō`` (before the final ``N(.)``) at the output scale, float32
        ``>= 0``, keyed ``"intensity"``, ``"color"``, ``"orientation"`` (only the enabled channels).
    params:
        The :class:`IttiParams` used.
    """

    saliency: np.ndarray
    feature_maps: dict[str, np.ndarray] = field(repr=False)
    conspicuity: dict[str, np.ndarray] = field(repr=False)
    params: IttiParams


# ---- normalisation N(.) ----------------------------------------------------------------------------------

# Local maxima: a pixel >= its 4 neighbours that come after it in raster order and > the 4 before it.  On
# a plateau this elects exactly one pixel (the first in raster order) instead of all of them.
_AFTER = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1]], np.uint8)
_BEFORE = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]], np.uint8)


def _as3(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """OpenCV drops a channel axis of length 1; restore the ``(h, w, K)`` shape."""
    return a.reshape(shape)


def _local_maxima_coefficients(x: np.ndarray, threshold: float,
                               ws: _Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``(a, b)`` such that ``N(x_k) = a_k x_k + b_k`` (the 1998 rule with M = 1).

    ``x`` is float32 ``(h, w, K)``.  N maps the channel to ``[0, 1]`` (min-max) and multiplies it by
    ``(1 - m̄)²``, ``m̄`` the mean of its local maxima other than the global maximum (above ``threshold``
    of the range); with no other local maximum ``m̄ = 0``.  A flat channel gets ``a = b = 0``.  Being an
    affine map per channel, N commutes with resizing, so callers may resize first and apply it after.
    """
    shape = x.shape
    k = shape[2]
    lo = np.empty(k, np.float64)
    hi = np.empty(k, np.float64)
    for i, plane in enumerate(cv2.split(x)):
        lo[i], hi[i] = cv2.minMaxLoc(plane)[:2]
    if ws is None:
        ws = _Workspace((0, 0))
    after = _as3(cv2.dilate(x, _AFTER, dst=ws.get("after", shape)), shape)
    before = _as3(cv2.dilate(x, _BEFORE, dst=ws.get("before", shape)), shape)
    mask = np.greater_equal(x, after, out=ws.get("mask", shape, np.bool_))
    mask &= np.greater(x, before, out=ws.get("mask2", shape, np.bool_))
    idx = np.flatnonzero(mask)
    vals = x.reshape(-1)[idx].astype(np.float64)
    ch = idx % k
    keep = vals >= (lo + threshold * (hi - lo))[ch]
    sums = np.bincount(ch[keep], weights=vals[keep], minlength=k).tolist()
    counts = np.bincount(ch[keep], minlength=k).tolist()
    # the rest per channel in Python floats (IEEE doubles, the same operations numpy would do on K values)
    a = [0.0] * k
    b = [0.0] * k
    for i, (low, high, total, count) in enumerate(zip(lo.tolist(), hi.tolist(), sums, counts)):
        rng = high - low
        if rng <= _FLAT_EPS:
            continue  # a flat map: N gives zero
        # the global maximum is always among them (the first maximal pixel in raster order qualifies)
        mbar = (total - high) / (count - 1) if count > 1 else low
        mbar_n = min(max((mbar - low) / rng, 0.0), 1.0)
        t = 1.0 - mbar_n
        a[i] = t * t / rng
        b[i] = -a[i] * low
    return np.array(a, np.float32), np.array(b, np.float32)


def _minmax_stack(x: np.ndarray) -> np.ndarray:
    """Each channel of ``(h, w, K)`` scaled to ``[0, 1]``; flat channels become 0.  A new array."""
    k = x.shape[2]
    lo = np.empty(k, np.float32)
    hi = np.empty(k, np.float32)
    for i, plane in enumerate(cv2.split(x)):
        lo[i], hi[i] = cv2.minMaxLoc(plane)[:2]
    rng = hi - lo
    flat = rng <= _FLAT_EPS
    scale = np.where(flat, 0.0, 1.0 / np.where(flat, 1.0, rng)).astype(np.float32)
    return (x - lo) * scale


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel (mirrored borders); wide kernels are applied on a coarser grid."""
    shape = x.shape
    if sigma < 0.3:
        return x
    if sigma <= 8.0:
        return _as3(cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101), shape)
    # Wide kernel: area-reduce by f so that sigma / f lies in [4, 8), blur there, interpolate back.  The box
    # of the reduction and the bilinear expansion add about 1/4 coarse pixel² of variance; subtract it.
    f = 2 ** int(math.floor(math.log2(sigma / 4.0)))
    h, w = shape[:2]
    small = resize_map(x, (max(1, -(-h // f)), max(1, -(-w // f))))
    s = math.sqrt(max((sigma / f) ** 2 - 0.25, 0.09))
    small = _as3(cv2.GaussianBlur(small, (0, 0), s, borderType=cv2.BORDER_REFLECT_101), small.shape)
    return resize_map(small, (h, w))


def _iterative_stack(x: np.ndarray, p: IttiParams) -> np.ndarray:
    """The Itti & Koch (2001) rule on each channel of ``(h, w, K)``: ``[0, 1]``, then
    ``M <- max(0, M + M * DoG - C_inh)`` ``p.iterations`` times."""
    m = _minmax_stack(x)
    width = x.shape[1]
    s_ex, s_inh = p.dog_sigma_ex * width, p.dog_sigma_inh * width
    c_ex, c_inh = np.float32(p.dog_excitation ** 2), np.float32(p.dog_inhibition ** 2)
    bias = np.float32(p.dog_bias)
    for _ in range(p.iterations):
        m = m + c_ex * _blur(m, s_ex) - c_inh * _blur(m, s_inh) - bias
        np.maximum(m, 0.0, out=m)
    return m


def _normalize_stack(x: np.ndarray, p: IttiParams) -> np.ndarray:
    """N(.) applied to every channel of a float32 ``(h, w, K)`` array; a new array."""
    if p.normalization == "iterative":
        return _iterative_stack(x, p)
    a, b = _local_maxima_coefficients(x, p.local_max_threshold)
    return x * a + b


def normalize_map(saliency: Any, method: str = "local-maxima", **params: Any) -> np.ndarray:
    """The normalisation operator ``N(.)`` of the model, on one 2-D map.

    ``"local-maxima"`` (Itti, Koch & Niebur 1998): the map is scaled to ``[0, 1]``, ``m̄`` is the mean of
    its local maxima other than the global maximum (those above ``local_max_threshold`` of the range; a
    plateau counts once), and the map is multiplied by ``(1 - m̄)²``: one strong peak keeps its height,
    many comparable peaks are suppressed.  ``"iterative"`` (L. Itti, C. Koch. Feature combination
    strategies for saliency-based visual attention systems. J. Electronic Imaging 10(1):161-169, 2001):
    scaled to ``[0, 1]`` and iterated ``M <- max(0, M + M * DoG - C_inh)``.

    Parameters
    ----------
    saliency:
        A finite 2-D array.
    method:
        ``"local-maxima"`` or ``"iterative"``.
    **params:
        :class:`IttiParams` fields that apply (``local_max_threshold``, ``iterations``, ``dog_*``).

    Returns
    -------
    numpy.ndarray
        float32, same shape, ``>= 0`` (``<= 1`` for ``"local-maxima"``).  A flat map gives zeros.

    >>> import numpy as np
    >>> one = np.zeros((20, 20), np.float32); one[5, 5] = 1.0
    >>> float(normalize_map(one).max())   # a single peak keeps its height
    1.0
    >>> two = one.copy(); two[15, 15] = 1.0
    >>> float(normalize_map(two).max())   # two equal peaks cancel
    0.0
    """
    from ..io import check_map

    arr = np.ascontiguousarray(check_map(saliency), dtype=np.float32)
    p = IttiParams.from_overrides(None, normalization=method, **params)
    return _normalize_stack(arr[:, :, None], p)[:, :, 0]


def normalize_stack(maps: np.ndarray, params: IttiParams | None = None) -> np.ndarray:
    """``N(.)`` of :func:`normalize_map` on every channel of a float32 ``(h, w, K)`` stack at once.

    For models built on this one (e.g. the dynamic model's flicker and motion channels): ``params`` (an
    :class:`IttiParams`, default the paper's) says which ``N(.)`` and its constants; no validation of
    the values beyond the shape, so pass finite maps.  Returns a new float32 array of the same shape.

    >>> import numpy as np
    >>> st = np.zeros((20, 20, 2), np.float32); st[5, 5] = 1.0; st[15, 15, 1] = 1.0
    >>> [float(v) for v in normalize_stack(st).max(axis=(0, 1))]   # one peak kept, two peaks cancel
    [1.0, 0.0]
    """
    arr = np.ascontiguousarray(maps, dtype=np.float32)
    if arr.ndim != 3 or arr.size == 0:
        raise InputError(f"normalize_stack expects a non-empty (h, w, K) array, got shape {arr.shape}")
    return _normalize_stack(arr, IttiParams() if params is None else params)


def local_maxima_coefficients(maps: np.ndarray, threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The 1998 ``N(.)`` of each channel of a float32 ``(h, w, K)`` stack as an affine map: float32 ``a, b``
    of length ``K`` with ``N(x_k) = a_k x_k + b_k`` (``threshold``: :attr:`IttiParams.local_max_threshold`).

    Being affine, ``N`` commutes with resizing: a caller may shrink a map first and apply ``a, b`` after,
    as the model does before its across-scale addition.

    >>> import numpy as np
    >>> st = np.zeros((20, 20, 1), np.float32); st[5, 5] = 2.0
    >>> a, b = local_maxima_coefficients(st)   # a single peak: scaled to 1
    >>> float(a[0]), abs(float(b[0]))
    (0.5, 0.0)
    """
    arr = np.ascontiguousarray(maps, dtype=np.float32)
    if arr.ndim != 3 or arr.size == 0:
        raise InputError(f"local_maxima_coefficients expects a non-empty (h, w, K) array, got shape {arr.shape}")
    return _local_maxima_coefficients(arr, float(threshold))


# ---- scratch buffers -------------------------------------------------------------------------------------

_CACHE_MAX_PIXELS = 1 << 21  # keep scratch buffers for images up to ~2 megapixels
_TLS = threading.local()


class _Workspace:
    """Per-thread scratch arrays for one image size, reused from call to call.

    Freshly allocated large arrays are mapped page by page by the kernel on first touch; for a 640 x 480
    image that costs more than the arithmetic.  Reusing buffers removes that cost.  Only the most recent
    image size is kept per thread (about ten float32 planes of the image); images above
    ``_CACHE_MAX_PIXELS`` get fresh arrays.  Nothing from here is ever returned to a caller.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.enabled = size[0] * size[1] <= _CACHE_MAX_PIXELS
        self.bufs: dict[tuple, np.ndarray] = {}

    def get(self, tag: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        if not self.enabled:
            return np.empty(shape, dtype)
        key = (tag, shape, np.dtype(dtype).str)
        buf = self.bufs.get(key)
        if buf is None:
            buf = self.bufs[key] = np.empty(shape, dtype)
        return buf


def _workspace(h: int, w: int) -> _Workspace:
    ws = getattr(_TLS, "ws", None)
    if ws is None or ws.size != (h, w):
        ws = _Workspace((h, w))
        _TLS.ws = ws
    return ws


# ---- early features --------------------------------------------------------------------------------------

_THIRD = np.full((1, 3), 1.0 / 3.0, np.float32)
# rows: r - I, g - I, b - I   (so R = 1.5 (r - I), G = 1.5 (g - I), B = 1.5 (b - I) since r + g + b = 3 I)
_MINUS_I = (np.array([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]], np.float64) / 3.0).astype(np.float32)
_RG = np.array([[1.5, -1.5, 0.0]], np.float32)  # from the rectified (r-I, g-I, b-I): R - G
_B = np.array([[0.0, 0.0, 1.5]], np.float32)  # ... and B
_P = np.array([[0.5, 0.5, -1.0]], np.float32)  # (r + g)/2 - b
_Q = np.array([[0.5, -0.5, 0.0]], np.float32)  # (r - g)/2


def _pyr_down(src: np.ndarray, ws: _Workspace, tag: str) -> np.ndarray:
    h, w = src.shape[:2]
    dst = ws.get(tag, ((h + 1) // 2, (w + 1) // 2) + src.shape[2:])
    return cv2.pyrDown(src, dst=dst).reshape(dst.shape)


def _pyramid_from(level0: np.ndarray, first: np.ndarray, top: int) -> list[np.ndarray]:
    """Levels 0..top given level 0 and level 1 (levels >= 2 are small and freshly allocated)."""
    pyr = [level0, first]
    for _ in range(top - 1):
        pyr.append(cv2.pyrDown(pyr[-1]))
    return pyr[: top + 1]


def _early_pyramids(img: np.ndarray, p: IttiParams, ws: _Workspace, top_i: int, top_c: int | None,
                    capture: list | None = None
                    ) -> tuple[list[np.ndarray], list[np.ndarray] | None, list[np.ndarray] | None]:
    """Gaussian pyramids (levels 0..top) of I, R - G and B - Y; level 0 of each lives in the workspace.

    ``I = (r + g + b)/3``; ``r, g, b`` are divided by ``I`` where ``I > hue_threshold * max(I)`` and the
    colour channels are 0 elsewhere; ``R, G, B, Y`` as in the paper, negative values set to 0.  Division
    by ``I`` is a positive scaling, which commutes with the rectification, so it is applied to the two
    opponent signals at the end.  ``capture`` (a list) receives copies of the three level-0 maps.
    """
    h, w = img.shape[:2]
    intensity = cv2.transform(img, _THIRD, dst=ws.get("A", (h, w))).reshape(h, w)
    ipyr = _pyramid_from(intensity, _pyr_down(intensity, ws, "I1"), top_i)
    if capture is not None:
        capture.append(intensity.copy())
    if top_c is None:
        return ipyr, None, None
    # inv = 1/I where I > threshold, else 0  (threshold > 0 unless the image is black or hue_threshold 0)
    thr = p.hue_threshold * cv2.minMaxLoc(intensity)[1]
    inv = cv2.threshold(intensity, thr, 1.0, cv2.THRESH_BINARY, dst=ws.get("B", (h, w)))[1].reshape(h, w)
    den = ws.get("C", (h, w))
    if h * w > 4:
        cv2.max(intensity, max(thr, 1e-12), dst=den)
    else:  # OpenCV would read an array this small as a scalar
        np.maximum(intensity, np.float32(max(thr, 1e-12)), out=den)
    np.divide(inv, den, out=inv)
    # u = max(0, (r - I, g - I, b - I)), i.e. (R, G, B) / 1.5 rectified
    u = cv2.transform(img, _MINUS_I, dst=ws.get("D", (h, w, 3)))
    cv2.threshold(u, 0.0, 0.0, cv2.THRESH_TOZERO, dst=u)
    rg = cv2.transform(u, _RG, dst=ws.get("F", (h, w))).reshape(h, w)
    cv2.multiply(rg, inv, dst=rg)
    rgpyr = _pyramid_from(rg, _pyr_down(rg, ws, "RG1"), top_c)
    bb = cv2.transform(u, _B, dst=ws.get("E", (h, w))).reshape(h, w)
    # Y = max(0, (r + g)/2 - |r - g|/2 - b); u is free now, den too
    y = cv2.transform(img, _P, dst=den).reshape(h, w)
    q = cv2.transform(img, _Q, dst=u.reshape(-1)[: h * w].reshape(h, w)).reshape(h, w)
    np.abs(q, out=q)
    cv2.subtract(y, q, dst=y)
    cv2.threshold(y, 0.0, 0.0, cv2.THRESH_TOZERO, dst=y)
    cv2.subtract(bb, y, dst=bb)
    cv2.multiply(bb, inv, dst=bb)
    bypyr = _pyramid_from(bb, _pyr_down(bb, ws, "BY1"), top_c)
    if capture is not None:
        capture += [rg.copy(), bb.copy()]
    return ipyr, rgpyr, bypyr


def _early_features(img: np.ndarray, p: IttiParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """I, R - G and B - Y at full resolution, as fresh arrays (for tests and inspection)."""
    ws = _Workspace((0, 0))
    ws.enabled = False
    out: list[np.ndarray] = []
    _early_pyramids(img, p, ws, 1, 1, capture=out)
    return out[0], out[1], out[2]


@lru_cache(maxsize=64)
def _carriers(h: int, w: int, orientations: tuple[float, ...], wavelength: float) -> np.ndarray:
    """``(h, w, 2n)`` float32, read-only: ``cos φ_θ, -sin φ_θ`` for each θ in turn, ``φ_θ = k_θ · (x, y)``.

    ``θ`` is the preferred bar orientation, counter-clockwise from horizontal on screen (rows grow
    downwards); the carrier's wave vector is perpendicular to the bar: ``k_θ = (2π/λ)(sin θ, cos θ)`` in
    (column, row) coordinates, so 0 degrees modulates along the rows (horizontal stripes).
    """
    k = 2.0 * math.pi / wavelength
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for th in orientations:
        t = math.radians(th)
        phase = k * (math.sin(t) * xs + math.cos(t) * ys)
        planes += [np.cos(phase), -np.sin(phase)]
    out = np.ascontiguousarray(np.stack(planes, axis=2), dtype=np.float32)
    out.flags.writeable = False
    return out


def _gabor_energy(band: np.ndarray, p: IttiParams, out: np.ndarray, ws: _Workspace) -> None:
    """Gabor energy of a band-pass level at each orientation, written into ``out`` (contiguous ``(h, w, n)``).

    The complex Gabor response ``Σ_y g(x - y) L(y) e^{-i k·y}`` is computed by demodulation: multiply the
    level by the complex carrier, low-pass with the Gaussian envelope ``g``, take the modulus.  That is
    the even/odd quadrature pair's energy, ``sqrt(even² + odd²)``, exactly (the carrier's phase origin
    does not change the modulus).  The level is first extended by mirroring (``BORDER_REFLECT_101``) by
    the kernel's radius and the result cropped, so the filter sees a mirrored image at the borders; this
    keeps the energy exactly equivariant under 90-degree rotations and flips of the image.
    """
    h, w = band.shape
    n = len(p.orientations)
    r = int(math.ceil(3.0 * p.gabor_sigma))
    ks = 2 * r + 1
    padded = cv2.copyMakeBorder(band, r, r, r, r, cv2.BORDER_REFLECT_101)
    hp, wp = padded.shape
    z = ws.get("gabor", (hp, wp, 2 * n))
    np.multiply(padded[:, :, None], _carriers(hp, wp, p.orientations, p.gabor_wavelength), out=z)
    cv2.GaussianBlur(z, (ks, ks), p.gabor_sigma, dst=z, borderType=cv2.BORDER_REFLECT_101)
    zc = z[r:r + h, r:r + w]  # pixels whose kernel support lies inside the mirrored extension
    sq = ws.get("gabor_sq", (h, w, 2 * n))
    np.multiply(zc, zc, out=sq)
    pairs = sq.reshape(-1, 2)  # (even², odd²) per pixel and orientation
    flat = out.reshape(-1)
    np.add(pairs[:, 0], pairs[:, 1], out=flat)
    np.sqrt(flat, out=flat)


# ---- the model -------------------------------------------------------------------------------------------

#: one block of feature maps: a tag, the channel names, and the (h, w, channels) stack at each level
_Block = tuple[str, list[str], dict[int, np.ndarray]]

#: Channels a model built on this one adds (see :func:`conspicuity_maps`): called with the intensity
#: pyramid and its Laplacian levels, it returns each added channel's map at every level used, by name.
AddedChannels = Callable[[list[np.ndarray], dict[int, np.ndarray]], Mapping[str, Mapping[int, np.ndarray]]]


@dataclass(frozen=True)
class _Stages:
    """What the model computes before its conspicuity maps, per channel name (views, not copies)."""

    blocks: list[_Block]
    totals: dict[str, np.ndarray]  # ⊕ N(X(c, s)) at the output scale
    fmaps: dict[tuple[str, int, int], np.ndarray]  # with keep: X(c, s) by (name, c, s)
    sums: dict[str, float]  # for added channels: Σ_{c,s} X(c, s) before N(.)


def _levels_used(p: IttiParams) -> list[int]:
    return sorted(set(p.centre_scales) | {c + d for c in p.centre_scales for d in p.deltas})


def _stages(img: np.ndarray, p: IttiParams, keep: bool, added: AddedChannels | None = None) -> _Stages:
    """Pyramids, feature stacks (the added channels in blocks of their own), centre-surround maps with N(.)
    and across-scale addition, in one loop over the blocks."""
    h0, w0 = img.shape[:2]
    ws = _workspace(h0, w0)
    use_c, use_o = "color" in p.channels, "orientation" in p.channels
    levels_used = _levels_used(p)
    top = max(levels_used)
    need_bands = use_o or added is not None
    ipyr, rgpyr, bypyr = _early_pyramids(img, p, ws, top + 1 if need_bands else top, top if use_c else None)
    bands = {lv: laplacian_level(ipyr[lv], ipyr[lv + 1]) for lv in levels_used} if need_bands else {}
    extra = dict(added(ipyr, bands)) if added is not None else {}
    blocks = _feature_stacks(ipyr, rgpyr, bypyr, bands, extra, levels_used, p, ws)
    totals, fmaps, sums = _centre_surround(blocks, _level_size(h0, w0, p.output_scale), p, ws, keep, set(extra))
    return _Stages(blocks, totals, fmaps, sums)


def _run(img: np.ndarray, p: IttiParams, keep: bool) -> IttiResult | np.ndarray:
    """The model, one stage per function: pyramids, feature stacks, centre-surround maps with N(.) and
    across-scale addition, conspicuity maps, their combination."""
    st = _stages(img, p, keep)
    consp = _conspicuity(st.totals, p)
    sal = _combine(consp, p, img.shape[:2])
    if not keep:
        return sal
    feature_maps = {}
    for _, names, _ in st.blocks:
        for name in names:
            for c in p.centre_scales:
                for d in p.deltas:
                    feature_maps[f"{name} c{c}s{c + d}"] = st.fmaps[(name, c, c + d)]
    return IttiResult(saliency=sal, feature_maps=feature_maps, conspicuity=consp, params=p)


def _feature_stacks(ipyr: list[np.ndarray], rgpyr: list[np.ndarray] | None, bypyr: list[np.ndarray] | None,
                    bands: dict[int, np.ndarray], added: dict[str, Mapping[int, np.ndarray]],
                    levels_used: list[int], p: IttiParams, ws: _Workspace) -> list[_Block]:
    """Feature stacks per used level, in blocks of at most 4 channels for typical parameters (OpenCV's
    fastest paths): the static single planes (intensity, rg, by) as "ic", "o" the orientations, then the
    added channels four at a time ("x1", "x2", ...; "ic" and on when there is no static plane)."""
    use_i, use_c, use_o = (c in p.channels for c in CHANNELS)
    sources: dict[str, Mapping[int, np.ndarray]] = {}
    if use_i:
        sources["intensity"] = dict(enumerate(ipyr))
    if use_c:
        sources["rg"] = dict(enumerate(rgpyr))  # type: ignore[arg-type]
        sources["by"] = dict(enumerate(bypyr))  # type: ignore[arg-type]
    static, extra = list(sources), list(added)
    sources.update(added)
    # four at a time, the added channels apart: OpenCV's pyramid and warp results differ in the last bit
    # with the number of channels, so mixing them in would change the static maps
    groups = [g for names in (static, extra) for g in (names[i:i + 4] for i in range(0, len(names), 4))]
    blocks: list[_Block] = []
    for g, names in enumerate(groups):
        tag = "ic" if g == 0 else f"x{g}"
        stacks = {}
        for lv in levels_used:
            hl, wl = ipyr[lv].shape
            st = ws.get(f"{tag}{lv}", (hl, wl, len(names)))
            for j, name in enumerate(names):
                st[:, :, j] = sources[name][lv]
            stacks[lv] = st
        blocks.append((tag, names, stacks))
    if use_o:
        names = [f"orientation {th:g}" for th in p.orientations]
        stacks = {}
        for lv in levels_used:
            hl, wl = ipyr[lv].shape
            st = ws.get(f"o{lv}", (hl, wl, len(names)))
            _gabor_energy(bands[lv], p, st, ws)
            stacks[lv] = st
        blocks.insert(1, ("o", names, stacks))
    return blocks


def _centre_surround(blocks: list[_Block], out_size: tuple[int, int], p: IttiParams, ws: _Workspace,
                     keep: bool, summed: set[str]
                     ) -> tuple[dict[str, np.ndarray], dict[tuple[str, int, int], np.ndarray], dict[str, float]]:
    """Centre-surround maps, N(.), across-scale addition at the output scale: the total of each channel
    (a view of its block's ``(h, w, channels)`` total), (``keep``) every feature map by ``(name, centre,
    surround)``, and for the channels in ``summed`` the sum of their centre-surround maps."""
    totals: dict[str, np.ndarray] = {}
    fmaps: dict[tuple[str, int, int], np.ndarray] = {}
    sums: dict[str, float] = {}
    for tag, names, stacks in blocks:
        k = len(names)
        total = np.zeros((*out_size, k), np.float32)
        want = [i for i, name in enumerate(names) if name in summed]
        acc = np.zeros(k, np.float64)
        for c in p.centre_scales:
            centre = stacks[c]
            hc, wc = centre.shape[:2]
            up = ws.get(f"up{tag}{c}", (hc, wc, k))
            fm = ws.get(f"fm{tag}{c}", (hc, wc, k))
            for d in p.deltas:
                s = c + d
                expand_bilinear(stacks[s], (hc, wc), dst=up)  # ⊖: bilinear, at the pyramid's samples
                cv2.absdiff(centre, up, dst=fm)
                if keep:
                    for i, name in enumerate(names):
                        fmaps[(name, c, s)] = fm[:, :, i].copy()
                if want:  # plane blocks hold at most 4 channels, as cv2.sumElems wants
                    acc += cv2.sumElems(fm)[:k]
                if p.normalization == "local-maxima":
                    a, b = _local_maxima_coefficients(fm, p.local_max_threshold, ws)
                    total += to_size(fm, out_size) * a + b  # N is affine per map: ⊕ first, then apply
                else:
                    total += to_size(_normalize_stack(fm, p), out_size)
        for i, name in enumerate(names):
            totals[name] = total[:, :, i]
        sums.update((names[i], float(acc[i])) for i in want)
    return totals, fmaps, sums


def _conspicuity(totals: dict[str, np.ndarray], p: IttiParams) -> dict[str, np.ndarray]:
    """Conspicuity maps at the output scale: intensity, colour (rg + by), orientation (N(.) of each, summed)."""
    consp: dict[str, np.ndarray] = {}
    if "intensity" in p.channels:
        consp["intensity"] = totals["intensity"].copy()
    if "color" in p.channels:
        consp["color"] = totals["rg"] + totals["by"]
    if "orientation" in p.channels:
        o = np.stack([totals[f"orientation {th:g}"] for th in p.orientations], axis=2)
        consp["orientation"] = _normalize_stack(o, p).sum(axis=2, dtype=np.float32)
    return consp


def _combine(consp: dict[str, np.ndarray], p: IttiParams, size: tuple[int, int]) -> np.ndarray:
    """N(.) of the conspicuity maps, their weighted mean (or max), at the input ``size``, divided by the peak."""
    keys = list(consp)
    ncons = _normalize_stack(np.stack([consp[key] for key in keys], axis=2), p)
    wts = np.array([p.weights[CHANNELS.index(key)] for key in keys], np.float32)
    if p.combination == "mean":
        sal = (ncons * (wts / wts.sum())).sum(axis=2, dtype=np.float32)
    else:
        sal = (ncons * wts).max(axis=2)
    sal = expand_levels(np.ascontiguousarray(sal, dtype=np.float32), size)  # a new array
    peak = cv2.minMaxLoc(sal)[1]
    if not math.isfinite(peak):  # cannot happen with validated input; never return NaN
        raise InputError("the Itti-Koch map is not finite; check that the image holds finite values in [0, 1]")
    if peak > 0:
        # Divide (not multiply by 1/peak): correctly rounded x / peak is exactly 1 at the peak and <= 1
        # elsewhere on every CPU, whereas peak * fl(1/peak) falls an ulp short for some peaks, and which
        # peak a machine gets depends on OpenCV's vector paths.
        np.divide(sal, np.float32(peak), out=sal)
    else:
        sal[...] = 0.0
    return sal


def _level_size(h: int, w: int, level: int) -> tuple[int, int]:
    for _ in range(level):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def _prepare(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return method_input(image)  # validated; no copy when already float32 (H, W, 3) in [0, 1]
    return load_image(image)


def itti_koch(image: Any, params: IttiParams | None = None, return_intermediates: bool = False,
              **overrides: Any) -> np.ndarray | IttiResult:
    """Saliency map of the Itti-Koch-Niebur (1998) model.

    L. Itti, C. Koch, E. Niebur. A model of saliency-based visual attention for rapid scene analysis.
    IEEE TPAMI 20(11):1254-1259, 1998.  What each step computes, and where this implementation departs
    from the paper, is in ``docs/methods.md``.

    Parameters
    ----------
    image:
        Anything :func:`salience.load_image` accepts: a path, bytes, a file object, a PIL image or an
        array.  Not modified.
    params:
        An :class:`IttiParams` (default: the paper's parameters).
    return_intermediates:
        Return an :class:`IttiResult` with the 42 feature maps and the 3 conspicuity maps as well.
    **overrides:
        :class:`IttiParams` fields to change, e.g. ``combination="max"``, ``channels=("color",)``.

    Returns
    -------
    numpy.ndarray or IttiResult
        The saliency map: float32 ``(H, W)`` at the input's size, values in ``[0, 1]`` (the map divided
        by its maximum; an image without contrast gives all zeros).  With ``return_intermediates``, an
        :class:`IttiResult` whose ``.saliency`` is that map.

    Raises
    ------
    salience.errors.InputError
        A bad image (see :func:`salience.load_image`) or bad parameters.

    Examples
    --------
    >>> import numpy as np, salience
    >>> img = np.full((120, 160, 3), 0.5, np.float32); img[50:60, 100:110] = 1.0   # one bright square
    >>> s = salience.itti_koch(img)
    >>> s.shape, s.dtype, float(s.max())
    ((120, 160), dtype('float32'), 1.0)
    >>> y, x = np.unravel_index(s.argmax(), s.shape); bool(45 <= y <= 65 and 95 <= x <= 115)
    True
    >>> r = salience.itti_koch(img, return_intermediates=True)
    >>> len(r.feature_maps), sorted(r.conspicuity)
    (42, ['color', 'intensity', 'orientation'])
    """
    p = IttiParams.from_overrides(params, **overrides)
    if not isinstance(return_intermediates, (bool, np.bool_)):
        raise InputError(f"return_intermediates must be True or False, got {return_intermediates!r}")
    return _run(_prepare(image), p, bool(return_intermediates))


def itti_koch_map(image: Any, **params: Any) -> np.ndarray:
    """The registry's entry for ``"itti"``: :func:`itti_koch` with keyword overrides of :class:`IttiParams`.

    L. Itti, C. Koch, E. Niebur. A model of saliency-based visual attention for rapid scene analysis.
    IEEE TPAMI 20(11):1254-1259, 1998.

    ``image`` is a float32 ``(H, W, 3)`` array in ``[0, 1]`` (other image inputs are converted); returns the
    float32 ``(H, W)`` saliency map in ``[0, 1]``, finite.

    >>> import numpy as np
    >>> itti_koch_map(np.zeros((32, 48, 3), np.float32), combination="max").max()
    np.float32(0.0)
    """
    p = IttiParams.from_overrides(None, **params)
    return _run(_prepare(image), p, False)  # type: ignore[return-value]


@dataclass(frozen=True)
class Conspicuity:
    """What :func:`conspicuity_maps` returns: the model's conspicuity maps and its added channels' totals.

    Attributes
    ----------
    maps:
        ``"intensity"``, ``"color"``, ``"orientation"`` (the enabled channels), as
        :attr:`IttiResult.conspicuity`.
    added:
        Per added channel, ``⊕ N(X(c, s))``: its centre-surround maps normalised and added at the output
        scale, float32 ``(h, w)``.
    added_sums:
        Per added channel, ``Σ_{c,s} X(c, s)``, the sum of its centre-surround maps before ``N(.)``.
    """

    maps: dict[str, np.ndarray]
    added: dict[str, np.ndarray]
    added_sums: dict[str, float]


def conspicuity_maps(image: Any, params: IttiParams | None = None, *,
                     added: AddedChannels | None = None) -> Conspicuity:
    """The model up to its conspicuity maps, with the feature channels of a model built on it added.

    For models that extend this one (the dynamic model's flicker and motion, :mod:`salience.video.dynamic`):
    ``added(intensity_pyramid, bands)`` is called once with the Gaussian pyramid of ``I = (r + g + b)/3``
    (a list, levels ``0 .. max(c + δ) + 1``; treat as read-only, and copy levels 0 and 1 to keep them: they
    are scratch buffers reused by the next call) and its Laplacian levels ``L(σ) = I(σ) - EXPAND(I(σ+1))``
    at the levels the model uses (a dict by level, fresh arrays).  It returns each added channel's map at
    every one of those levels, by channel name (finite arrays of the level's shape; names must differ from
    the static channels' names).  The added maps go through the static channels' steps (centre-surround
    ``|c ⊖ s|``, ``N(.)``, ``⊕``) in the same loop as the static ones, in OpenCV calls of their own (four
    channels at a time), so the static maps are exactly :func:`itti_koch`'s.

    ``image`` as for :func:`itti_koch`; the saliency map itself is not computed.

    >>> import numpy as np
    >>> img = np.full((96, 128, 3), 0.5, np.float32); img[40:56, 30:38] = 1.0
    >>> r = conspicuity_maps(img, added=lambda pyr, bands: {"bright": {lv: pyr[lv] for lv in bands}})
    >>> sorted(r.maps), r.added["bright"].shape, round(r.added_sums["bright"], 3) > 0
    (['color', 'intensity', 'orientation'], (6, 8), True)
    """
    p = IttiParams.from_overrides(params)
    if added is not None and not callable(added):
        raise InputError(f"added must be a function (intensity pyramid, bands) -> maps by name, got {added!r}")
    img = _prepare(image)
    levels = _levels_used(p)

    def checked(ipyr: list[np.ndarray], bands: dict[int, np.ndarray]) -> dict[str, Mapping[int, np.ndarray]]:
        out = dict(added(ipyr, bands))  # type: ignore[misc]
        for name, maps in out.items():
            if name in ("intensity", "rg", "by") or str(name).startswith("orientation"):
                raise InputError(f"added channel {name!r} has the name of a static channel; choose another")
            for lv in levels:
                m = maps.get(lv) if isinstance(maps, Mapping) else None
                if not isinstance(m, np.ndarray) or m.shape != ipyr[lv].shape:
                    raise InputError(
                        f"added channel {name!r} must give a {ipyr[lv].shape} array at level {lv}, got "
                        f"{getattr(m, 'shape', m)!r}"
                    )
        return out

    st = _stages(img, p, False, checked if added is not None else None)
    # the sums are kept for the added channels only, in their order
    return Conspicuity(maps=_conspicuity(st.totals, p),
                       added={n: np.ascontiguousarray(st.totals[n]) for n in st.sums}, added_sums=dict(st.sums))
