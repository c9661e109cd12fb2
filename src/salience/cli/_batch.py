"""``salience batch``: every method for every image of folders, globs or list files; resumable; local or Ray."""

from __future__ import annotations

import argparse
import sys

from ..io import DEFAULT_MAX_PIXELS
from ._common import EXIT_FAILED, EXIT_OK, max_pixels_arg, whole_number_arg

EXAMPLES = """\
examples:
  salience batch photos/ --method itti,spectral-residual --out maps/
  salience batch 'data/**/*.jpg' list.txt --method gradcam,itti --batch-size 32 --format both --out maps/
  salience batch photos/ --method itti --workers 8 --out maps/          # 8 processes
  salience batch photos/ --method itti --param itti.combination=max --out maps/  # new files: photo_itti@<hash>.png
  salience batch photos/ --method gradcam --engine ray --address auto --workers 4 --num-gpus 1 --out /shared/maps

outputs (in --out), for photos/a/cat.jpg given as the folder photos/ and method M:
  a/cat_M.png, a/cat_M.npy   the map (8-bit PNG) and/or the float32 array (--format)
  manifest.parquet           one row per image and method: status, outputs, seconds, min/max/mean,
                             entropy, centre of mass, the model's top class, the error of a failed image
                             (manifest.csv where pyarrow is not installed)
Re-running the same command skips what is done; after a crash (even SIGKILL) it finishes the rest.
A changed --param, --model, --target or --layer is a different job (files tagged @<hash>), not a skip.
exit status: 0 every job done, 1 some images failed (the summary line says how many; their rows have
  the error), 2 bad usage, 3 stopped: outputs cannot be written, 130 interrupted, 143 terminated.
"""


def add_parser(sub):
    p = sub.add_parser(
        "batch",
        help="every method for every image of folders/globs/lists, resumable, local or on Ray",
        description="Compute saliency maps and explanations for whole folders and data sets, with a "
                    "manifest, resumable after a crash; across local processes or on a Ray cluster.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="folders, globs, list files (.txt) or image files")
    p.add_argument("--method", "-m", default="itti", help="method(s), comma-separated (default: itti)")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a method parameter (repeatable; VALUE: a number, true/false/none, numbers joined "
                        "by commas, else text)")
    p.add_argument("--model", default="mobilenet_v2", help="the model of explanation methods (default mobilenet_v2)")
    p.add_argument("--weights", default=None, metavar="PATH", help="checkpoint for --model")
    p.add_argument("--target", default="top1", help="top1 (default), topK, a class index or a class name")
    p.add_argument("--layer", default=None, help="target layer for CAM methods (default: the model's)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--format", choices=("png", "npy", "both"), default="png", help="output files (default png)")
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="worker processes (local) or actors (ray); default 1")
    p.add_argument("--batch-size", type=_positive, default=8, metavar="B",
                   help="images per batch through the model (default 8)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local (default) or ray")
    p.add_argument("--address", default=None, help="Ray: auto or ray://HOST:PORT (default: start a local Ray)")
    p.add_argument("--num-cpus", type=float, default=None, metavar="C", help="Ray: CPUs per actor (default 1)")
    p.add_argument("--num-gpus", type=float, default=None, metavar="G", help="Ray: GPUs per actor (default 0)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA when present), cpu or cuda")
    p.add_argument("--max-pixels", type=max_pixels_arg, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")
    return p


_positive = whole_number_arg(1)


class _Bar:
    """A tqdm bar (images, rate and time left) on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.bar = None
        isatty = getattr(sys.stderr, "isatty", None)
        self.enabled = callable(isatty) and isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="salience batch", unit="image", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args) -> int:
    from ..batch import RunSummary, parse_params
    from ..batch import run as batch_run
    from ..registry import method_list

    methods = method_list(args.method)
    params = parse_params(args.param, methods)
    summary = RunSummary()
    bar = _Bar()
    try:
        table = batch_run(args.inputs, methods, args.out, params=params, model=args.model, weights=args.weights,
                          target=args.target, layer=args.layer, format=args.format, workers=args.workers,
                          batch_size=args.batch_size, engine=args.engine, address=args.address,
                          device=args.device, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                          max_pixels=args.max_pixels or None, progress=bar, summary=summary)
    finally:
        bar.close()
    rows = table.to_pylist() if hasattr(table, "to_pylist") else table
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"salience: {r['input']}: {r['method']}: {r['error']}", file=sys.stderr)
    n_img = len({r["rel"] for r in rows})
    print(f"salience: {len(rows)} job(s) ({n_img} image(s) x {len(methods)} method(s)): "
          f"{summary.done} done now, {summary.skipped} done before (skipped), {len(failed)} failed; "
          f"manifest {summary.manifest}")
    if failed:
        print(f"salience: {len(failed)} of {len(rows)} job(s) failed "
              f"({len({r['rel'] for r in failed})} image(s)); re-run the command to retry them", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
