"""``salience audit``: how faithful and how model-dependent are a classifier's explanations of an image?

Per method: the deletion and insertion AUCs (Petsiuk et al. 2018) and the similarity of the map after
randomising the model's parameters (Adebayo et al. 2018), printed and written as figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..audit.quality import QUALITY_METRICS
from ..errors import InputError
from ..io import atomic_write_bytes, encode_png, load_image
from ..registry import EXPLANATION, method_names
from ._common import (
    add_model_arguments,
    emit,
    explanation_methods,
    for_each_input,
    load_model_for,
    output_stem,
    parse_target,
    refuse_overwrite,
)

EXAMPLES = """\
examples:
  salience audit cat.jpg                                       # gradcam, guided-backprop, gradient
  salience audit cat.jpg --method gradcam,ig --steps 50 --perturbation blur --out audit/
  salience audit *.jpg --randomize both --stages 6 --overwrite
  salience audit cat.jpg --metrics all --randomize none         # the explanation-quality scores too

what it computes (per image, for the target class, top-1 by default):
  deletion AUC    probability of the class as the most salient pixels are removed (lower = better)
  insertion AUC   probability as they are put back into a blurred image (higher = better)
  sanity          Spearman rank correlation (of |map|) between the map of the trained model and of a
                  copy whose layers were re-initialised from the top down; a map that stays similar
                  (near 1) does not depend on what the model learned (Adebayo et al. 2018)

--metrics (explanation quality, docs/audit.md; none by default): a comma list of
  faithfulness-correlation (Bhatt et al. 2020, higher = better), monotonicity (Arya et al. 2019, 1 = yes),
  monotonicity-correlation (Nguyen & Martinez 2020, higher), max-sensitivity, avg-sensitivity (Yeh et al.
  2019, lower), sparseness (Gini, Chalasani et al. 2020, higher), complexity (entropy, Bhatt et al. 2020,
  lower), region-perturbation (AOPC, Samek et al. 2017, higher), or all.  Removed pixels are set to 0
  (the mean); --steps sets the pixel groups of the monotonicity metrics, --seed the random subsets/noise.

--perturbation: petsiuk (default: deletion fills with 0 = the mean, insertion starts from a blur, as in
  Petsiuk et al. 2018), constant, blur, or road (noisy linear imputation, Rong et al. 2022; slow).

outputs (in --out, default salience-out/), for an input cat.jpg:
  cat_curves.png                 deletion and insertion curves of every method
  cat_sanity_cascading.png       maps per randomisation stage, similarity per stage (and _independent)
  cat_audit.json                 every number printed (curves, AUCs, similarity per stage and metric,
                                 the --metrics scores under "quality")
  cat_quality.csv                with --metrics: image, method, metric, value (one row each)
Existing files are kept unless --overwrite; writes are atomic (temporary file, then rename).
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage, 3 stopped: outputs
  cannot be written (full disk, read-only folder, --out is a file), 130 interrupted, 143 terminated.
