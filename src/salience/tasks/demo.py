"""Gallery entries of the applications for ``salience demo``: segmented objects, smart crops, a DICOM scan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["demo_applications"]


def demo_applications(photos: dict[str, np.ndarray], out_dir: Path,
                      say: Callable[[str], Any] = lambda s: None) -> list[dict]:
    """Write ``apps/*.png`` under ``out_dir``; return gallery entries ``{"section", "title", "path",
    "caption"}`` (paths relative to ``out_dir``)."""
    from ..io import atomic_write_bytes, encode_png
    from ._maps import to_u8
    from .crop import DEFAULT_CROP_METHOD, crop, cut
    from .segment import draw_segmentation, segment

    out = Path(out_dir)
    entries: list[dict] = []

    def write(name: str, arr: np.ndarray) -> str:
        atomic_write_bytes(out / "apps" / name, encode_png(arr), overwrite=True)
        return f"apps/{name}"

    for p in [n for n in ("coffee", "chelsea") if n in photos]:
        seg = segment(photos[p], "frequency-tuned", grabcut=True, max_boxes=3)
        entries.append({"section": "Salient objects: salience.segment", "title": f"{p}",
                        "path": write(f"{p}_segment.png", draw_segmentation(photos[p], seg)),
                        "caption": f"frequency-tuned map, adaptive threshold, GrabCut; {len(seg.boxes)} box(es), "
                                   "ranked by saliency mass"})
    for p in [n for n in ("astronaut", "rocket") if n in photos]:
        img = photos[p]
        shown = to_u8(img).copy()
        for aspect, colour in (("16:9", (255, 60, 60)), ("1:1", (60, 220, 60)), ("9:16", (60, 140, 255))):
            w = crop(img, aspect)[0]  # the default map: image signature with the blur + centre prior
            cv2.rectangle(shown, (w.x0, w.y0), (w.x1 - 1, w.y1 - 1), colour, 2)
            if aspect == "9:16":
                entries.append({"section": "Smart crop: salience.crop", "title": f"{p} 9:16",
                                "path": write(f"{p}_crop_9x16.png", np.ascontiguousarray(cut(to_u8(img), w))),
                                "caption": f"keeps {100 * w.share:.0f}% of the default crop map ({DEFAULT_CROP_METHOD} + prior)"})
        entries.append({"section": "Smart crop: salience.crop", "title": f"{p} windows",
                        "path": write(f"{p}_crop_windows.png", shown),
                        "caption": "best 16:9 (red), 1:1 (green) and 9:16 (blue) windows"})
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file("CT_small.dcm")
    except Exception as exc:  # noqa: BLE001 - pydicom missing, or the file is not bundled
        say(f"  DICOM example skipped: {type(exc).__name__}: {exc}")
        return entries
    from .. import viz
    from .medical import load_scan, scan_maps

    scan = load_scan(path, window=(40, 400))
    sal = scan_maps(scan, "spectral-residual")[0]
    sp = scan.metadata.get("pixel_spacing_mm", ["?", "?"])
    entries.append({"section": "Medical images: salience medical", "title": "CT_small.dcm (pydicom's test file)",
                    "path": write("ct_overlay.png", viz.overlay(scan.rgb(0), sal)),
                    "caption": f"rescaled to HU, soft-tissue window 40/400, spectral-residual map; pixel spacing "
                               f"{sp[0]} x {sp[1]} mm"})
    return entries
