"""One rule for fixations that lie outside their image, shared by the data-set loaders and the metrics.

A ``W x H`` image covers ``-0.5 <= x < W - 0.5`` and ``-0.5 <= y < H - 0.5`` (0-based pixel coordinates,
pixel centres at integers; see :mod:`salience.datasets`).  Eye trackers report points a little beyond the
stimulus (calibration drift, a gaze on the screen's border), so:

- a point at most :data:`BORDER_TOLERANCE` (one pixel) beyond the image is *clipped*: moved to the centre
  of the nearest border pixel (``x -> 0`` or ``W - 1``, ``y -> 0`` or ``H - 1``), and counted;
- a point further out is an error (:class:`~salience.errors.InputError` here; the CSV loader raises a
  :class:`~salience.errors.DataError` naming the line), unless the caller chose to drop such points.

>>> import numpy as np
>>> pts, clipped = clip_to_image(np.array([[-0.9, 2.0], [3.0, 4.0]]), (6, 8))
>>> pts.tolist(), clipped.tolist()
([[0.0, 2.0], [3.0, 4.0]], [True, False])
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["BORDER_TOLERANCE", "outside_distance", "clip_to_image"]

#: how far (in pixels) beyond the image's border a point may lie and still be clipped onto it
BORDER_TOLERANCE = 1.0


def outside_distance(x, y, width: int, height: int) -> np.ndarray:
    """How far ``(x, y)`` lies beyond the image ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``, in pixels.

    0 inside; otherwise the larger of the two axes' distances to the covered interval (a point exactly
    on the right or bottom edge, ``x = W - 0.5``, is outside by 0 and reported as ``> 0`` by a tiny
    amount so that it is clipped, not kept).  Works on scalars and arrays (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def axis(v, n):
        lo, hi = -0.5, n - 0.5
        d = np.where(v < lo, lo - v, np.where(v >= hi, v - hi, 0.0))
        return np.where((v >= hi) & (d == 0.0), np.finfo(np.float64).tiny, d)

    return np.maximum(axis(x, width), axis(y, height))


def clip_to_image(
    points, shape: tuple[int, int], *, tolerance: float = BORDER_TOLERANCE, name: str = "fixations"
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the border rule to ``(N, 2)`` points ``(x, y)`` of an image of ``shape = (H, W)``.

    Returns ``(points, clipped)``: a float64 copy with the points within ``tolerance`` of the border moved
    onto the nearest border pixel's centre, and a bool ``(N,)`` mask of the moved ones.  A point further
    out (or a NaN / infinite coordinate) raises :class:`~salience.errors.InputError` saying how many and
    giving an example.
    """
    pts = np.array(points, dtype=np.float64).reshape(-1, 2)
    if pts.size and not np.all(np.isfinite(pts)):
        raise InputError(f"{name} contain NaN or infinite coordinates; drop those rows first")
    h, w = int(shape[0]), int(shape[1])
    dist = outside_distance(pts[:, 0], pts[:, 1], w, h)
    far = dist > tolerance
    if np.any(far):
        k = int(np.argmax(far))
        raise InputError(
            f"{name}: {int(far.sum())} point(s) lie outside the {h}x{w} image by more than {tolerance:g} pixel, "
            f"e.g. (x, y) = ({pts[k, 0]:g}, {pts[k, 1]:g}); expected 0-based pixel positions with "
            f"-0.5 <= x < {w - 0.5:g} and -0.5 <= y < {h - 0.5:g} (convert 1-based MATLAB coordinates by "
            "subtracting 1; points up to one pixel outside are clipped onto the border)"
        )
    clipped = dist > 0
    if np.any(clipped):
        pts[clipped] = np.clip(pts[clipped], 0.0, [w - 1.0, h - 1.0])  # same pixel for the inside axis
    return pts, clipped