"""

DEFAULT_METHODS = "gradcam,guided-backprop,gradient"


def add_parser(sub):
    p = sub.add_parser(
        "audit",
        help="faithfulness (deletion/insertion) and sanity checks (randomisation) of explanations",
        description="Audit explanations of a PyTorch classifier on image files: deletion and insertion "
                    "AUCs and model-parameter randomisation checks. Methods: "
                    f"{', '.join(method_names(EXPLANATION))}.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p, default_method=DEFAULT_METHODS)
    p.add_argument("--steps", type=int, default=50, metavar="N",
                   help="steps of the deletion/insertion curves (default 50)")
    p.add_argument("--perturbation", default="petsiuk", choices=("petsiuk", "constant", "blur", "road"),
                   help="how removed pixels are filled (default petsiuk: constant 0 for deletion, blur for "
                        "insertion)")
    p.add_argument("--randomize", default="cascading", choices=("cascading", "independent", "both", "none"),
                   help="model-parameter randomisation (default cascading)")
    p.add_argument("--stages", type=int, default=None, metavar="N",
                   help="randomise only the top N layers (default: all)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="perturbed images per forward pass (default 32)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the re-initialisation, ROAD noise, random subsets and sensitivity noise")
    p.add_argument("--metrics", default="", metavar="LIST",
                   help="explanation-quality metrics, comma-separated, or all: " + ", ".join(QUALITY_METRICS)
                        + " (default: none)")
    p.add_argument("--runs", type=int, default=100, metavar="N",
                   help="random subsets of faithfulness-correlation (default 100)")
    p.add_argument("--samples", type=int, default=10, metavar="N",
                   help="noise samples of max-/avg-sensitivity (default 10)")
    p.add_argument("--radius", type=float, default=0.2, metavar="R",
                   help="noise bound of max-/avg-sensitivity in the model's input space (default 0.2)")
    p.add_argument("--patch", type=int, default=16, metavar="N",
                   help="region side of region-perturbation in pixels (default 16)")
    p.add_argument("--regions", type=int, default=100, metavar="N",
                   help="regions perturbed by region-perturbation (default 100, at most all)")
    return p


def _check_args(args) -> None:
    for name in ("steps", "batch_size", "runs", "samples", "patch", "regions"):
        v = getattr(args, name)
        if v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v}")
    if args.stages is not None and args.stages < 1:
        raise InputError(f"--stages must be an integer >= 1, got {args.stages}")
    if not args.radius > 0 or args.radius != args.radius or args.radius == float("inf"):
        raise InputError(f"--radius must be a finite number > 0, got {args.radius}")


def quality_metrics(spec: str) -> list[str]:
    """The --metrics names (empty: none), checked before any image is read."""
    if not spec.strip():
        return []
    names = [m.strip().lower().replace("_", "-") for m in spec.split(",") if m.strip()]
    if names == ["all"]:
        return list(QUALITY_METRICS)
    for m in names:
        if m not in QUALITY_METRICS:
            raise InputError(f"unknown --metrics name {m!r}; choose from {', '.join(QUALITY_METRICS)} or all")
    return list(dict.fromkeys(names))


def _outputs(out: Path, stem: str, modes: list[str], quality: bool = False) -> list[Path]:
    return [out / f"{stem}_curves.png", out / f"{stem}_audit.json"] + [
        out / f"{stem}_sanity_{m}.png" for m in modes] + ([out / f"{stem}_quality.csv"] if quality else [])


def run(args) -> int:
    methods = explanation_methods(args.method)
    _check_args(args)
    metrics = quality_metrics(args.metrics)
    modes = {"both": ["cascading", "independent"], "none": []}.get(args.randomize, [args.randomize])
    if args.perturbation == "petsiuk":
        pert = {"deletion": "constant", "insertion": "blur"}
    else:
        pert = {"deletion": args.perturbation, "insertion": args.perturbation}

    from ..attribution import explain
    from ..audit import faithfulness as fa

    lm = load_model_for(args)
    target = parse_target(lm, args.target)  # a bad class name fails once, before any image is read
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        files = _outputs(out, stem, modes, bool(metrics))
        refuse_overwrite(files, args.overwrite)
        img = load_image(item, max_pixels=args.max_pixels or None)
        x = lm.preprocess(img, crop=False).to(args.device)
        idx = None
        maps = {}
        for name in methods:
            e = explain(lm, x, method=name, target=idx if idx is not None else target, layer=args.layer)
            if idx is None and e.targets is not None:
                idx = e.targets.detach().cpu().long()
            maps[name] = e
        tgt = int(idx[0]) if idx is not None else None
        cls = lm.class_names[tgt] if tgt is not None and 0 <= tgt < len(lm.class_names) else str(tgt)
        curves: dict[str, dict[str, Any]] = {k: {} for k in ("deletion", "insertion")}
        for name, e in maps.items():
            for kind, fn in (("deletion", fa.deletion_curve), ("insertion", fa.insertion_curve)):
                curves[kind][name] = fn(lm, x, e.maps, target=idx, steps=args.steps, perturbation=pert[kind],
                                        batch_size=args.batch_size, seed=args.seed)
        sanity = {mode: fa.sanity_check(lm, x, methods, target=idx, mode=mode, stages=args.stages,
                                        seed=args.seed, layer=args.layer) for mode in modes}
        quality = _quality(lm, x, methods, metrics, idx, args)
        emit("\n".join(_summary_lines(item, lm.name, cls, tgt, methods, curves, sanity, quality, pert, args.steps)))
        mine = [atomic_write_bytes(files[0], encode_png(fa.curves_figure(
            curves["deletion"], curves["insertion"], title=f"{Path(item).name}: {cls}")), overwrite=args.overwrite)]
        for mode, r in sanity.items():
            fig = fa.sanity_figure(r, image=_model_view(img, x))
            mine.append(atomic_write_bytes(out / f"{stem}_sanity_{mode}.png", encode_png(fig),
                                           overwrite=args.overwrite))
        report = _report(item, lm.name, tgt, cls, curves, sanity, quality, pert, args)
        mine.append(atomic_write_bytes(files[1], json.dumps(report, indent=1).encode(), overwrite=args.overwrite))
        if quality:
            rows = ["image,method,metric,value"] + [f"{_csv(item)},{m},{k},{float(v.values[0])!r}"
                                                    for m, res in quality.items() for k, v in res.items()]
            mine.append(atomic_write_bytes(files[-1], ("\n".join(rows) + "\n").encode(), overwrite=args.overwrite))
        written.extend(mine)
        emit(f"{item}: wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience audit")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code


def _summary_lines(item: str, model: str, cls: str, tgt: Any, methods: list[str], curves: dict[str, dict[str, Any]],
                   sanity: dict[str, Any], quality: dict[str, Any], pert: dict[str, str], steps: int) -> list[str]:
    """The lines ``salience audit`` prints for one image: AUCs, randomisation similarities, quality scores."""
    p0 = next(iter(curves["deletion"].values())).scores[0, 0]
    lines = [f"{item}: {model} explains {cls} (class {tgt}, p = {p0:.4f}); "
             f"{steps} steps, deletion: {pert['deletion']}, insertion: {pert['insertion']}"]
    for name in methods:
        d, i = curves["deletion"][name].auc[0], curves["insertion"][name].auc[0]
        line = f"  {name:<22s} deletion AUC {d:.4f}  insertion AUC {i:.4f}"
        for mode, r in sanity.items():
            f = r.final()[name]
            line += (f"  | {mode} ({len(r.stages) - 1} layers) spearman|.| {f['spearman_abs']:.3f} "
                     f"spearman {f['spearman']:.3f} ssim {f['ssim']:.3f} hog {f['hog']:.3f}")
        lines.append(line)
    for mode, r in sanity.items():
        lines.append(f"  {mode} randomisation, Spearman rank correlation of |map| with the original:")
        lines += ["    " + row for row in r.table(metric="spearman_abs").splitlines()]
        lines += [f"    note: {n}" for n in r.notes]
    for name, res in quality.items():
        lines.append(f"  quality {name:<14s} " + "  ".join(f"{k} {v.values[0]:.4f}" for k, v in res.items()))
    return lines


def _report(item: str, model: str, tgt: Any, cls: str, curves: dict[str, dict[str, Any]], sanity: dict[str, Any],
            quality: dict[str, Any], pert: dict[str, str], args) -> dict[str, Any]:
    """The ``*_audit.json`` of one image."""
    report = {
        "image": item, "model": model, "target": tgt, "class": cls, "steps": args.steps,
        "perturbation": pert, "seed": args.seed,
        "curves": {kind: {m: {"auc": float(c.auc[0]), "fractions": c.fractions.tolist(),
                              "scores": c.scores[0].astype(float).tolist()} for m, c in cs.items()}
                   for kind, cs in curves.items()},
        "sanity": {mode: {"stages": r.stages, "notes": r.notes,
                          "similarity": {m: {k: v[:, 0].astype(float).tolist() for k, v in d.items()}
                                         for m, d in r.similarity.items()}}
                   for mode, r in sanity.items()},
    }
    if quality:
        report["quality"] = {m: {k: float(v.values[0]) for k, v in res.items()} for m, res in quality.items()}
        report["quality_params"] = {k: v.params for k, v in next(iter(quality.values())).items()}
    return report


def _quality(lm, x, methods: list[str], metrics: list[str], idx, args) -> dict[str, Any]:
    """The --metrics scores of every method for one image (empty without --metrics)."""
    if not metrics:
        return {}
    from ..audit.quality import quality_report

    steps = min(args.steps, int(x.shape[2]) * int(x.shape[3]))
    cells = -(-int(x.shape[2]) // args.patch) * -(-int(x.shape[3]) // args.patch)
    options = {"faithfulness-correlation": {"runs": args.runs},
               "monotonicity": {"steps": steps}, "monotonicity-correlation": {"steps": max(2, steps)},
               "region-perturbation": {"patch": args.patch, "regions": min(args.regions, cells)},
               "max-sensitivity": {"samples": args.samples, "radius": args.radius}}
    return quality_report(lm, x, methods, metrics, target=idx, layer=args.layer, seed=args.seed,
                          batch_size=args.batch_size, options=options)


def _csv(text: str) -> str:
    """A CSV field: quoted when it holds a comma, a quote or a line break."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def _model_view(image, x):
    """The photo at the model input's size, for the figures."""
    import cv2

    h, w = int(x.shape[2]), int(x.shape[3])
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
