"""``salience crop``: smart crops of image files that keep the most saliency mass."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._common import emit, for_each_input, output_stem
from ._tasks import add_map_arguments, check_free, json_bytes, map_kwargs

EXAMPLES = """\
examples:
  salience crop photo.jpg --aspect 16:9                       # best 16:9 window -> salience-out/photo_crop-16x9.png
  salience crop *.jpg --aspect 1:1 --candidates 3 --out thumbs/
  salience crop photo.jpg --aspect 400x300 --method spectral-residual --margin 0.05 --thirds 0.3

outputs (in --out, default salience-out/), for an input photo.jpg:
  photo_crop-16x9.png     the best crop (photo_crop-16x9-2.png ... for the other candidates)
  photo_crop-16x9.json    the windows (x0, y0, x1, y1 pixel edges, x1/y1 exclusive), best first, with the
                          share of the map's mass each keeps

--aspect: W:H (16:9, 1:1, 9:16, ...) for the largest window of that ratio (times --scale), or WxH for a
window of exactly that many pixels.
Existing files are kept unless --overwrite; writes are atomic.
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage.
"""


def add_parser(sub):
    from ..tasks.crop import DEFAULT_CROP_METHOD

    p = sub.add_parser(
        "crop", help="smart crops keeping the most saliency (aspect ratio or size)",
        description="Crop images to an aspect ratio or a size, keeping the window with the most saliency mass "
                    "(every position scored at once with a summed-area table).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_map_arguments(p, default_method=DEFAULT_CROP_METHOD,
                      default_note=" with --blur 0.02 --centre-bias 0.3, the crop that kept the most fixations on OSIE")
    p.set_defaults(method=None)  # None: the default map with its prior (see --help of --method)
    p.add_argument("--aspect", "-a", default="1:1", metavar="W:H|WxH", help="16:9, 1:1 (default), 9:16, ... or WxH pixels")
    p.add_argument("--candidates", "-k", type=int, default=1, metavar="K", help="write the K best windows (default 1)")
    p.add_argument("--max-overlap", type=float, default=0.3, metavar="IOU",
                   help="candidates overlap each other by at most this IoU (default 0.3; 0 = disjoint)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="window size as a fraction of the largest window of the ratio (default 1)")
    p.add_argument("--margin", type=float, default=0.0, metavar="F",
                   help="count only the mass inside the window shrunk by F of its side on each edge (default 0)")
    p.add_argument("--thirds", type=float, default=0.0, metavar="W",
                   help="weight of the rule-of-thirds term, 0..1 (default 0)")
    return p


def run(args) -> int:
    from ..io import atomic_write_bytes, encode_png, load_image
    from ..tasks import to_u8
    from ..tasks.crop import crop, cut, window_size

    if args.max_pixels < 0:
        raise InputError(f"--max-pixels must be >= 0 (0 = no limit), got {args.max_pixels}")
    if args.candidates < 1:
        raise InputError(f"--candidates must be at least 1, got {args.candidates}")
    for opt, v, hi in (("--margin", args.margin, 0.49), ("--thirds", args.thirds, 1.0),
                       ("--max-overlap", args.max_overlap, 1.0)):
        if not 0.0 <= v <= hi:
            raise InputError(f"{opt} must be a number in [0, {hi}], got {v}")
    if "x" not in str(args.aspect).lower():
        window_size((100_000, 100_000), args.aspect, scale=args.scale)  # the ratio's syntax and --scale
    if args.method is None:  # the default crop map: image signature with the blur + centre prior
        from ..tasks.crop import DEFAULT_CROP_METHOD, DEFAULT_CROP_PRIOR

        args.method = DEFAULT_CROP_METHOD
        if not args.blur and not args.centre_bias:
            args.blur, args.centre_bias = DEFAULT_CROP_PRIOR["blur"], DEFAULT_CROP_PRIOR["centre_bias"]
    name, kw = map_kwargs(args)
    out = Path(args.out)
    tag = "crop-" + str(args.aspect).strip().replace(":", "x").replace("/", "x")
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        img = load_image(item, max_pixels=args.max_pixels or None)
        windows = crop(img, args.aspect, method=name, candidates=args.candidates, scale=args.scale,
                       margin=args.margin, thirds=args.thirds, max_overlap=args.max_overlap, **kw)
        pngs = [out / (f"{stem}_{tag}.png" if w.rank == 1 else f"{stem}_{tag}-{w.rank}.png") for w in windows]
        js = out / f"{stem}_{tag}.json"
        check_free(pngs + [js], args.overwrite)
        u8 = to_u8(img)
        mine = [atomic_write_bytes(p, encode_png(cut(u8, w).copy()), overwrite=args.overwrite)
                for p, w in zip(pngs, windows)]
        doc = {"image": item, "method": name, "aspect": str(args.aspect), "width": img.shape[1],
               "height": img.shape[0], "windows": [w.as_dict() for w in windows]}
        mine.append(atomic_write_bytes(js, json_bytes(doc), overwrite=args.overwrite))
        written.extend(mine)
        b = windows[0]
        emit(f"{item}: best ({b.x0}, {b.y0}, {b.x1}, {b.y1}) keeps {100 * b.share:.1f}% of the {name} map; "
             f"wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience crop")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code
