"""Drawing and writing the video outputs: overlays with the attended point and its path, map frames, and a
video writer that never leaves a partial file under the final name.

Drawing works on uint8 BGR frames (what ``cv2.VideoWriter`` takes) with OpenCV's colour lookup tables, so
a 640 x 480 overlay costs about a millisecond.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, OutputExistsError
from ..io import output_error
from ..viz import COLORMAPS

__all__ = ["FOURCC", "VideoSummary", "VideoWriter", "map_frame", "overlay_frame", "to_bgr_u8", "write_video"]

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".tmp{ext}", dir=self.path.parent)
        except OSError as exc:  # read-only or full disk, no permission, a file where a folder should be
            raise output_error(exc, self.path) from None
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
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise output_error(exc, self.path) from None
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


@dataclass(frozen=True)
class VideoSummary:
    """What :func:`write_video` did: frames processed, seconds taken, the files written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from salience.video import VideoSummary, write_video
    >>> clip = np.full((2, 48, 64, 3), 0.5, np.float32)
    >>> s = write_video(clip, os.path.join(tempfile.mkdtemp(), "o.mp4"), method="spectral-residual", fps=10)
    >>> isinstance(s, VideoSummary), s.frames, s.seconds >= 0
    (True, 2, True)
    """

    frames: int
    seconds: float
    paths: tuple[Path, ...]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def write_video(source: Any, out: str | os.PathLike, *, method: str = "itti-dynamic",
                map_video: str | os.PathLike | None = None, points: str | os.PathLike | None = None,
                trail: int = 30, cmap: str = "jet", alpha: float = 0.5, attention: Any = True,
                fps: float | None = None, max_frames: int | None = None, overwrite: bool = False,
                progress: bool = False, **params: Any) -> VideoSummary:
    """Run :func:`salience.stream` on ``source`` and write the overlay video ``out`` (heatmap, the focus as
    a circle of the FOA radius, its last ``trail`` positions as a line), optionally the grey map video
    ``map_video`` and the CSV ``points`` (``frame,time,x,y,value,fixation,dwell,shifted``).

    This is what ``salience video`` runs.  Every file is written under a temporary name and renamed at
    the end; on any exception (Ctrl-C included) the temporary files are deleted and nothing appears
    under the final names.  ``progress`` shows a tqdm bar (frames done, frames per second) on stderr.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from salience.video import write_video
    >>> clip = np.full((4, 48, 64, 3), 0.5, np.float32); clip[:, 10:18, 20:28] = 1.0
    >>> d = tempfile.mkdtemp()
    >>> summary = write_video(clip, os.path.join(d, "overlay.mp4"), method="spectral-residual",
    ...                       points=os.path.join(d, "points.csv"), fps=10)
    >>> summary.frames, [p.name for p in summary.paths]
    (4, ['overlay.mp4', 'points.csv'])
    """
    from .stream import stream

    if points is not None and Path(points).exists() and not overwrite:  # before any frame is computed
        raise OutputExistsError(f"{points} exists already; pass --overwrite (overwrite=True) to replace it")
    s = stream(source, method, attention=attention, fps=fps, max_frames=max_frames, **params)
    writers: list[VideoWriter] = []
    rows = io.StringIO()
    table = csv.writer(rows, lineterminator="\n")
    table.writerow(["frame", "time", "x", "y", "value", "fixation", "dwell", "shifted"])
    path_pts: deque = deque(maxlen=max(1, int(trail)))
    bar = None
    t0 = time.perf_counter()
    n = 0
    try:
        for r in s:
            if not writers:
                h, w = r.saliency.shape
                rate = float(s.fps or 30.0)
                writers.append(VideoWriter(out, rate, (w, h), overwrite=overwrite))
                if map_video is not None:
                    writers.append(VideoWriter(map_video, rate, (w, h), overwrite=overwrite))
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=s.frame_count, desc="salience video", unit="frame", file=sys.stderr,
                               dynamic_ncols=True)
            if r.saliency.shape != (h, w):
                raise InputError(
                    f"frame {r.index} is {r.saliency.shape[1]} x {r.saliency.shape[0]} but the video is {w} x {h}; "
                    "every frame of one video must have the same size"
                )
            f = r.focus
            if f is not None:
                path_pts.append((f.x, f.y))
            radius = s.attention.radius_px(*r.saliency.shape) if s.attention is not None else 0.0
            shown = list(path_pts) if trail > 0 else list(path_pts)[-1:]
            bgr = r.bgr if r.bgr is not None else to_bgr_u8(r.frame)
            writers[0].write(overlay_frame(bgr, r.saliency, shown, cmap=cmap, alpha=alpha, radius=radius))
            if map_video is not None:
                writers[1].write(map_frame(r.saliency, "gray"))
            if f is None:
                table.writerow([r.index, f"{r.time:.4f}", "", "", "", "", "", ""])
            else:
                table.writerow([r.index, f"{r.time:.4f}", f.x, f.y, f"{f.value:.4f}", f.fixation, f.dwell,
                                int(f.shifted)])
            n += 1
            if bar is not None:
                bar.update(1)
        if not writers:
            raise InputError(f"{source}: no frames")
        paths = [w.commit() for w in writers]
        if points is not None:
            from ..io import atomic_write_bytes

            paths.append(atomic_write_bytes(points, rows.getvalue().encode(), overwrite=overwrite))
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        s.close()
        if bar is not None:
            bar.close()
    return VideoSummary(n, time.perf_counter() - t0, tuple(paths))
