"""``salience medical``: saliency maps of DICOM scans and 16-bit / float grayscale PNG and TIFF images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._common import emit, for_each_input, output_stem
from ._tasks import check_free, json_bytes

EXAMPLES = """\
examples:
  salience medical ct.dcm                                  # window from the file -> salience-out/ct_spectral-residual.png
  salience medical ct.dcm --window 40,400 --overlay        # soft-tissue window (centre 40 HU, width 400)
  salience medical cine.dcm --method image-signature       # one map per frame: cine_f001_..., cine_f002_...
  salience medical scan16.tif --percentiles 1,99 --method gradcam

outputs (in --out, default salience-out/), for an input ct.dcm and method M (frame suffix _fNNN when the
file has several frames):
  ct_image.png       the windowed grey image the method saw
  ct_M.png           the map, brightness = saliency
  ct_M_overlay.png   heatmap over the image (--overlay)
  ct_M.json          metadata: pixel spacing (mm), modality, rescale, the window used, frames, files

intensity window: --window C,W (DICOM's linear window), --percentiles LO,HI, else the file's VOI LUT or
Window Center/Width (DICOM), else the frame's min-max.  MONOCHROME1 is inverted (bright = high).
DICOM needs pydicom: pip install 'salience[medical]'.  Nothing is written for an input that fails.
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage.
"""


def add_parser(sub):
    p = sub.add_parser(
        "medical", help="saliency maps of DICOM scans and 16-bit/float grayscale images",
        description="Saliency maps of medical and scientific grayscale images (DICOM, 16-bit or float PNG/TIFF) "
                    "with a documented intensity window.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="SCAN", help="DICOM files, or grayscale PNG/TIFF of any depth")
    p.add_argument("--method", "-m", default="spectral-residual",
                   help="any registry method (default spectral-residual); explanations replicate the grey channel")
    p.add_argument("--window", default=None, metavar="C,W", help="intensity window: centre,width in stored units")
    p.add_argument("--percentiles", default=None, metavar="LO,HI", help="intensity window between two percentiles")
    p.add_argument("--overlay", action="store_true", help="also write a heatmap overlay")
    p.add_argument("--model", default="mobilenet_v2", help="explanation methods: the model")
    p.add_argument("--weights", default=None, metavar="PATH", help="explanation methods: a checkpoint")
    p.add_argument("--target", default=None, help="explanation methods: top1 (default), a class index or name")
    p.add_argument("--layer", default=None, help="explanation methods: the CAM layer")
    p.add_argument("--device", default="cpu", help="explanation methods: cpu (default) or cuda")
    p.add_argument("--blur", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--centre-bias", dest="centre_bias", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def _pair(value, opt):
    if value is None:
        return None
    parts = [s.strip() for s in str(value).split(",")]
    try:
        a, b = (float(s) for s in parts)
    except ValueError:
        raise InputError(f"{opt} takes two numbers separated by a comma (e.g. {opt} 40,400), got {value!r}") from None
    return (a, b)


def run(args) -> int:
    from ..io import atomic_write_bytes, encode_png, map_to_uint8
    from ..tasks import to_u8
    from ..tasks.medical import load_scan, scan_maps
    from ._tasks import map_kwargs

    window = _pair(args.window, "--window")
    pct = _pair(args.percentiles, "--percentiles")
    if window is not None and pct is not None:
        raise InputError("give --window or --percentiles, not both")
    if window is not None and window[1] < 1:
        raise InputError(f"--window width must be >= 1, got {window[1]}")
    if pct is not None and not 0 <= pct[0] < pct[1] <= 100:
        raise InputError(f"--percentiles must satisfy 0 <= LO < HI <= 100, got {args.percentiles}")
    name, kw = map_kwargs(args)
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        scan = load_scan(item, window=window, percentiles=pct)
        n = len(scan)
        tags = [stem] if n == 1 else [f"{stem}_f{i + 1:03d}" for i in range(n)]
        targets = []
        for t in tags:
            targets += [out / f"{t}_image.png", out / f"{t}_{name}.png"]
            if args.overlay:
                targets.append(out / f"{t}_{name}_overlay.png")
        meta_path = out / f"{stem}_{name}.json"
        check_free(targets + [meta_path], args.overwrite)
        maps = scan_maps(scan, name, **kw)  # everything is computed before anything is written
        blobs = []
        for i, t in enumerate(tags):
            blobs.append((out / f"{t}_image.png", encode_png(to_u8(scan.images[i]))))
            blobs.append((out / f"{t}_{name}.png", encode_png(map_to_uint8(maps[i]))))
            if args.overlay:
                from .. import viz

                blobs.append((out / f"{t}_{name}_overlay.png", encode_png(viz.overlay(scan.rgb(i), maps[i]))))
        meta = {**scan.metadata, "method": name, "files": [str(p) for p, _ in blobs]}
        blobs.append((meta_path, json_bytes(meta)))
        mine = [atomic_write_bytes(p, b, overwrite=args.overwrite) for p, b in blobs]
        written.extend(mine)
        sp = scan.metadata.get("pixel_spacing_mm")
        emit(f"{item}: {n} frame(s), {scan.images.shape[2]} x {scan.images.shape[1]} px"
             + (f", spacing {sp[0]:g} x {sp[1]:g} mm" if sp else "")
             + f", window {scan.metadata['window']['source']}; wrote {len(mine)} file(s)")

    code = for_each_input(args.images, work, desc="salience medical")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code
