"""Saliency on a stream of frames: :func:`stream` and the frame sources it reads.

A stream takes frames from an iterable of images, a numpy array of frames, a video file or a camera,
computes one saliency map per frame with the dynamic Itti model (``"itti-dynamic"``, the default: its
state carries from frame to frame) or with any bottom-up method of the registry (frame by frame, no
state), and moves the focus of attention with :class:`~salience.video.attention.Attention`.  All state
lives in the :class:`Stream` object: two streams run side by side without sharing anything.

>>> import numpy as np, salience
>>> frames = np.full((5, 72, 96, 3), 0.5, np.float32)
>>> for k in range(5):
...     frames[k, 30:42, 10 + 6 * k:18 + 6 * k] = 1.0   # a bright patch moving right
>>> out = list(salience.stream(frames))
>>> [r.index for r in out], round(out[1].time, 4)
([0, 1, 2, 3, 4], 0.0333)
>>> xs = [r.focus.x for r in out]   # the attended point follows the patch rightwards
>>> xs == sorted(xs) and xs[-1] - xs[0] >= 18
True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, VideoReadError
from ..io import as_image_array
from ..registry import BOTTOM_UP, get_method
from .attention import Attention, AttentionParams, Focus
from .dynamic import DynamicItti, DynamicResult

__all__ = ["DEFAULT_FPS", "DYNAMIC_METHOD", "FrameResult", "Stream", "stream"]

#: The name of the dynamic Itti model in :func:`stream` and ``salience video``.
DYNAMIC_METHOD = "itti-dynamic"
_DYNAMIC_ALIASES = ("itti-dynamic", "dynamic-itti", "itti-video", "dynamic")
#: Frame rate assumed for arrays and iterables of frames when ``fps`` is not given.
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class FrameResult:
    """What a :class:`Stream` yields for each frame.

    Attributes
    ----------
    index:
        0-based frame number.
    time:
        Seconds since the first frame: ``index / fps`` for files, arrays and iterables, the wall-clock
        time since the stream started for cameras.
    frame:
        The frame, float32 ``(H, W, 3)`` RGB in ``[0, 1]``.
    saliency:
        float32 ``(H, W)`` map in ``[0, 1]``.
    focus:
        The attended point (:class:`~salience.video.attention.Focus`), or ``None`` when attention is off
        or nothing has been salient yet.
    detail:
        The :class:`~salience.video.dynamic.DynamicResult` (flicker, motion, conspicuity maps) for
        ``"itti-dynamic"``; ``None`` for other methods.
    bgr:
        The frame as the decoder gave it, uint8 ``(H, W, 3)`` BGR, for video files and cameras (what
        OpenCV's drawing and writing take); ``None`` for arrays and iterables.

    Examples
    --------
    >>> import numpy as np, salience
    >>> clip = np.full((2, 48, 64, 3), 0.5, np.float32); clip[:, 10:18, 40:48] = 1.0
    >>> r = next(iter(salience.stream(clip, "spectral-residual", fps=10)))
    >>> r.index, r.time, r.frame.shape, r.saliency.shape, r.focus is not None
    (0, 0.0, (48, 64, 3), (48, 64), True)
    """

    index: int
    time: float
    frame: np.ndarray = field(repr=False)
    saliency: np.ndarray = field(repr=False)
    focus: Focus | None
    detail: DynamicResult | None = field(default=None, repr=False)
    bgr: np.ndarray | None = field(default=None, repr=False)


# ---- sources ---------------------------------------------------------------------------------------------

class _Capture:
    """Frames of a video file or camera through ``cv2.VideoCapture``: ``(float32 RGB, uint8 BGR)`` pairs."""

    def __init__(self, source: str | int, *, camera: bool) -> None:
        self.camera = camera
        self.desc = f"camera {source}" if camera else str(source)
        if not camera and not Path(str(source)).is_file():
            what = "is a folder, not a video file" if Path(str(source)).is_dir() else "does not exist"
            raise VideoReadError(f"{self.desc} {what}; give a video file (MP4, AVI, MKV, ...) or a camera index")
        self.cap = cv2.VideoCapture(source if camera else str(source))
        if not self.cap.isOpened():
            self.cap.release()
            if camera:
                raise VideoReadError(f"{self.desc} could not be opened; check that it is connected and free")
            raise VideoReadError(
                f"{self.desc} could not be opened as a video: not a video file, a codec OpenCV's FFmpeg "
                "lacks, or corrupt data; re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
            )
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 10000 else None
        n = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(n) if not camera and math.isfinite(n) and n > 0 else None
        self._first = True

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, bgr = self.cap.read()
                if not ok or bgr is None:
                    if self._first:
                        raise VideoReadError(
                            f"{self.desc}: no frame could be decoded (empty, truncated or corrupt video)"
                        )
                    return
                self._first = False
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                yield _bgr_to_rgb_float(bgr), bgr
        finally:
            self.close()

    def close(self) -> None:
        self.cap.release()


def _bgr_to_rgb_float(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    if bgr.dtype != np.uint8:
        raise VideoReadError(f"the video decoder returned {bgr.dtype} frames; only 8-bit video is supported")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out = rgb.astype(np.float32)
    np.divide(out, np.float32(255.0), out=out)
    return out


def _source(source: Any, fps: float | None) -> tuple[Iterable[Any], float | None, bool, Any]:
    """(frames, fps, is_camera, closeable)."""
    if isinstance(source, bool):
        raise InputError("source must be frames, a video file path or a camera index, got a bool")
    if isinstance(source, (int, np.integer)):
        if source < 0:
            raise InputError(f"a camera index is >= 0, got {source}")
        cap = _Capture(int(source), camera=True)
        return cap, fps or cap.fps, True, cap
    if isinstance(source, (str, os.PathLike)):
        cap = _Capture(os.fspath(source), camera=False)
        return cap, fps or cap.fps or DEFAULT_FPS, False, cap
    if isinstance(source, np.ndarray):
        if source.ndim not in (3, 4) or source.shape[0] == 0:
            raise InputError(
                f"an array of frames must be (T, H, W) or (T, H, W, C) with T >= 1, got shape {source.shape}"
            )
        return iter(source), fps or DEFAULT_FPS, False, None
    if isinstance(source, (bytes, bytearray)) or not hasattr(source, "__iter__"):
        raise InputError(
            f"source must be an iterable of frames, a (T, H, W, C) array, a video file path or a camera "
            f"index, got {type(source).__name__}"
        )
    return source, fps or DEFAULT_FPS, False, None


# ---- the stream ------------------------------------------------------------------------------------------

class Stream:
    """An iterator of :class:`FrameResult`, one per frame of ``source``; see :func:`stream`.

    Use it in a ``for`` loop or as a context manager (``with salience.stream(...) as s:``), which
    releases a file or camera when the loop ends early.

    Examples
    --------
    >>> import numpy as np, salience
    >>> clip = np.full((3, 48, 64, 3), 0.5, np.float32)
    >>> with salience.stream(clip, "spectral-residual", attention=False) as s:
    ...     print([r.index for r in s], isinstance(s, salience.video.Stream))
    [0, 1, 2] True
    """

    def __init__(self, source: Any, method: str = DYNAMIC_METHOD, *, attention: Any = True,
                 fps: float | None = None, max_frames: int | None = None, **params: Any) -> None:
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                or not math.isfinite(fps) or fps <= 0):
            raise InputError(f"fps must be a positive number of frames per second, got {fps!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer))
                                       or max_frames < 1):
            raise InputError(f"max_frames must be an integer >= 1 (or None for all frames), got {max_frames!r}")
        self.method, self._model = _model(method, params)
        self.attention = _attention(attention)
        self._frames, self.fps, self._camera, self._closeable = _source(source, fps)
        self.frame_count = getattr(self._closeable, "frame_count", None)
        if isinstance(source, np.ndarray):
            self.frame_count = int(source.shape[0])
        if max_frames is not None:
            self.frame_count = min(self.frame_count or int(max_frames), int(max_frames))
        self.max_frames = max_frames
        self._it: Iterator[FrameResult] | None = None

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> FrameResult:
        if self._it is None:
            self._it = self._run()
        return next(self._it)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream and release its file or camera."""
        if self._it is not None:
            self._it.close()  # type: ignore[attr-defined]
        if self._closeable is not None:
            self._closeable.close()

    def _run(self) -> Iterator[FrameResult]:
        t0 = time.monotonic()
        index = 0
        try:
            for raw in self._frames:
                if self.max_frames is not None and index >= self.max_frames:
                    break
                bgr = None
                if self._closeable is not None:
                    frame, bgr = raw
                else:
                    frame = _frame(raw, index)
                detail = None
                if isinstance(self._model, DynamicItti):
                    detail = self._model.step(frame)
                    sal = detail.saliency
                else:
                    sal = np.asarray(self._model(frame), dtype=np.float32)
                focus = self.attention.update(sal, frame.shape) if self.attention is not None else None
                t = time.monotonic() - t0 if self._camera else index / float(self.fps or DEFAULT_FPS)
                yield FrameResult(index, t, frame, sal, focus, detail, bgr)
                index += 1
        finally:
            if self._closeable is not None:
                self._closeable.close()


def _frame(raw: Any, index: int) -> np.ndarray:
    try:
        return as_image_array(raw, name=f"frame {index}")
    except InputError:
        raise
    except (TypeError, ValueError) as exc:  # a frame that is not array-like at all
        raise InputError(f"frame {index} is not an image array ({type(raw).__name__}): {exc}") from None


def _model(method: Any, params: dict[str, Any]) -> tuple[str, Any]:
    if not isinstance(method, str):
        raise InputError(f"method must be a method name (str), got {type(method).__name__}")
    key = method.strip().lower().replace("_", "-")
    if key in _DYNAMIC_ALIASES:
        return DYNAMIC_METHOD, DynamicItti(**params)
    m = get_method(key)  # UnknownMethodError lists the known names
    if m.kind != BOTTOM_UP:
        raise InputError(
            f"method {m.name!r} explains a model; stream() runs {DYNAMIC_METHOD!r} and the bottom-up methods "
            "(salience.explain works on single frames)"
        )
    fn = m.load()
    return m.name, (lambda frame: fn(frame, **params))


def _attention(value: Any) -> Attention | None:
    if value is None or value is False:
        return None
    if value is True:
        return Attention()
    if isinstance(value, Attention):
        return value
    if isinstance(value, AttentionParams):
        return Attention(value)
    if isinstance(value, dict):
        return Attention(**value)
    raise InputError(
        f"attention must be True, False, an Attention, an AttentionParams or a dict of its fields, got {value!r}"
    )


def stream(source: Any, method: str = DYNAMIC_METHOD, *, attention: Any = True, fps: float | None = None,
           max_frames: int | None = None, **params: Any) -> Stream:
    """Saliency maps and the attended point, frame by frame.

    Parameters
    ----------
    source:
        An iterable of frames (each anything :func:`salience.io.as_image_array` accepts: float32 RGB in
        ``[0, 1]``, uint8, grayscale, ...), a numpy array ``(T, H, W[, C])``, a video file path (read with
        OpenCV's FFmpeg backend) or a camera index (``0`` for the first camera).
    method:
        ``"itti-dynamic"`` (default): the dynamic Itti model (:class:`~salience.video.dynamic.DynamicItti`;
        Itti, Dhavale & Pighin, Proc. SPIE 5200, 2003), with flicker and motion from the second frame on.
        Or any bottom-up method of :func:`salience.methods` (``"itti"``, ``"spectral-residual"``, ...),
        applied to each frame on its own.
    attention:
        ``True`` (default: :class:`~salience.video.attention.Attention` with its defaults), ``False``, an
        ``Attention``, an ``AttentionParams`` or a dict of its fields (``{"min_dwell": 3}``).
    fps:
        Frame rate for the ``time`` of each result; default: the file's, else 30.
    max_frames:
        Stop after this many frames (``None``: all; a camera runs until the loop stops).
    **params:
        Parameters of the method (for ``"itti-dynamic"``: :class:`~salience.video.dynamic.DynamicParams`
        and :class:`~salience.bottomup.itti.IttiParams` fields).

    Returns
    -------
    Stream
        An iterator of :class:`FrameResult` (``index``, ``time``, ``frame``, ``saliency``, ``focus``,
        ``detail``).  Frames are read lazily: each result is computed when the loop asks for it.

    Raises
    ------
    salience.errors.InputError
        Bad arguments or a bad frame (``frame 12 ...`` says which); :class:`~salience.errors.VideoReadError`
        for a missing, unreadable or corrupt video or camera.
    salience.errors.UnknownMethodError
        An unknown method name.

    Examples
    --------
    >>> import numpy as np, salience
    >>> clip = np.zeros((3, 48, 64), np.uint8); clip[:, 20:28, 30:38] = 255
    >>> [r.saliency.shape for r in salience.stream(clip, "spectral-residual")]
    [(48, 64), (48, 64), (48, 64)]
    """
    return Stream(source, method, attention=attention, fps=fps, max_frames=max_frames, **params)
