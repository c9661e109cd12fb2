"""The dynamic Itti model: the static channels plus flicker and motion, frame after frame.

L. Itti, N. Dhavale, F. Pighin. Realistic avatar eye and head animation using a neurobiological model of
visual attention. Proc. SPIE 5200 (Applications and Science of Neural Networks, Fuzzy Systems, and
Evolutionary Computation VI), 64-78, 2003.  The iLab Neuromorphic Vision Toolkit (iNVT) is the authors'
reference implementation.

The static model (:func:`salience.itti_koch`: intensity, colour and orientation, Itti, Koch & Niebur 1998)
is run on each frame; two temporal channels are added and go through the same steps as the static ones
(dyadic Gaussian pyramid, centre-surround ``|c ⊖ s|`` for ``c ∈ {2, 3, 4}``, ``s = c + {3, 4}``,
the normalisation ``N(.)``, across-scale addition ``⊕`` at the output scale):

Flicker
    ``F(σ) = |I(t, σ) - I(t-1, σ)|``, the absolute change since the last frame of the intensity
    ``I = (r + g + b) / 3`` at each level ``σ`` of its Gaussian pyramid, set to 0 where it is below
    ``flicker_threshold``; 6 centre-surround maps and the conspicuity map ``F̄ = ⊕ N(F(c, s))``.
Motion
    Four Reichardt direction detectors, ``θ ∈ {0, 90, 180, 270}`` degrees (right, up, left, down on
    screen), on every pyramid level ``σ`` with a one-pixel shift at that level (so coarser levels are
    tuned to faster motion): with ``L(t, σ)`` the band-pass (Laplacian) intensity level and ``d_θ`` the
    unit step in direction ``θ``,

    ``R_θ(σ) = sqrt(max(0, L(t, x) L(t-1, x - d_θ) - L(t-1, x) L(t, x - d_θ)))``

    The product of the current signal with the previous one one step upstream, minus the mirrored
    product, is the Reichardt correlator; its half-wave rectification keeps the preferred direction only
    (``R_0`` and ``R_180`` are the two halves of one signed detector), the square root makes it linear in
    contrast, and values below ``motion_threshold`` are set to 0.  Each direction gives 6 centre-surround
    maps and ``M̄ = Σ_θ N(⊕ N(R_θ(c, s)))`` (the orientation channel's rule).

Saliency ``S = Σ_k w_k N(X̄_k) / Σ_k w_k`` over ``X̄ ∈ {Ī, C̄, Ō, F̄, M̄}`` (default: equal weights), or the
weighted maximum with ``combination="max"``, resized to the frame and divided by its peak, as the static
model does.  On the first frame (and after :meth:`DynamicItti.reset` or a change of frame size) there is
no previous frame: flicker and motion are absent and the map is the static model's.  A static scene gives
flicker and motion maps that are exactly zero (``x·y - x·y`` and ``|a - a|`` are exact in floating point),
so its map is the static one too.

Departures from the paper as we read it (``docs/video.md`` has the account; the iNVT source was not
consulted):

* The correlator runs on the band-pass (Laplacian) level of the intensity pyramid, the input the static
  model's Gabor filters get, rather than on the Gaussian level: with the mean removed the detector is
  direction selective (a bar moving right gives a leftward response below 1 % of the rightward one in our
  tests), whereas on the raw Gaussian level the uniform background makes the null direction respond at
  about half the preferred one.
* Half-wave rectification (the paper's formula takes ``|.|``, which would make opposite directions the
  same map shifted by one pixel) and the square root, plus the two low thresholds, which keep sensor and
  compression noise from being stretched to full range by ``N(.)``.

>>> import numpy as np
>>> from salience.video.dynamic import DynamicItti
>>> model = DynamicItti()
>>> a = np.full((96, 128, 3), 0.5, np.float32); a[40:56, 30:38] = 1.0
>>> b = np.full((96, 128, 3), 0.5, np.float32); b[40:56, 34:42] = 1.0   # the bar moved 4 px right
>>> r0, r1 = model.step(a), model.step(b)
>>> r0.flicker is None, sorted(r1.motion)
(True, ['0', '180', '270', '90'])
>>> bool(r1.motion["0"].max() > 0), float(r1.motion["180"].max())
(True, 0.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..bottomup.itti import CHANNELS, IttiParams, conspicuity_maps, normalize_stack
from ..bottomup.pyramid import expand_levels
from ..errors import InputError
from ..io import method_input

__all__ = ["DIRECTIONS", "DYNAMIC_CHANNELS", "DynamicItti", "DynamicParams", "DynamicResult"]

#: The five channels of the dynamic model, in the order of :attr:`DynamicParams.weights`.
DYNAMIC_CHANNELS: tuple[str, ...] = CHANNELS + ("flicker", "motion")
#: The motion detectors' directions in degrees, counter-clockwise from rightward on screen.
DIRECTIONS: tuple[int, ...] = (0, 90, 180, 270)
# (dx, dy) unit step of each direction in image coordinates (rows grow downwards: "up" is dy = -1)
_STEPS = {0: (1, 0), 90: (0, -1), 180: (-1, 0), 270: (0, 1)}


@dataclass(frozen=True)
class DynamicParams:
    """Parameters of :class:`DynamicItti`.

    Attributes
    ----------
    itti:
        The static model's :class:`~salience.bottomup.itti.IttiParams` (pyramid depth, centre and surround
        scales, ``N(.)`` variant, output scale, combination rule); the temporal channels use the same.
    weights:
        Weights of the intensity, colour, orientation, flicker and motion conspicuity maps in the
        combination, in that order, or a mapping such as ``{"motion": 2.0}`` (missing entries are 1).
        Default: all 1 (equal, as the static model weighs its channels).  A weight of 0 leaves a channel
        out; the static weights in ``itti`` are not used (these replace them).
    flicker_threshold:
        ``|I(t) - I(t-1)|`` below this (intensity in ``[0, 1]``) counts as no change.  Default ``2/255``:
        one 8-bit step of sensor or compression noise is ignored.
    motion_threshold:
        Detector outputs (square-rooted, so in intensity units) below this count as no motion.  Default
        0.01.
    directions:
        Which of the four directions (0, 90, 180, 270) to compute.

    Examples
    --------
    >>> DynamicParams(weights={"motion": 2}).weights
    (1.0, 1.0, 1.0, 1.0, 2.0)
    """

    itti: IttiParams = field(default_factory=IttiParams)
    weights: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    flicker_threshold: float = 2.0 / 255.0
    motion_threshold: float = 0.01
    directions: tuple[int, ...] = DIRECTIONS

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.itti, IttiParams):
            raise InputError(f"DynamicParams.itti must be an IttiParams, got {type(self.itti).__name__}")
        set_(self, "weights", _weights(self.weights))
        for name in ("flicker_threshold", "motion_threshold"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v < 1:
                raise InputError(f"DynamicParams.{name} must be a number in [0, 1), got {v!r}")
            set_(self, name, float(v))
        dirs = self.directions
        if isinstance(dirs, (str, bytes)) or not hasattr(dirs, "__iter__"):
            raise InputError(f"DynamicParams.directions must be a sequence of degrees, got {dirs!r}")
        items = []
        for d in dirs:
            if isinstance(d, bool) or not isinstance(d, (int, float)) or d not in _STEPS:
                raise InputError(f"DynamicParams.directions must hold some of 0, 90, 180, 270, got {dirs!r}")
            items.append(int(d))
        if not items or len(set(items)) != len(items):
            raise InputError(f"DynamicParams.directions must be non-empty and without repeats, got {dirs!r}")
        set_(self, "directions", tuple(sorted(items)))

    @classmethod
    def from_overrides(cls, **overrides: Any) -> DynamicParams:
        """Build from keyword arguments: own fields, plus any :class:`IttiParams` field for ``itti``."""
        own = {f.name for f in dataclasses.fields(cls)}
        mine = {k: v for k, v in overrides.items() if k in own}
        rest = {k: v for k, v in overrides.items() if k not in own}
        base = mine.pop("itti", None)
        itti = IttiParams.from_overrides(base, **rest)  # unknown names raise, listing the valid ones
        return cls(itti=itti, **mine)


def _weights(value: Any) -> tuple[float, ...]:
    if isinstance(value, Mapping):
        vals = [1.0] * len(DYNAMIC_CHANNELS)
        for k, v in value.items():
            key = "color" if str(k).strip().lower() == "colour" else str(k).strip().lower()
            if key not in DYNAMIC_CHANNELS:
                raise InputError(
                    f"DynamicParams.weights: unknown channel {k!r}; use {', '.join(DYNAMIC_CHANNELS)}"
                )
            vals[DYNAMIC_CHANNELS.index(key)] = v
        items = tuple(vals)
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"DynamicParams.weights must be 5 numbers or a mapping, got {value!r}")
    else:
        items = tuple(value)
        if len(items) != len(DYNAMIC_CHANNELS):
            raise InputError(
                f"DynamicParams.weights must have {len(DYNAMIC_CHANNELS)} entries "
                f"({', '.join(DYNAMIC_CHANNELS)}), got {value!r}"
            )
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)) or not 0 <= float(v) <= 1e6:
            raise InputError(f"DynamicParams.weights must be numbers in [0, 1e6], got {value!r}")
        out.append(float(v))
    if sum(out) <= 0:
        raise InputError("DynamicParams.weights are all 0; at least one channel needs a weight > 0")
    return tuple(out)


@dataclass(frozen=True)
class DynamicResult:
    """What :meth:`DynamicItti.step` computes for one frame.

    Attributes
    ----------
    saliency:
        float32 ``(H, W)`` at the frame's size, in ``[0, 1]`` (divided by its peak; zeros when nothing in
        the frame stands out).
    conspicuity:
        The conspicuity maps before the final ``N(.)`` at the output scale, float32 ``>= 0``: the static
        model's ``"intensity"``, ``"color"``, ``"orientation"``, and ``"flicker"`` and ``"motion"`` from the
        second frame on.
    flicker:
        float32 ``F(σ) = |I(t, σ) - I(t-1, σ)|`` after the threshold at the first centre scale (scale 2
        by default: ``(ceil(H/4), ceil(W/4))``); ``None`` on a first frame.
    motion:
        The detector outputs ``R_θ`` at the first centre scale (scale 2 by default), one float32 map per
        direction keyed ``"0"``, ``"90"``, ``"180"``, ``"270"`` (empty on a first frame).
    motion_energy:
        Per direction, the sum of its centre-surround maps ``Σ_{c,s} R_θ(c, s)`` before ``N(.)``: how much
        of the frame moves that way, in the detector's units (``N(.)`` would hide it by rescaling each map).
    first:
        True when there was no previous frame (no flicker, no motion).

    Examples
    --------
    >>> import numpy as np
    >>> from salience.video import DynamicItti
    >>> frame = np.full((48, 64, 3), 0.5, np.float32); frame[20:28, 30:38] = 1.0
    >>> r = DynamicItti().step(frame)   # the first frame: no flicker or motion yet
    >>> r.saliency.dtype, sorted(r.conspicuity), r.flicker is None
    (dtype('float32'), ['color', 'intensity', 'orientation'], True)
    """

    saliency: np.ndarray
    conspicuity: dict[str, np.ndarray] = field(repr=False)
    flicker: np.ndarray | None = field(repr=False)
    motion: dict[str, np.ndarray] = field(repr=False)
    motion_energy: dict[str, float]
    first: bool


class DynamicItti:
    """The dynamic Itti model as a stateful object: call :meth:`step` with each frame in turn.

    The state (the previous frame's intensity and band-pass pyramid) lives in the object; two objects
    are independent.  Not thread-safe: one object per stream.

    Parameters
    ----------
    params:
        A :class:`DynamicParams` (default: the documented defaults).
    **overrides:
        :class:`DynamicParams` fields, or :class:`IttiParams` fields for the static part
        (e.g. ``motion_threshold=0.02``, ``normalization="iterative"``).

    Examples
    --------
    >>> import numpy as np
    >>> from salience.video import DynamicItti
    >>> model = DynamicItti()
    >>> frame = np.full((48, 64, 3), 0.5, np.float32); frame[20:28, 30:38] = 1.0
    >>> r = model.step(frame)
    >>> r.saliency.shape, r.first, model.step(frame).first
    ((48, 64), True, False)
    """

    def __init__(self, params: DynamicParams | None = None, **overrides: Any) -> None:
        if params is not None and not isinstance(params, DynamicParams):
            raise InputError(f"params must be a DynamicParams or None, got {type(params).__name__}")
        if overrides:
            base = params if params is not None else DynamicParams()
            merged = {f.name: getattr(base, f.name) for f in dataclasses.fields(DynamicParams)}
            own = {k: v for k, v in overrides.items() if k in merged}
            rest = {k: v for k, v in overrides.items() if k not in merged}
            merged.update(own)
            merged["itti"] = IttiParams.from_overrides(merged["itti"], **rest)
            params = DynamicParams(**merged)
        self.params = params if params is not None else DynamicParams()
        p = self.params.itti
        self._centres = p.centre_scales
        self._levels = sorted(set(p.centre_scales) | {c + d for c in p.centre_scales for d in p.deltas})
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next frame is a first frame (no flicker, no motion)."""
        self._prev_pyr: dict[int, np.ndarray] | None = None
        self._prev_bands: dict[int, np.ndarray] | None = None
        self._size: tuple[int, int] | None = None

    # ---- one frame -------------------------------------------------------------------------------------

    def step(self, frame: Any) -> DynamicResult:
        """Process the next frame; returns its :class:`DynamicResult`.

        ``frame`` is an RGB image array (float32 ``(H, W, 3)`` in ``[0, 1]``, uint8, grayscale, ...; see
        :func:`salience.io.as_image_array`); it is not modified.  A frame of another size than the last
        one starts over (a first frame).
        """
        img = method_input(frame, "frame")
        h, w = img.shape[:2]
        p = self.params
        first = self._prev_pyr is None or self._size != (h, w)
        planes: dict[str, dict[int, np.ndarray]] = {}

        def temporal(ipyr: list[np.ndarray], bands: dict[int, np.ndarray]) -> dict[str, dict[int, np.ndarray]]:
            # the static model's own intensity pyramid and Laplacian levels: no second pass over the frame
            if not first:
                planes.update(self._temporal(ipyr, bands))
            # levels 0 and 1 are the static model's scratch buffers, overwritten by the next frame
            self._prev_pyr = {lv: ipyr[lv].copy() if lv < 2 else ipyr[lv] for lv in self._levels}
            self._prev_bands = bands
            return planes

        parts = conspicuity_maps(img, p.itti, added=temporal)
        self._size = (h, w)
        consp = dict(parts.maps)
        flicker: np.ndarray | None = None
        motion: dict[str, np.ndarray] = {}
        energy: dict[str, float] = {}
        if "flicker" in planes:
            flicker = planes["flicker"][self._centres[0]]
            consp["flicker"] = parts.added["flicker"]
        names = [f"motion {d}" for d in p.directions]
        if names[0] in planes:
            motion = {str(d): planes[n][self._centres[0]] for d, n in zip(p.directions, names)}
            energy = {str(d): parts.added_sums[n] for d, n in zip(p.directions, names)}
            acc = np.stack([parts.added[n] for n in names], axis=2)
            consp["motion"] = normalize_stack(acc, p.itti).sum(axis=2, dtype=np.float32)
        sal = self._combine(consp, (h, w))
        return DynamicResult(saliency=sal, conspicuity=consp, flicker=flicker, motion=motion,
                             motion_energy=energy, first=first)

    def __call__(self, frame: Any) -> np.ndarray:
        """:meth:`step` and return the saliency map only."""
        return self.step(frame).saliency

    # ---- the shared steps ------------------------------------------------------------------------------

    def _temporal(self, ipyr: list[np.ndarray], bands: dict[int, np.ndarray]) -> dict[str, dict[int, np.ndarray]]:
        """The flicker and motion maps at every level used, against the previous frame's levels."""
        p = self.params
        out: dict[str, dict[int, np.ndarray]] = {}
        if p.weights[3] > 0:
            fl = out["flicker"] = {}
            for lv in self._levels:
                f = cv2.absdiff(ipyr[lv], self._prev_pyr[lv])  # type: ignore[index]
                cv2.threshold(f, p.flicker_threshold, 0.0, cv2.THRESH_TOZERO, dst=f)
                fl[lv] = f.reshape(ipyr[lv].shape)
        if p.weights[4] > 0:
            det = _reichardt(bands, self._prev_bands, p.directions, p.motion_threshold)  # type: ignore[arg-type]
            for d in p.directions:
                out[f"motion {d}"] = det[d]
        return out

    def _combine(self, consp: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
        p = self.params
        keys = [k for k in DYNAMIC_CHANNELS if k in consp and p.weights[DYNAMIC_CHANNELS.index(k)] > 0]
        if not keys:  # only zero-weight channels were computed (e.g. weights for flicker only, frame 1)
            return np.zeros(size, np.float32)
        wts = np.array([p.weights[DYNAMIC_CHANNELS.index(k)] for k in keys], np.float32)
        stack = normalize_stack(np.stack([consp[k] for k in keys], axis=2), p.itti)
        if p.itti.combination == "mean":
            sal = (stack * (wts / wts.sum())).sum(axis=2, dtype=np.float32)
        else:
            sal = (stack * wts).max(axis=2)
        sal = expand_levels(np.ascontiguousarray(sal, dtype=np.float32), size)
        peak = cv2.minMaxLoc(sal)[1]
        if peak > 0:
            np.divide(sal, np.float32(peak), out=sal)
        else:
            sal[...] = 0.0
        return sal


def _reichardt(cur: dict[int, np.ndarray], prev: dict[int, np.ndarray], directions: tuple[int, ...],
               threshold: float) -> dict[int, dict[int, np.ndarray]]:
    """``R_θ(σ)`` for every direction and level: half-wave rectified, square-rooted, thresholded.

    For the horizontal pair, ``P(x) = a(x+1) b(x) - b(x+1) a(x)`` (``a`` now, ``b`` before) is the
    rightward correlator at ``x + 1`` and minus the leftward one at ``x``; the vertical pair likewise.
    Border pixels without an upstream neighbour get 0.
    """
    out: dict[int, dict[int, np.ndarray]] = {d: {} for d in directions}
    for lv, a in cur.items():
        b = prev[lv]
        if any(d in directions for d in (0, 180)):
            ph = a[:, 1:] * b[:, :-1] - b[:, 1:] * a[:, :-1]
            if 180 in directions:  # (-ph is a new array; _place rectifies its argument in place)
                out[180][lv] = _place(-ph, a.shape, (slice(None), slice(None, -1)), threshold)
            if 0 in directions:
                out[0][lv] = _place(ph, a.shape, (slice(None), slice(1, None)), threshold)
        if any(d in directions for d in (90, 270)):
            pv = a[1:, :] * b[:-1, :] - b[1:, :] * a[:-1, :]  # downward at y + 1, minus upward at y
            if 90 in directions:
                out[90][lv] = _place(-pv, a.shape, (slice(None, -1), slice(None)), threshold)
            if 270 in directions:
                out[270][lv] = _place(pv, a.shape, (slice(1, None), slice(None)), threshold)
    return out


def _place(values: np.ndarray, shape: tuple[int, ...], where: tuple[slice, slice], threshold: float) -> np.ndarray:
    """Rectify, threshold and square-root ``values`` (in place), placed at ``where`` in a zero map.

    ``sqrt(max(0, v)) < t`` exactly when ``v < t²``, so one ``THRESH_TOZERO`` at ``t²`` rectifies and
    thresholds at once (values not above ``t²``, negatives included, become 0).
    """
    full = np.zeros(shape, np.float32)
    if values.size:
        v = values.reshape(values.shape[0], -1)  # OpenCV wants 2-D
        cv2.threshold(v, threshold * threshold, 0.0, cv2.THRESH_TOZERO, dst=v)
        np.sqrt(values, out=values)
        full[where] = values
    return full
