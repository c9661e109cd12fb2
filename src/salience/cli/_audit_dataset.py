"""``salience audit-dataset``: what a model's explanations rely on over a whole data set, as an HTML report."""

from __future__ import annotations

import argparse
import sys

from ..io import DEFAULT_MAX_PIXELS
from ._common import EXIT_FAILED, EXIT_OK, max_pixels_arg

DESCRIPTION = """\
Audit a model over a data set: explain every image (a resumable `salience batch` run per method into
OUT/maps/<method>/), then, per predicted class: the mean explanation map, the spread of the evidence's
centre of mass, the share of evidence near the border, example images at the extremes, and Spectral
Relevance Analysis (SpRAy: clusters of explanation maps, so that a shortcut shows up as its own cluster).
Optionally per group (--groups), against object masks or boxes (pointing game, energy-based pointing game,
evidence outside the object) and against human fixations (--fixations; next to the learned fixation model
deepgaze-mnv2 and the centre bias).  Writes OUT/index.html (self-contained: images inline, nothing from
another host) and the numbers as OUT/*.csv and OUT/*.parquet.  Re-running the same command computes no
map again.
"""

EXAMPLES = """\
examples:
  salience audit-dataset photos/ --method gradcam --out report/
  salience audit-dataset photos/ --method gradcam --groups groups.csv --boxes boxes.csv --out report/
  salience audit-dataset photos/ --method gradcam,layercam --masks masks:objects/ --out report/
  salience audit-dataset --fixations osie --method gradcam --out osie-report/   # the OSIE images

outputs (in --out):
  index.html                 the report
  images.csv|.parquet        one row per image and method: predicted class, centre of mass, border share,
                             group, pointing game, energy pointing game, outside share, SpRAy cluster,
                             fixation metrics (fix_*)
  classes.csv|.parquet       one row per method and predicted class; clusters, spectra: SpRAy
  groups, worst_groups       with --groups; fixations: with --fixations (mean and 95% interval)
  maps/<method>/             the batch run (its manifest.parquet and maps)
side inputs: --groups CSV with columns image,group; --boxes CSV with image,x0,y0,x1,y1 (pixels, x1/y1
  exclusive; several rows = the union); --masks masks:DIR with one mask per image named like the image
  (any image suffix or .npy, the image's size).  An image is named by its path, file name or stem.
exit status: 0 done, 1 some images failed (their rows say why), 2 bad usage or bad side input,
  3 stopped: outputs cannot be written, 130 interrupted.
"""


def add_parser(sub):
    p = sub.add_parser(
        "audit-dataset", help="per-class explanation statistics, SpRAy, groups, localisation, plausibility",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="folders, globs, list files (.txt) or image files (none with --fixations: its images)")
    p.add_argument("--method", "-m", default="gradcam", help="method(s), comma-separated (default: gradcam)")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a method parameter (repeatable; VALUE: a number, true/false/none, numbers joined "
                        "by commas, else text)")
    p.add_argument("--model", default="mobilenet_v2", help="the model explained (default mobilenet_v2)")
    p.add_argument("--weights", default=None, metavar="PATH", help="checkpoint for --model")
    p.add_argument("--layer", default=None, help="target layer for CAM methods (default: the model's)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the report folder (created if needed)")
    p.add_argument("--format", choices=("png", "npy", "both"), default="png",
                   help="map files of the batch run; npy/both: the analysis reads the lossless float maps")
    p.add_argument("--groups", metavar="CSV", help="a CSV of image,group")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--masks", metavar="masks:DIR", help="object masks, one per image")
    where.add_argument("--boxes", metavar="CSV", help="object boxes: a CSV of image,x0,y0,x1,y1")
    p.add_argument("--tolerance", type=float, default=15.0, metavar="PX", help="pointing-game tolerance (15 px)")
    p.add_argument("--fixations", metavar="osie|csv:PATH|maps:PATH", help="a fixation data set (plausibility)")
    p.add_argument("--data-dir", metavar="DIR", help="where the fixation data set is")
    p.add_argument("--fixation-metrics", default="auc_judd,nss,cc,sim,kld", metavar="NAMES",
                   help="fixation metrics (default auc_judd,nss,cc,sim,kld; 'all' adds sAUC, IG, EMD: slower)")
    p.add_argument("--border", type=float, default=0.1, metavar="F",
                   help="the border band, a fraction of the width/height (default 0.1)")
    p.add_argument("--no-spray", action="store_true", help="skip SpRAy")
    p.add_argument("--min-spray", type=int, default=10, metavar="N", help="SpRAy for classes of >= N images (10)")
    p.add_argument("--report-classes", type=int, default=20, metavar="K",
                   help="classes with a section of their own in the report: the K largest (20)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="batch worker processes (default 1)")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="images per batch through the model")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--max-pixels", type=max_pixels_arg, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")
    return p


def run(args) -> int:
    from ..audit.dataset import audit_dataset
    from ..batch import parse_params
    from ..registry import method_list

    methods = method_list(args.method)
    params = parse_params(args.param, methods)
    audit = audit_dataset(
        args.inputs, methods, args.out, model=args.model, weights=args.weights, layer=args.layer, params=params,
        format=args.format, groups=args.groups, masks=args.masks, boxes=args.boxes, tolerance=args.tolerance,
        fixations=args.fixations, data_dir=args.data_dir, fixation_metrics=args.fixation_metrics,
        border=args.border, spray=not args.no_spray, min_spray=args.min_spray, report_classes=args.report_classes,
        workers=args.workers, batch_size=args.batch_size, device=args.device, max_pixels=args.max_pixels or None)
    images = audit.tables.get("images", [])
    failed = [r for r in images if r["status"] != "ok"]
    for r in failed:
        print(f"salience: {r['input']}: {r['method']}: {r['error']}", file=sys.stderr)
    for note in audit.notes:
        print(f"salience: note: {note}", file=sys.stderr)
    done = sum(b["done"] for b in audit.batch.values())
    skipped = sum(b["skipped"] for b in audit.batch.values())
    n_classes = len(audit.tables.get("classes", []))
    print(f"salience: {len(images)} image/method pair(s): {done} map(s) computed now, {skipped} done before, "
          f"{len(failed)} failed; {n_classes} (method, class) pair(s); report {audit.report}")
    return EXIT_FAILED if failed else EXIT_OK
