"""Drawing and writing the video outputs: overlays with the attended point and its path, map frames, and a
video writer that never leaves a partial file under the final name.

Drawing works on uint8 BGR frames (what ``cv2.VideoWriter`` takes) with OpenCV's colour lookup tables, so
a 640 x 480 overlay costs about a millisecond.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputExistsError
from ..viz import COLORMAPS

__all__ = ["FOURCC", "VideoWriter", "map_frame", "overlay_frame", "to_bgr_u8"]

#: Codec used for each output file extension (all available in the FFmpeg build OpenCV wheels ship).
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def to_bgr_u8(frame: np.ndarray) -> np.ndarray:
    """float32 RGB ``(H, W, 3)`` in ``[0, 1]`` -> uint8 BGR, rounded."""
    u8 = cv2.convertScaleAbs(frame, alpha=255.0)  # saturating round to uint8
    return cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)


def _map_u8(saliency: np.ndarray) -> np.ndarray:
    """A ``[0, 1]`` map as uint8 (values are clipped, not stretched: maps of the stream are peak-normalised)."""
    return cv2.convertScaleAbs(np.asarray(saliency, np.float32), alpha=255.0)


def map_frame(saliency: np.ndarray, cmap: str = "gray") -> np.ndarray:
    """The map as a uint8 BGR frame: grey levels, or a colormap of :data:`salience.viz.COLORMAPS`."""
    u8 = _map_u8(saliency)
    code = COLORMAPS.get(cmap.lower()) if isinstance(cmap, str) else None
    if isinstance(cmap, str) and cmap.lower() == "gray":
        return cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)
    if code is None:
        raise InputError(f"unknown colormap {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    return cv2.applyColorMap(u8, code)


def overlay_frame(frame_bgr: np.ndarray, saliency: np.ndarray, trail: Sequence[tuple[int, int]] = (),
                  *, cmap: str = "jet", alpha: float = 0.5, radius: float = 0.0) -> np.ndarray:
    """Heatmap of ``saliency`` blended over the frame, the recent path of the focus as a line and the
    current focus (``trail[-1]``) as a circle of ``radius`` pixels with a dot at its centre.

    ``frame_bgr`` is uint8 ``(H, W, 3)`` BGR; returns a new uint8 BGR array.
    """
    heat = map_frame(saliency, cmap)
    out = cv2.addWeighted(frame_bgr, 1.0 - alpha, heat, alpha, 0.0)
    if trail:
        pts = np.array(trail, np.int32).reshape(-1, 1, 2)
        if len(trail) > 1:
            cv2.polylines(out, [pts], False, (255, 255, 255), 2, cv2.LINE_AA)
        x, y = trail[-1]
        if radius >= 2:
            cv2.circle(out, (int(x), int(y)), int(round(radius)), (0, 255, 255), 2, cv2.LINE_AA)
        cv2.circle(out, (int(x), int(y)), 3, (0, 255, 255), -1, cv2.LINE_AA)
    return out


class VideoWriter:
    """``cv2.VideoWriter`` into a temporary file next to ``path``, renamed to ``path`` by :meth:`commit`.

    :meth:`abort` (or leaving a ``with`` block by an exception, Ctrl-C included) deletes the temporary
    file, so an interrupted or failed run leaves nothing under the final name (an existing file there is
    kept unless ``overwrite``, and then replaced only at the end).  The codec follows the extension
    (:data:`FOURCC`).
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], *, overwrite: bool = False,
                 color: bool = True) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in FOURCC:
            raise InputError(f"{self.path}: unsupported video extension {ext or '(none)'!r}; use one of "
                             f"{', '.join(FOURCC)}")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path} exists already; pass --overwrite (overwrite=True) to replace it")
        self.overwrite = overwrite
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".tmp{ext}", dir=self.path.parent)
        os.close(fd)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; outputs get the usual permissions
        self.tmp = tmp
        w, h = size
        self._w = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC[ext]), float(fps), (int(w), int(h)), color)
        if not self._w.isOpened():
            self.abort()
            raise InputError(f"{self.path}: OpenCV could not open a {FOURCC[ext]} video writer for {ext} files")
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        self._w.write(frame_bgr)
        self.frames += 1

    def commit(self) -> Path:
        """Finish the file and move it to its final name."""
        self._w.release()
        if not self.overwrite and self.path.exists():
            self.abort()
            raise OutputExistsError(f"{self.path} appeared while writing; pass --overwrite to replace it")
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._w.release()
        except AttributeError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
