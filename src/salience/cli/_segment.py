"""``salience segment``: salient-object masks and boxes of image files, from any registry map."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._common import emit, for_each_input, output_stem
from ._tasks import add_map_arguments, check_free, json_bytes, map_kwargs

EXAMPLES = """\
examples:
  salience segment photo.jpg                                 # frequency-tuned map, adaptive threshold
  salience segment photo.jpg --method spectral-residual --threshold otsu --grabcut
  salience segment cat.jpg --method gradcam --target top1    # the box of the model's evidence
  salience segment *.jpg --min-area 0.01 --max-boxes 3 --out boxes/

outputs (in --out, default salience-out/), for an input photo.jpg and method M:
  photo_M_mask.png      the binary mask (255 = object)
  photo_M_boxes.json    the boxes (x0, y0, x1, y1 pixel edges, x1/y1 exclusive; score = share of the
                        map's mass), best first, with the threshold used
  photo_M_segment.png   the image with the mask outlined and the boxes drawn

--threshold: adaptive = min(2 x mean, 1) of the normalised map (default for bottom-up maps), otsu, or a
number in [0, 1] (default 0.2 for explanations: the CAM paper's 20%-of-peak rule).
Existing files are kept unless --overwrite; writes are atomic.
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage.
"""


def add_parser(sub):
    p = sub.add_parser(
        "segment", help="salient-object masks and boxes (any map; GrabCut refinement)",
        description="Salient-object masks and boxes of images from any saliency map or explanation.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_map_arguments(p, default_method="frequency-tuned")
    p.add_argument("--threshold", default=None, metavar="adaptive|otsu|T",
                   help="how to binarise the map (default: adaptive; 0.2 for explanations)")
    p.add_argument("--grabcut", action="store_true", help="refine the mask with GrabCut on the image (SaliencyCut)")
    p.add_argument("--min-area", type=float, default=0.001, metavar="F",
                   help="drop components smaller than this fraction of the image (default 0.001)")
    p.add_argument("--nms", type=float, default=0.5, metavar="IOU",
                   help="drop a box overlapping a better one by more than this IoU (default 0.5)")
    p.add_argument("--max-boxes", type=int, default=None, metavar="K", help="keep at most K boxes")
    return p


def _threshold(value):
    if value is None:
        return None
    v = str(value).strip().lower()
    if v in ("adaptive", "otsu"):
        return v
    try:
        return float(v)
    except ValueError:
        raise InputError(f"--threshold must be adaptive, otsu or a number in [0, 1], got {value!r}") from None


def run(args) -> int:
    from ..io import atomic_write_bytes, encode_png, load_image
    from ..tasks.segment import draw_segmentation, segment

    threshold = _threshold(args.threshold)
    for opt, v in (("--min-area", args.min_area), ("--nms", args.nms)) + (
            (("--threshold", threshold),) if isinstance(threshold, float) else ()):
        if not 0.0 <= v <= 1.0:
            raise InputError(f"{opt} must be a number in [0, 1], got {v}")
    if args.max_boxes is not None and args.max_boxes < 1:
        raise InputError(f"--max-boxes must be at least 1, got {args.max_boxes}")
    if args.max_pixels < 0:
        raise InputError(f"--max-pixels must be >= 0 (0 = no limit), got {args.max_pixels}")
    name, kw = map_kwargs(args)
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        paths = [out / f"{stem}_{name}_mask.png", out / f"{stem}_{name}_boxes.json", out / f"{stem}_{name}_segment.png"]
        check_free(paths, args.overwrite)
        img = load_image(item, max_pixels=args.max_pixels or None)
        seg = segment(img, name, threshold=threshold, grabcut=args.grabcut, min_area=args.min_area, nms=args.nms,
                      max_boxes=args.max_boxes, **kw)
        doc = {"image": item, **seg.as_dict()}
        ow = args.overwrite
        mine = [atomic_write_bytes(paths[0], encode_png(seg.mask.astype("uint8") * 255), overwrite=ow),
                atomic_write_bytes(paths[1], json_bytes(doc), overwrite=ow),
                atomic_write_bytes(paths[2], encode_png(draw_segmentation(img, seg)), overwrite=ow)]
        written.extend(mine)
        best = seg.boxes[0].as_tuple() if seg.boxes else None
        emit(f"{item}: {len(seg.boxes)} box(es)" + (f", best {best[:4]} score {best[4]:.3f}" if best else "")
             + "".join(f"; {n}" for n in seg.notes) + f"; wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience segment")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code
