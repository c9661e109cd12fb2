"""A demo clip made from a still photo (a pan, then a zoom, plus a moving patch) and its processed video.

Used by ``salience demo`` (the gallery's video section) and ``benchmarks/bench_video.py``; nothing is
downloaded.

>>> import numpy as np
>>> from salience.video.demo import demo_clip
>>> clip = demo_clip(np.full((100, 100, 3), 0.5, np.float32), n=4, size=(64, 48))
>>> len(clip), clip[0].shape, clip[0].dtype
(4, (48, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..io import as_image_array, atomic_write_bytes, encode_png

__all__ = ["demo_clip", "demo_video"]


def demo_clip(photo: Any, n: int = 60, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` uint8 RGB frames of ``size = (W, H)``: a pan left to right over ``photo`` for the first half,
    a zoom in to 60 % for the second, and a yellow patch crossing the bottom third left to right.

    ``photo`` is any image array (it is scaled to 1.5 times the frame size first).
    """
    w, h = int(size[0]), int(size[1])
    rgb = as_image_array(photo, name="photo")
    big_w, big_h = int(w * 1.5), int(h * 1.5)
    big = cv2.resize(np.floor(rgb * 255 + 0.5).astype(np.uint8), (big_w, big_h), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(int(n)):
        t = k / max(1, n - 1)
        if t < 0.5:  # pan
            s = 1.0
            x0, y0 = int(round(2 * t * (big_w - w))), (big_h - h) // 2
        else:  # zoom around the centre
            s = 1.0 - 0.4 * (2 * t - 1)
            x0, y0 = int(round((big_w - w * s) / 2)), int(round((big_h - h * s) / 2))
        crop = big[y0:y0 + int(round(h * s)), x0:x0 + int(round(w * s))]
        f = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        side = max(4, w // 16)
        px, py = int(side + t * (w - 3 * side)), int(h * 0.75)
        cv2.rectangle(f, (px, py), (px + side, py + side), (255, 255, 40), -1)
        frames.append(np.ascontiguousarray(f))
    return frames


def demo_video(photo: Any, out_dir: str | os.PathLike, *, n: int = 48, size: tuple[int, int] = (320, 240),
               log: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Make the demo clip, run ``salience video`` on it, and write a contact sheet of 8 processed frames.

    Writes ``video_clip.avi`` (the input), ``video_attention.mp4`` (overlay, focus and path),
    ``video_map.mp4`` and ``video_contact_sheet.png`` into ``out_dir``, replacing earlier ones.  Returns a
    gallery section for :func:`salience.demo.run_demo`.
    """
    from .render import VideoWriter, overlay_frame, to_bgr_u8, write_video
    from .stream import stream

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = demo_clip(photo, n, size)
    with VideoWriter(out / "video_clip.avi", 30.0, size, overwrite=True) as wr:
        for f in frames:
            wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        wr.commit()
    write_video(out / "video_clip.avi", out / "video_attention.mp4", map_video=out / "video_map.mp4",
                overwrite=True)
    # contact sheet: 8 evenly spaced frames, overlay with the focus, from the same stream
    picks = set(np.linspace(0, n - 1, 8).round().astype(int).tolist())
    tiles, trail = [], []
    s = stream([f for f in frames])
    for r in s:
        if r.focus is not None:
            trail.append((r.focus.x, r.focus.y))
        if r.index in picks:
            tile = overlay_frame(to_bgr_u8(r.frame), r.saliency, trail[-15:],
                                 radius=s.attention.radius_px(*r.saliency.shape) if s.attention else 0)
            cv2.putText(tile, f"frame {r.index}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(cv2.cvtColor(tile, cv2.COLOR_BGR2RGB))
    rows = [np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles), 4)]
    sheet = np.concatenate(rows, axis=0)
    atomic_write_bytes(out / "video_contact_sheet.png", encode_png(sheet), overwrite=True)
    if log:
        log(f"  video: {n} frames {size[0]} x {size[1]} -> video_attention.mp4, video_contact_sheet.png")
    return {
        "title": "itti-dynamic: video and attention over time",
        "subtitle": "A clip made from the photo (pan, zoom, a moving yellow patch), processed by the dynamic "
                    "Itti model with flicker and motion; files video_clip.avi, video_attention.mp4 and "
                    "video_map.mp4 are in this folder.",
        "paper": "L. Itti, N. Dhavale, F. Pighin. Realistic avatar eye and head animation using a "
                 "neurobiological model of visual attention. Proc. SPIE 5200, 2003",
        "figures": [{
            "title": "contact sheet",
            "images": ["video_contact_sheet.png"],
            "caption": "8 frames of video_attention.mp4: heatmap, focus of attention (circle) and its "
                       "path over the last 15 frames",
            "wide": True,
        }],
    }
