"""Winner-take-all with inhibition of return: the sequence of attended locations on a saliency map.

Itti, Koch & Niebur (1998, Section 2.4) feed the saliency map into a 2-D layer of leaky integrate-and-fire
neurons and a winner-take-all (WTA) network: the most salient location wins and the focus of attention
(FOA) shifts there; inhibition of return (IOR) then suppresses the saliency map inside the FOA, a disc,
so the next most salient location wins, and so on.  Attended locations thus come in order of decreasing
saliency.

:func:`scanpath` computes that order directly, without simulating the neurons: the winner is the global
maximum of the map (``numpy.argmax``; ties go to the first pixel in row-major order), and IOR removes a
disc of the FOA radius around it from the competition.  For a static map this is the discrete
equivalent of the network's behaviour: the neuron with the largest input reaches threshold first.  The
dynamics the paper also models (the time each shift takes, the transient, partial inhibition that lets
locations be revisited later) are not simulated.

Examples
--------
>>> import numpy as np
>>> from salience.bottomup.attention import scanpath
>>> m = np.zeros((60, 80), np.float32); m[10, 20] = 1.0; m[40, 60] = 0.5
>>> [tuple(p) for p in scanpath(m, n=3)]
[(20, 10, 1.0, 1), (60, 40, 0.5, 2)]
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError
from ..io import check_map

__all__ = ["AttendedPoint", "scanpath", "default_radius"]


class AttendedPoint(NamedTuple):
    """One attended location: ``x`` column and ``y`` row in pixels, the saliency there, and the 1-based order."""

    x: int
    y: int
    value: float
    rank: int


def default_radius(height: int, width: int) -> float:
    """The default FOA radius: one sixth of the smaller side of the image, ``min(H, W) / 6`` pixels.

    Itti et al. (1998) fix the FOA radius to one sixth of the image's size; we take the smaller side so
    the inhibited disc never covers more than about a third of the shorter dimension.

    >>> default_radius(480, 640)
    80.0
    """
    return min(int(height), int(width)) / 6.0


def _check_shape(image_shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(image_shape)
    except TypeError:
        dims = ()
    if len(dims) not in (2, 3) or not all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0
                                          for d in dims[:2]):
        raise InputError(
            f"image_shape must be the (height, width) of the image the map belongs to, e.g. image.shape, "
            f"got {image_shape!r}"
        )
    return int(dims[0]), int(dims[1])


def scanpath(saliency: Any, n: int = 5, radius: float | None = None, *,
             image_shape: tuple[int, ...] | None = None) -> list[AttendedPoint]:
    """The first ``n`` attended locations by winner-take-all and inhibition of return (Itti et al. 1998).

    Parameters
    ----------
    saliency:
        A finite 2-D map ``(h, w)`` (any real dtype; e.g. from :func:`salience.itti_koch`).  Not modified.
    n:
        How many locations to attend, an integer >= 1.
    radius:
        Radius of the focus of attention, in pixels of the output coordinates (the map's, or the image's
        when ``image_shape`` is given).  Default: :func:`default_radius`, ``min(H, W) / 6``.  After each
        shift, every pixel within this distance of the winner is removed from the competition.
    image_shape:
        ``(H, W)`` (or ``image.shape``) of the image the map was computed for, when the map has another
        size (e.g. the model's scale-4 map): coordinates are then reported in image pixels (the map cell's
        centre, rounded) and ``radius`` is measured in image pixels.

    Returns
    -------
    list of AttendedPoint
        ``(x, y, value, rank)``: column, row, the map's value at the winner, and the order (1 = first).
        Fewer than ``n`` points when the map is exhausted: every pixel inhibited, or no pixel left with a
        value above 0 (a winner-take-all neuron needs positive input to fire).

    Raises
    ------
    salience.errors.InputError
        A map that is not a finite 2-D array, ``n`` not a positive integer, a radius that is not a
        positive finite number, a bad ``image_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((100, 100)); m[50, 50] = 1.0; m[50, 60] = 0.9; m[90, 10] = 0.5
    >>> [(p.x, p.y, p.rank) for p in scanpath(m, n=2, radius=20)]   # (60, 50) lies inside the first FOA
    [(50, 50, 1), (10, 90, 2)]
    """
    arr = check_map(saliency)  # float64, finite, 2-D
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise InputError(f"n (the number of attended locations) must be an integer >= 1, got {n!r}")
    h, w = arr.shape
    ih, iw = (h, w) if image_shape is None else _check_shape(image_shape)
    if radius is None:
        radius = default_radius(ih, iw)
    elif isinstance(radius, bool) or not isinstance(radius, Real) or not math.isfinite(radius) or radius <= 0:
        raise InputError(f"radius must be a positive number of pixels (or None for the default), got {radius!r}")
    radius = float(radius)
    sy, sx = ih / h, iw / w  # image pixels per map pixel

    work = arr.copy()
    inhibited = -np.inf
    # disc offsets in map pixels (an ellipse in the map when the map and image aspect ratios differ)
    ry, rx = int(math.floor(radius / sy)), int(math.floor(radius / sx))
    dy = np.arange(-ry, ry + 1)[:, None] * sy
    dx = np.arange(-rx, rx + 1)[None, :] * sx
    disc = dy * dy + dx * dx <= radius * radius

    points: list[AttendedPoint] = []
    for rank in range(1, int(n) + 1):
        idx = int(np.argmax(work))
        y, x = divmod(idx, w)
        best = work[y, x]
        if not best > 0:  # exhausted: all inhibited (-inf) or nothing positive left
            break
        if image_shape is None:
            px, py = x, y
        else:
            px = min(iw - 1, max(0, int(round((x + 0.5) * sx - 0.5))))
            py = min(ih - 1, max(0, int(round((y + 0.5) * sy - 0.5))))
        points.append(AttendedPoint(px, py, float(arr[y, x]), rank))
        # inhibition of return: the disc around the winner leaves the competition
        y0, y1 = max(0, y - ry), min(h, y + ry + 1)
        x0, x1 = max(0, x - rx), min(w, x + rx + 1)
        sub = disc[y0 - (y - ry):y1 - (y - ry), x0 - (x - rx):x1 - (x - rx)]
        work[y0:y1, x0:x1][sub] = inhibited
        work[y, x] = inhibited  # even with a radius below one map pixel
    return points
