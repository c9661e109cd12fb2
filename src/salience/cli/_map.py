"""``salience map``: bottom-up saliency maps of image files, with overlays, arrays, scanpaths and panels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import DEFAULT_MAX_PIXELS, atomic_write_bytes, encode_png, load_image, save_map, save_npy
from ..limits import METHOD_BYTES_PER_PIXEL, check_image_work
from ..registry import BOTTOM_UP, Method, method_names
from ._common import bottom_up_methods, emit, for_each_input, max_pixels_arg, output_stem, refuse_overwrite

EXAMPLES = """\
examples:
  salience map photo.jpg                                  # Itti-Koch map -> salience-out/photo_itti.png
  salience map photo.jpg --overlay --scanpath 5 --panel   # + heatmap overlay, first 5 shifts, 42-map panel
  salience map *.jpg --method itti,spectral-residual --npy --out maps/
  salience map scan.tif --method frequency-tuned --overlay --cmap viridis --alpha 0.4

outputs (in --out, default salience-out/), for an input photo.jpg and method M:
  photo_M.png            grayscale map, brightness = saliency (always)
  photo_M_overlay.png    heatmap over the photo (--overlay)
  photo_M.npy            the float32 map, lossless (--npy)
  photo_M_scanpath.png   numbered attended locations (--scanpath N; the points are printed too)
  photo_itti_panel.png   the 42 feature maps and 3 conspicuity maps (--panel; needs itti in --method)

Existing files are kept unless --overwrite; writes are atomic (temporary file, then rename).
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage, 3 stopped: outputs
  cannot be written (full disk, read-only folder, --out is a file), 130 interrupted, 143 terminated.
"""


def add_parser(sub):
    names = ", ".join(method_names(BOTTOM_UP))
    p = sub.add_parser(
        "map",
        help="bottom-up saliency maps of image files",
        description=f"Compute bottom-up saliency maps of images. Methods: {names} "
                    "(`salience methods` lists them with their papers).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, TIFF, BMP, WebP, ...)")
    p.add_argument("--method", "-m", default="itti",
                   help="method name, or several separated by commas (default: itti)")
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR",
                   help="output folder, created if needed (default: salience-out)")
    p.add_argument("--overlay", action="store_true", help="also write a heatmap overlay on the image")
    p.add_argument("--cmap", default="jet", help="colormap of the overlay (default: jet; see salience.viz)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the overlay's heatmap, 0..1 (default 0.5)")
    p.add_argument("--npy", action="store_true", help="also write the float32 map as .npy (lossless)")
    p.add_argument("--scanpath", type=int, default=0, metavar="N",
                   help="also draw (and print) the first N attended locations (winner-take-all + IOR)")
    p.add_argument("--panel", action="store_true",
                   help="also write the Itti-Koch feature/conspicuity panel (needs itti among the methods)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (concurrent --overwrite runs into one folder take turns)")
    p.set_defaults(_out_is_folder=True)
    p.add_argument("--max-pixels", type=max_pixels_arg, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images with more pixels (decompression-bomb guard; default {DEFAULT_MAX_PIXELS:,}; "
                        "0 = no limit)")
    return p


def _check_options(args) -> None:
    from ..viz import COLORMAPS

    if not 0.0 <= args.alpha <= 1.0:
        raise InputError(f"--alpha must lie in [0, 1], got {args.alpha}")
    if args.cmap.lower() not in COLORMAPS:
        raise InputError(f"unknown --cmap {args.cmap!r}; choose one of {', '.join(COLORMAPS)}")
    if args.scanpath < 0:
        raise InputError(f"--scanpath must be >= 0, got {args.scanpath}")
    if args.max_pixels < 0:
        raise InputError(f"--max-pixels must be >= 0 (0 = no limit), got {args.max_pixels}")


def _targets(out: Path, stem: str, methods: list[Method], args) -> dict[tuple[str, str], Path]:
    t: dict[tuple[str, str], Path] = {}
    for m in methods:
        t[(m.name, "map")] = out / f"{stem}_{m.name}.png"
        if args.overlay:
            t[(m.name, "overlay")] = out / f"{stem}_{m.name}_overlay.png"
        if args.npy:
            t[(m.name, "npy")] = out / f"{stem}_{m.name}.npy"
        if args.scanpath:
            t[(m.name, "scanpath")] = out / f"{stem}_{m.name}_scanpath.png"
        if args.panel and m.name == "itti":
            t[(m.name, "panel")] = out / f"{stem}_itti_panel.png"
    return t


def run(args) -> int:
    methods = bottom_up_methods(args.method)
    _check_options(args)
    if args.panel and all(m.name != "itti" for m in methods):
        raise InputError("--panel shows the Itti-Koch feature maps; add itti to --method (e.g. --method itti,...)")
    out = Path(args.out)
    max_pixels = args.max_pixels or None
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        targets = _targets(out, stem, methods, args)
        refuse_overwrite(list(targets.values()), args.overwrite)
        img = load_image(item, max_pixels=max_pixels)
        if args.panel:  # the panel keeps every feature map: more memory than the map alone
            check_image_work(img.shape, "itti with --panel", bytes_per_pixel=2 * METHOD_BYTES_PER_PIXEL)
        mine: list[Path] = []
        for m in methods:
            mine += _one_method(img, m, targets, args)
        written.extend(mine)
        emit(f"{item}: wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience map")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code


def _one_method(img, m: Method, targets: dict[tuple[str, str], Path], args) -> list[Path]:
    from .. import saliency_map, viz

    ow = args.overwrite
    result: Any = None
    if (m.name, "panel") in targets:
        from ..bottomup.itti import itti_koch

        result = itti_koch(img, return_intermediates=True)
        sal = result.saliency
    else:
        sal = saliency_map(img, m.name)
    paths = [save_map(sal, targets[(m.name, "map")], overwrite=ow)]
    if (m.name, "overlay") in targets:
        png = encode_png(viz.overlay(img, sal, cmap=args.cmap, alpha=args.alpha))
        paths.append(atomic_write_bytes(targets[(m.name, "overlay")], png, overwrite=ow))
    if (m.name, "npy") in targets:
        paths.append(save_npy(sal.astype("float32", copy=False), targets[(m.name, "npy")], overwrite=ow))
    if (m.name, "scanpath") in targets:
        from ..bottomup.attention import scanpath

        points = scanpath(sal, n=args.scanpath)
        png = encode_png(viz.draw_scanpath(img, points))
        paths.append(atomic_write_bytes(targets[(m.name, "scanpath")], png, overwrite=ow))
        emit(f"{m.name} scanpath: " + "; ".join(
            f"{p.rank}. ({p.x:.0f}, {p.y:.0f}) {p.value:.3f}" for p in points))
    if result is not None:
        png = encode_png(viz.feature_panel(result, image=img))
        paths.append(atomic_write_bytes(targets[(m.name, "panel")], png, overwrite=ow))
    return paths
