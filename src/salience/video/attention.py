"""Attention over time: winner-take-all with inhibition of return that builds while a place is attended
and decays frame by frame.

Itti, Koch & Niebur (1998, Section 2.4) move the focus of attention (FOA) to the winner of a
winner-take-all network on the saliency map and then inhibit the FOA, so attention visits locations in
order of decreasing saliency.  On a still image :func:`salience.scanpath` computes that order.  On a
stream the map changes every frame, and gaze neither jumps every frame nor stays forever: it *fixates* a
target, *follows* it while it moves (smooth pursuit), and *moves on* once it has looked long enough.
:class:`Attention` is a discrete-time version of that, per frame ``t``:

1. IOR decays: ``ior <- decay * ior`` (``ior`` in ``[0, 1]``, one value per map cell).
2. Tracking: the focus moves to the maximum of the saliency map ``S`` within ``radius`` of where it was
   (a moving target is followed; the inhibition it carries moves with it, step 4).
3. Competition: ``E = S * (1 - ior)``.  If the focus has been held for at least ``min_dwell`` frames and
   the best ``E`` at a local maximum of ``S`` outside the FOA disc (another object, not the flank of the
   attended one) exceeds ``E`` at the focus, attention shifts there (a saccade); so does it, at any
   time, when the focus's saliency has fallen to 0 (the target vanished).  The first frame attends the
   global maximum of ``E`` (of ``S``: nothing is inhibited yet).
4. IOR builds at the focus: inside the FOA disc, ``ior <- ior + gain * (1 - ior)``.

So a target is held for at least ``min_dwell`` frames; while it is held its effective saliency falls
by the factor ``1 - gain`` per frame (a disc attended ``k`` frames has ``ior = 1 - (1 - gain)^k``), and
attention moves to a second target of saliency ``s2 < s1`` after about ``log(s2 / s1) / log(1 - gain)``
frames; after it leaves, the inhibition decays by ``decay`` per frame, so the first target can be
visited again later.  A target alone on an empty background is held as long as it is there (nothing
else competes).  The map is first reduced by area averaging to at most ``grid`` cells on its longer side
(default 160), so the cost per frame is the same for any frame size.

Defaults (30 frames/s): ``min_dwell = 6`` frames (200 ms, about a short fixation), ``gain = 0.15`` (a
target twice as salient as the next is held about 4 frames longer), ``decay = 0.95`` per frame
(inhibition halves in about 14 frames, ~0.45 s), ``radius = min(H, W) / 8`` pixels.  These are choices
of ours, not fitted to eye-tracking data.

>>> import numpy as np
>>> from salience.video.attention import Attention
>>> s = np.zeros((60, 80), np.float32); s[20, 20] = 1.0; s[40, 60] = 0.8
>>> att = Attention(min_dwell=3)
>>> foci = [att.update(s) for _ in range(8)]   # the 1.0 target, the 0.8 one after a dwell, back again
>>> [f.fixation for f in foci], [f.x for f in foci]
([1, 1, 1, 2, 2, 2, 3, 3], [20, 20, 20, 60, 60, 60, 20, 20])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..io import check_map

__all__ = ["Attention", "AttentionParams", "Focus"]


@dataclass(frozen=True)
class AttentionParams:
    """Parameters of :class:`Attention` (see the module docstring for the rule).

    Attributes
    ----------
    min_dwell:
        Frames a focus is held at least before attention may shift, integer >= 1.  Default 6.
    gain:
        Growth of inhibition of return per attended frame inside the FOA, in ``(0, 1]``.  Default 0.15.
    decay:
        Factor by which all inhibition is multiplied each frame, in ``[0, 1]``.  Default 0.95.
    radius:
        FOA radius in frame pixels; ``None``: ``min(H, W) / 8``.
    grid:
        Longest side, in cells, of the map attention works on (the map is area-reduced to it).  Default 160.

    Examples
    --------
    >>> from salience.video import Attention, AttentionParams
    >>> p = AttentionParams(min_dwell=3)
    >>> p.min_dwell, p.decay, Attention(p).params.min_dwell
    (3, 0.95, 3)
    """

    min_dwell: int = 6
    gain: float = 0.15
    decay: float = 0.95
    radius: float | None = None
    grid: int = 160

    def __post_init__(self) -> None:
        if isinstance(self.min_dwell, bool) or not isinstance(self.min_dwell, Integral) or self.min_dwell < 1:
            raise InputError(f"min_dwell must be an integer >= 1 (frames), got {self.min_dwell!r}")
        for name, lo_open in (("gain", True), ("decay", False)):
            v = getattr(self, name)
            ok = not isinstance(v, bool) and isinstance(v, Real) and math.isfinite(v)
            if not ok or not ((0 < v <= 1) if lo_open else (0 <= v <= 1)):
                rng = "(0, 1]" if lo_open else "[0, 1]"
                raise InputError(f"{name} must be a number in {rng}, got {v!r}")
        r = self.radius
        if r is not None and (isinstance(r, bool) or not isinstance(r, Real) or not math.isfinite(r) or r <= 0):
            raise InputError(f"radius must be a positive number of pixels (or None for the default), got {r!r}")
        if isinstance(self.grid, bool) or not isinstance(self.grid, Integral) or not 8 <= self.grid <= 4096:
            raise InputError(f"grid must be an integer in [8, 4096], got {self.grid!r}")


@dataclass(frozen=True)
class Focus:
    """The attended point of one frame.

    Attributes
    ----------
    x, y:
        Column and row in frame pixels (a map cell's centre, rounded).
    value:
        The saliency map's value there (the reduced map's, in the map's units).
    fixation:
        1-based number of the fixation (it grows by one at each shift).
    dwell:
        Frames this fixation has lasted, this one included (1 on the frame of a shift).
    shifted:
        True on the first frame of a fixation.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.video import Attention, Focus
    >>> s = np.zeros((60, 80), np.float32); s[10, 70] = 1.0
    >>> att = Attention(min_dwell=2)
    >>> first, second = att.update(s), att.update(s)
    >>> isinstance(first, Focus), (first.fixation, first.dwell, first.shifted), (second.dwell, second.shifted)
    (True, (1, 1, True), (2, False))
    """

    x: int
    y: int
    value: float
    fixation: int
    dwell: int
    shifted: bool


class Attention:
    """Winner-take-all with inhibition of return over a stream of saliency maps.

    Call :meth:`update` with each frame's map; it returns that frame's :class:`Focus`.  The state (focus,
    dwell, inhibition) lives in the object; :meth:`reset` forgets it.

    Parameters
    ----------
    params:
        An :class:`AttentionParams`, or ``None`` for the defaults.
    **overrides:
        :class:`AttentionParams` fields, e.g. ``min_dwell=3``.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.video import Attention
    >>> s = np.zeros((60, 80), np.float32); s[30, 20] = 1.0
    >>> f = Attention().update(s)
    >>> (f.x, f.y), f.fixation, f.shifted
    ((20, 30), 1, True)
    """

    def __init__(self, params: AttentionParams | None = None, **overrides: Any) -> None:
        if params is not None and not isinstance(params, AttentionParams):
            raise InputError(f"params must be an AttentionParams or None, got {type(params).__name__}")
        base = params if params is not None else AttentionParams()
        if overrides:
            names = set(AttentionParams.__dataclass_fields__)
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise InputError(f"unknown attention parameter(s) {', '.join(map(repr, unknown))}; valid: "
                                 f"{', '.join(sorted(names))}")
            base = AttentionParams(**{**{n: getattr(base, n) for n in names}, **overrides})
        self.params = base
        self.reset()

    def radius_px(self, height: int, width: int) -> float:
        """The FOA radius in pixels for frames of ``(height, width)``: the parameter, or ``min(H, W) / 8``."""
        return float(self.params.radius) if self.params.radius is not None else min(height, width) / 8.0

    def reset(self) -> None:
        """Forget the focus and all inhibition."""
        self._ior: np.ndarray | None = None
        self._shape: tuple[int, int, int, int] | None = None
        self._focus: tuple[int, int] | None = None
        self._fixation = 0
        self._dwell = 0

    def update(self, saliency: Any, image_shape: tuple[int, ...] | None = None) -> Focus | None:
        """Advance one frame with its saliency map; return the attended point (``None`` while the map is
        all zeros and nothing has been attended yet).

        ``saliency`` is a finite 2-D map (any size; values >= 0); ``image_shape`` the frame's
        ``(H, W)`` when the map has another size (coordinates are then in frame pixels).
        """
        arr = saliency if isinstance(saliency, np.ndarray) and saliency.dtype == np.float32 \
            and saliency.ndim == 2 and np.isfinite(saliency).all() else check_map(saliency).astype(np.float32)
        h, w = arr.shape
        try:
            ih, iw = (h, w) if image_shape is None else (int(image_shape[0]), int(image_shape[1]))
        except (TypeError, ValueError, IndexError):
            ih = iw = 0
        if ih < 1 or iw < 1:
            raise InputError(f"image_shape must be the frame's (H, W) (e.g. frame.shape), got {image_shape!r}")
        p = self.params
        f = max(1, math.ceil(max(h, w) / p.grid))
        gh, gw = -(-h // f), -(-w // f)
        small = arr if f == 1 else cv2.resize(arr, (gw, gh), interpolation=cv2.INTER_AREA)
        small = np.maximum(small, 0.0)  # a new array; negative values do not compete
        key = (gh, gw, ih, iw)
        if self._shape != key:  # first map, or the size changed: start over
            self.reset()
            self._shape = key
            self._ior = np.zeros((gh, gw), np.float32)
        sy, sx = ih / gh, iw / gw  # frame pixels per cell
        radius = self.radius_px(ih, iw)
        ior = self._ior
        assert ior is not None
        ior *= np.float32(p.decay)
        disc_y, disc_x = radius / sy, radius / sx  # the FOA disc's half-axes in cells

        shifted = False
        eff = small * (1.0 - ior)
        if self._focus is not None:
            fy, fx = self._focus
            self._focus = _local_max(small, fy, fx, disc_y, disc_x)  # follow the target
            held = self._dwell  # frames this fixation has lasted before this one
            self._dwell += 1
            fy, fx = self._focus
            gone = not small[fy, fx] > 0  # the target vanished: shift to whatever wins
            if gone or held >= p.min_dwell:
                cand = _peaks(small)
                cand &= ~_disc(gh, gw, fy, fx, disc_y, disc_x)
                if cand.any():
                    j = int(np.argmax(np.where(cand, eff, -1.0)))
                    if eff.flat[j] > (0.0 if gone else eff[fy, fx]):
                        self._focus = divmod(j, gw)
                        shifted = True
        else:
            j = int(np.argmax(eff))
            if not eff.flat[j] > 0:
                return None  # nothing to attend yet
            self._focus = divmod(j, gw)
            shifted = True
        if shifted:
            self._fixation += 1
            self._dwell = 1
        fy, fx = self._focus
        d = _disc(gh, gw, fy, fx, disc_y, disc_x)
        ior[d] += np.float32(p.gain) * (1.0 - ior[d])
        px = min(iw - 1, max(0, int(round((fx + 0.5) * sx - 0.5))))
        py = min(ih - 1, max(0, int(round((fy + 0.5) * sy - 0.5))))
        return Focus(px, py, float(small[fy, fx]), self._fixation, self._dwell, shifted)


def _bounds(n: int, c: int, r: float) -> tuple[int, int]:
    k = int(math.floor(r))
    return max(0, c - k), min(n, c + k + 1)


def _disc(h: int, w: int, cy: int, cx: int, ry: float, rx: float) -> np.ndarray:
    """Boolean mask of the ellipse of half-axes ``(ry, rx)`` cells around ``(cy, cx)`` (at least the cell)."""
    mask = np.zeros((h, w), bool)
    y0, y1 = _bounds(h, cy, ry)
    x0, x1 = _bounds(w, cx, rx)
    yy = (np.arange(y0, y1)[:, None] - cy) / max(ry, 1e-9)
    xx = (np.arange(x0, x1)[None, :] - cx) / max(rx, 1e-9)
    mask[y0:y1, x0:x1] = yy * yy + xx * xx <= 1.0
    mask[cy, cx] = True
    return mask


_PEAK_KERNEL = np.ones((3, 3), np.uint8)


def _peaks(m: np.ndarray) -> np.ndarray:
    """Local maxima of ``m`` (>= the 8 neighbours) with a value above 0: the candidate objects."""
    return (m >= cv2.dilate(m, _PEAK_KERNEL)) & (m > 0)


def _local_max(m: np.ndarray, cy: int, cx: int, ry: float, rx: float) -> tuple[int, int]:
    """The maximum of ``m`` within the ellipse around ``(cy, cx)``; ties go to the cell nearest to it."""
    y0, y1 = _bounds(m.shape[0], cy, ry)
    x0, x1 = _bounds(m.shape[1], cx, rx)
    sub = m[y0:y1, x0:x1]
    yy = (np.arange(y0, y1)[:, None] - cy) / max(ry, 1e-9)
    xx = (np.arange(x0, x1)[None, :] - cx) / max(rx, 1e-9)
    dist = yy * yy + xx * xx
    score = np.where(dist <= 1.0, sub, -np.inf)
    best = score.max()
    cand = np.flatnonzero((score == best).ravel())  # exact ties of one array's values
    k = cand[int(np.argmin(dist.ravel()[cand]))]
    by, bx = divmod(int(k), sub.shape[1])
    return y0 + by, x0 + bx
