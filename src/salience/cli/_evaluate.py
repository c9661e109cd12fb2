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
  csv:PATH    a CSV of fixations (columns image,subject,x,y[,onset,duration]; 0-based pixel coordinates,
              pixel centres at integers) and its images (in images/ next to it, or next to it)
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
    p.add_argument("--sigma-deg", type=float, default=None, metavar="DEG",
                   help="the same blur in degrees of visual angle (needs --pixels-per-degree)")
    p.add_argument("--pixels-per-degree", type=float, default=None, metavar="PPD",
                   help="display pixels per degree of visual angle, to convert --sigma-deg")
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


def run(args) -> int:
    if str(args.dataset).startswith("masks:"):  # salient-object masks: scored in salience.tasks.sod_eval
        from ..tasks.sod_eval import run_cli

        return run_cli(args)
    from ..datasets import blur_sigma, load_dataset
    from ..evaluation import evaluate_dataset

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    if args.resume and args.overwrite:
        raise InputError("--resume and --overwrite contradict each other; pass one")
    sigma = blur_sigma(args.sigma, sigma_deg=args.sigma_deg, pixels_per_degree=args.pixels_per_degree)
    method = args.method if args.method is not None else ("" if args.saliency_maps else "bottom-up,baselines")
    dataset = load_dataset(args.dataset, args.data_dir)
    result = evaluate_dataset(
        dataset, method, metrics=args.metrics, convention=args.convention, saliency_maps=args.saliency_maps,
        blur=args.blur, centre_bias=args.centre_bias, sigma=sigma, limit=args.limit, jobs=args.jobs,
        out=args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
        seed=args.seed,
    )
    print(f"{result.dataset}: {result.n_images} image(s), convention {result.convention}; "
          f"mean ± half-width of the 95% t confidence interval over images")
    print(result.table(markdown=args.markdown))
    note = f"{result.computed} (image, method) pair(s) computed"
    if result.resumed:
        note += f", {result.resumed} taken from {args.out}"
    print(f"{note}; {result.elapsed:.1f} s" + (f"; rows in {args.out}" if args.out else ""), file=sys.stderr)
    status = 0
    for label, names in result.missing.items():
        status = 1
        print(f"salience: {label}: {len(names)} of {result.n_images} image(s) have no map "
              f"(first: {', '.join(names[:5])}); they are not in its row of the table", file=sys.stderr)
    return status
