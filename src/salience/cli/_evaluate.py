"""``salience evaluate``: score methods (and precomputed maps) against human fixations on a data set."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError

DESCRIPTION = """\
Score saliency methods against human eye fixations: every image of a data set, every method, the chosen
metrics; print a method x metric table (mean and 95% t-based confidence interval over images) and write
one row per image and method (CSV, or Parquet for a .parquet path) as each image finishes, so that an
interrupted run continues with --resume without recomputing finished images.

data sets:
  osie        OSIE (700 images, 15 subjects); --data-dir is the OSIE folder or the folder holding osie/
              (default: $SALIENCE_SHARED_DATA/osie, else <repository>/../shared/data/osie)
  csv:PATH    a CSV of fixations (columns image,subject,x,y[,onset,duration][,pixels_per_degree]; 0-based
              pixel coordinates, pixel centres at integers) and its images (in images/ next to it, or next
              to it); points up to one pixel outside an image are clipped onto its border (counted), see
              --outside; onset/duration in ms unless the header (duration_s) or --time-unit says s
  maps:PATH   a folder with images/ and fixations/ (binary fixation maps) [and maps/ (continuous maps)],
              or MIT1003's ALLSTIMULI/ and ALLFIXATIONMAPS/
  masks:PATH  salient objects: a folder with images/ and masks/ (ground-truth object masks, same file
              stems); scored by MAE, F, weighted F, S, E, IoU and Dice (see docs/applications.md)

methods: registry names, 'bottom-up' (all bottom-up methods), 'baselines' (centre-bias, chance: a uniform
random map, human: the leave-one-subject-out inter-observer ceiling).
"""

EXAMPLES = """\
examples:
  salience evaluate --dataset osie --method bottom-up,baselines --metrics all --out osie.csv --jobs 2
  salience evaluate --dataset osie --method itti --blur 0.02 --centre-bias 0.3 --out osie.csv --resume
  salience evaluate --dataset csv:mylab/fixations.csv --saliency-maps my_model_maps/ --metrics nss,cc
