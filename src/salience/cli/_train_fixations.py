"""``salience train-fixations``: train the learned fixation model's readout on eye-tracking data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..errors import InputError, OutputExistsError

EPILOG = """\
The frozen MobileNetV2 features are computed once and cached (--cache); the readout is then fitted by
maximum likelihood for --epochs passes over the training images, printing the validation curve. The
images are split by name (a seeded hash, --split-seed; OSIE: 500 train / 100 validation / 100 test); the
test images are scored once, at the end. Writes the weights (--out) and a JSON report of the run beside
them (<out>.json: split, hyper-parameters, git commit, validation curve, test scores).

examples:
  salience train-fixations --dataset osie --out weights.pt --seed 0
  salience train-fixations --dataset csv:fixations.csv --out my-lab.pt
  salience map photo.jpg --method deepgaze-mnv2        # the shipped weights
"""


def add_parser(sub):
    import argparse

    p = sub.add_parser(
        "train-fixations", help="train the learned fixation model (deepgaze-mnv2) on eye-tracking data",
        description="Train the readout of the DeepGaze-style fixation model on a fixation data set.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, metavar="osie|csv:PATH|maps:PATH", help="the fixation data set")
    p.add_argument("--data-dir", metavar="DIR", help="where the data set is (default: the shared data folder)")
    p.add_argument("--out", "-o", default="fixation-weights.pt", metavar="FILE",
                   help="weights file to write (default fixation-weights.pt); the report goes to FILE.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batch order (default 0)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split (default 0)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    p.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay (default 1e-4)")
    p.add_argument("--flip", action="store_true",
                   help="also train on the mirror image of each training image (doubles the feature time)")
    p.add_argument("--layers", default=None, metavar="I,J,...",
                   help="MobileNetV2 feature blocks to read out (default 6,13,16,17)")
    p.add_argument("--long-side", type=int, default=None, metavar="PX",
                   help="the backbone sees each image with its longer side scaled to PX (default 384)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="feature cache folder (default $SALIENCE_CACHE or ~/.cache/salience)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N images of the data set (name order), e.g. for a quick try")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch")
    p.add_argument("--device", default="cpu", help="where the frozen features are computed: cpu or cuda")
    return p


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[3]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                             timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run(args) -> int:
    from ..datasets import load_dataset
    from ..io import atomic_write_bytes

    out = Path(args.out).expanduser()
    report = out.with_name(out.name + ".json")
    if not args.overwrite:
        for p in (out, report):
            if p.exists():
                raise OutputExistsError(f"'{p}' exists; pass --overwrite to replace it or choose another --out")
    if args.limit is not None and args.limit < 3:
        raise InputError(f"--limit must be at least 3 (train, validation and test images), got {args.limit}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    config: dict = {}
    if args.layers:
        try:
            config["layers"] = [int(s) for s in args.layers.split(",") if s.strip()]
        except ValueError:
            raise InputError(f"--layers must be comma-separated block numbers, got {args.layers!r}") from None
    if args.long_side is not None:
        if args.long_side < 32:
            raise InputError(f"--long-side must be at least 32 pixels, got {args.long_side}")
        config["input_long_side"] = args.long_side
    from ..errors import MissingDependencyError

    try:
        import torch

        from ..gaze.model import (
            DEFAULT_CONFIG,
            LAYER_CHANNELS,
            FixationModel,
            Readout,
            resolve_device,
        )
        from ..gaze.training import osie_split, split_names, train_readout
    except ImportError as exc:
        if isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(f"train-fixations needs PyTorch: pip install 'salience[torch]' ({exc})") from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir)
    if args.limit is not None:
        dataset = dataset.subset(args.limit)
    split = split_names(dataset.names, split_seed=args.split_seed)
    if dataset.name == "osie" and args.split_seed == 0 and args.limit is None:
        fixed = osie_split()
        if fixed != split:  # the file in the repository is the documented split: they must agree
            raise InputError("the OSIE split computed from the rule differs from salience/gaze/osie_split.json")
    cfg = {**DEFAULT_CONFIG, **config}
    from .. import load_model

    dev = resolve_device(args.device)
    backbone = load_model(str(cfg["backbone"])).model.features
    model = FixationModel(backbone, Readout([LAYER_CHANNELS[i] for i in cfg["layers"] if i in LAYER_CHANNELS]),
                          cfg).to(dev)
    result = train_readout(dataset, seed=args.seed, split=split, split_seed=args.split_seed, epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                           flip=args.flip, config=config or None, cache_dir=args.cache, model=model)
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = result.save(out)
    info = result.report()
    info["weights"] = {"file": str(out), "sha256": digest}
    info["git_commit"] = _git_commit()
    info["command"] = " ".join(["salience", *sys.argv[1:]]) if sys.argv and "salience" in sys.argv[0] else None
    info["torch"] = torch.__version__
    atomic_write_bytes(report, (json.dumps(info, indent=1) + "\n").encode(), overwrite=True)
    print(f"weights: {out} (sha256 {digest})")
    print(f"report: {report}")
    for k, v in result.scores.items():
        if isinstance(v, float):
            print(f"{k}: {v:.4f}")
    for k, v in (result.scores.get("test_metrics") or {}).items():
        print(f"test {k}: {v['mean']:.4f} [{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}] (n={v['n']})")
    return 0