"""


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="score methods or precomputed maps against human fixations",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, metavar="osie|csv:PATH|maps:PATH", help="the fixation data set")
    p.add_argument("--data-dir", metavar="DIR", help="where the data set is (see above)")
    p.add_argument("--method", default=None, metavar="NAMES",
                   help="comma-separated methods (default: bottom-up,baselines; none when --saliency-maps is given)")
    p.add_argument("--saliency-maps", action="append", default=[], metavar="DIR",
                   help="a folder of precomputed maps (PNG/NPY, file stem = image name); repeatable")
    p.add_argument("--metrics", default="all", metavar="all|NAMES", help="comma-separated metrics (default all)")
    p.add_argument("--convention", choices=["mit", "tuebingen"], default="mit",
                   help="metric definitions: the MIT benchmark's code (default) or pysaliency's")
    p.add_argument("--sigma", type=float, default=None, metavar="PX",
                   help="blur of the fixations into the continuous ground truth, in pixels "
                        "(default: the MIT benchmark's run_antonioGaussian blur, 32 px effective on "
                        "800-px-wide images, under both conventions)")
    p.add_argument("--sigma-fraction", type=float, default=None, metavar="F",
                   help="the blur relative to the image size: sigma = F x the image's larger side (e.g. 0.04 "
                        "= 32 px on 800 px; 8 cycles per image = 0.0234), for data sets of mixed sizes")
    p.add_argument("--sigma-deg", type=float, default=None, metavar="DEG",
                   help="the same blur in degrees of visual angle (times each image's pixels per degree: the "
                        "CSV's pixels_per_degree column, else --pixels-per-degree)")
    p.add_argument("--pixels-per-degree", type=float, default=None, metavar="PPD",
                   help="display pixels per degree of visual angle, to convert --sigma-deg")
    p.add_argument("--sauc-others", default=None, metavar="N|all",
                   help="shuffled AUC: negatives from the fixations of N other images drawn per image "
                        "(seeded), or all other images (default: 10 under mit, as AUC_shuffled.m; all under "
                        "tuebingen)")
    p.add_argument("--outside", choices=["clip", "error", "drop"], default="clip",
                   help="csv: points beyond an image: clip those within one pixel onto the border and refuse "
                        "the others (default), refuse all, or drop all")
    p.add_argument("--time-unit", choices=["ms", "s"], default=None,
                   help="csv: unit of onset/duration (default: from the header, e.g. duration_s, else ms)")
    p.add_argument("--csv-encoding", default=None, metavar="ENC",
                   help="csv: text encoding (default: UTF-8, or UTF-16 with a byte-order mark)")
    p.add_argument("--blur", type=float, default=0.0, metavar="F",
                   help="blur bottom-up maps by a Gaussian of sigma F x image width (default 0: off)")
    p.add_argument("--centre-bias", "--center-bias", dest="centre_bias", type=float, default=0.0, metavar="W",
                   help="mix a centre Gaussian into bottom-up maps: (1-W)*map + W*centre (default 0: off)")
    p.add_argument("--out", metavar="FILE", help="per-image rows: .csv, or .parquet (needs pyarrow)")
    p.add_argument("--resume", action="store_true", help="keep the rows already in --out; compute the rest")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (name order)")
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="base of the per-image random seeds (default 0)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _dataset(args):
    """The data set of ``--dataset``, with the CSV-only options passed to the CSV loader."""
    from ..datasets import load_dataset

    csv_opts = {"outside": (args.outside, "clip"), "time_unit": (args.time_unit, None),
                "encoding": (args.csv_encoding, None)}
    if args.dataset.strip().lower().startswith("csv:"):
        return load_dataset(args.dataset, args.data_dir, **{k: v for k, (v, _) in csv_opts.items()})
    given = [k for k, (v, default) in csv_opts.items() if v != default]
    if given:
        flags = ", ".join("--" + {"encoding": "csv-encoding"}.get(k, k).replace("_", "-") for k in given)
        raise InputError(f"{flags} apply to csv: data sets only")
    return load_dataset(args.dataset, args.data_dir)


def _sauc_others(text):
    if text is None or text.strip().lower() == "all":
        return None if text is None else "all"
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--sauc-others must be a whole number >= 1 or 'all', got {text!r}") from None


def _report(args, result) -> int:
    """The notes after the table on stderr (resumed, missing maps, skipped images, clipped points)."""
    note = f"{result.computed} (image, method) pair(s) computed"
    if result.resumed:
        note += f", {result.resumed} taken from {args.out}"
    print(f"{note}; {result.elapsed:.1f} s" + (f"; rows in {args.out}" if args.out else ""), file=sys.stderr)
    if result.n_clipped:
        print(f"salience: {result.n_clipped} fixation(s) up to one pixel outside their image were clipped onto "
              "its border (see the n_clipped column; --outside error refuses them)", file=sys.stderr)
    status = 0
    for label, names in result.missing.items():
        status = 1
        print(f"salience: {label}: {len(names)} of {result.n_images} image(s) have no map "
              f"(first: {', '.join(names[:5])}); they are not in its row of the table", file=sys.stderr)
    for image, method, why in result.skipped:
        status = 1
        what = image if method == "*" else f"{image} ({method})"
        print(f"salience: {what}: skipped: {why}", file=sys.stderr)
    if result.skipped:
        print(f"salience: {len(result.skipped_images)} image(s) skipped, {len(result.skipped)} failure(s); "
              "the table leaves them out", file=sys.stderr)
    return status


def run(args) -> int:
    if str(args.dataset).startswith("masks:"):  # salient-object masks: scored in salience.tasks.sod_eval
        from ..tasks.sod_eval import run_cli

        return run_cli(args)
    from ..evaluation import evaluate_dataset

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    if args.resume and args.overwrite:
        raise InputError("--resume and --overwrite contradict each other; pass one")
    if args.sigma_deg is not None and args.pixels_per_degree is None and not args.dataset.lower().startswith("csv:"):
        raise InputError("--sigma-deg needs pixels_per_degree: pass --pixels-per-degree (the display's pixels per degree of visual angle)")
    method = args.method if args.method is not None else ("" if args.saliency_maps else "bottom-up,baselines")
    sauc_others = _sauc_others(args.sauc_others)
    dataset = _dataset(args)
    result = evaluate_dataset(
        dataset, method, metrics=args.metrics, convention=args.convention, saliency_maps=args.saliency_maps,
        blur=args.blur, centre_bias=args.centre_bias, sigma=args.sigma, sigma_fraction=args.sigma_fraction,
        sigma_deg=args.sigma_deg, pixels_per_degree=args.pixels_per_degree, sauc_others=sauc_others,
        limit=args.limit, jobs=args.jobs, out=args.out, resume=args.resume, overwrite=args.overwrite,
        progress=not args.no_progress, seed=args.seed,
    )
    print(f"{args.dataset}: {result.n_images} image(s), convention {result.convention}; "
          f"mean ± half-width of the 95% t confidence interval over images")
    print(result.table(markdown=args.markdown))
    return _report(args, result)
