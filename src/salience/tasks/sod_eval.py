"""Scoring saliency methods (or precomputed maps) against a folder of ground-truth object masks.

A *mask folder* holds the images in one sub-folder and the binary masks in another, matched by file stem
(``0001.jpg`` <-> ``0001.png``).  The sub-folders are found by name: the images in the first of
``images``, ``image``, ``imgs``, ``img``, ``stimuli`` or a folder whose name ends in ``-Image`` / ``_Image``
(DUTS: ``DUTS-TE-Image``); the masks in the first of ``masks``, ``mask``, ``gt``, ``GT``,
``ground_truth_mask``, ``groundtruth`` or a folder ending in ``-Mask`` / ``_Mask``.  Masks are read as 8-bit
grey levels, foreground ``> 128`` (PySODMetrics' convention).  A map whose size differs from its mask is
resized to the mask (bilinear).

``salience evaluate --dataset masks:DIR`` is :func:`run_cli`.

>>> import numpy as np, tempfile, pathlib
>>> from PIL import Image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "images").mkdir(); (root / "masks").mkdir()
>>> img = np.zeros((40, 50, 3), np.uint8); img[10:30, 15:35] = 255
>>> Image.fromarray(img).save(root / "images" / "a.png"); Image.fromarray(img[..., 0]).save(root / "masks" / "a.png")
>>> res = evaluate_masks(root, "frequency-tuned")
>>> round(res.scores["frequency-tuned"].scores["max_f"], 3)
1.0
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError
from ..metrics.objects import SOD_METRICS, ObjectScoreAccumulator, ObjectScores

__all__ = ["MaskItem", "MaskDataset", "load_mask_folder", "evaluate_masks", "MaskEvaluation", "run_cli"]

_IMAGE_DIRS = ("images", "image", "imgs", "img", "stimuli")
_MASK_DIRS = ("masks", "mask", "gt", "ground_truth_mask", "groundtruth", "ground_truth")
_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: Scores that are means over images (a confidence interval applies); the others are read off the mean
#: curve over the images (one threshold for the whole data set).
_PER_IMAGE = ("mae", "adp_f", "wf", "sm", "adp_e", "adp_iou", "adp_dice")


@dataclass(frozen=True)
class MaskItem:
    name: str
    image_path: Path
    mask_path: Path


@dataclass
class MaskDataset:
    """Images with ground-truth masks, sorted by name; ``unmatched`` lists images without a mask."""

    root: Path
    items: list[MaskItem]
    unmatched: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        return [it.name for it in self.items]


def _find_dir(root: Path, names: Sequence[str], suffix: str) -> Path | None:
    subs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    for n in names:
        if n in subs:
            return subs[n]
    for low, p in subs.items():
        if low.endswith(f"-{suffix}") or low.endswith(f"_{suffix}"):
            return p
    return None


def _files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in _EXTS and not p.name.startswith("."):
            if p.stem in out:
                raise DataError(f"'{folder}' has two files with the stem {p.stem!r} ({out[p.stem].name}, {p.name}); "
                                "keep one")
            out[p.stem] = p
    return out


def load_mask_folder(path: str | os.PathLike) -> MaskDataset:
    """Read a mask folder (see the module docstring)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"mask data set '{root}' is not a folder; give a folder with images/ and masks/")
    img_dir = _find_dir(root, _IMAGE_DIRS, "image")
    mask_dir = _find_dir(root, _MASK_DIRS, "mask")
    if img_dir is None or mask_dir is None:
        missing = "an images/ folder" if img_dir is None else "a masks/ (or gt/) folder"
        raise DataError(f"'{root}' has no {missing}; a mask data set holds images/ and masks/ matched by file name")
    images, masks = _files(img_dir), _files(mask_dir)
    items = [MaskItem(n, images[n], masks[n]) for n in sorted(images) if n in masks]
    if not items:
        raise DataError(f"no image of '{img_dir}' has a mask of the same name in '{mask_dir}'")
    return MaskDataset(root, items, unmatched=[n for n in sorted(images) if n not in masks])


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im).astype(np.float64) / 257.0  # 16-bit -> 8-bit scale
            else:
                arr = np.asarray(im.convert("L"), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read mask '{path}': {exc}") from None
    return arr > 128


@dataclass
class MaskEvaluation:
    """Per method: the data-set scores (:class:`~salience.metrics.ObjectScores`) and per-image rows."""

    dataset: str
    n_images: int
    scores: dict[str, ObjectScores]
    rows: list[dict[str, Any]]
    missing: dict[str, list[str]]
    elapsed: float
    metrics: tuple[str, ...] = SOD_METRICS
    resumed: int = 0  #: pairs taken from the journal of an interrupted run

    def table(self, *, markdown: bool = False) -> str:
        """Method x metric table: means over images with the 95% CI half-width where it applies."""
        from ..evaluation import ci95

        head = ["method"] + list(self.metrics)
        lines = []
        for method, res in self.scores.items():
            cells = [method]
            for k in self.metrics:
                v = res.scores[k]
                if k in _PER_IMAGE:
                    _, lo, hi = ci95([r[k] for r in res.per_image])
                    half = (hi - lo) / 2 if math.isfinite(lo) else math.nan
                    cells.append(f"{v:.4f}" + (f" ± {half:.4f}" if math.isfinite(half) else ""))
                else:
                    cells.append(f"{v:.4f}")
            lines.append(cells)
        if markdown:
            out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(c) + " |" for c in lines]
            return "\n".join(out)
        widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
        fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))
        return "\n".join([fmt(head)] + [fmt(r) for r in lines])


def _resolve_methods(spec: str | Sequence[str]) -> list[str]:
    from ..registry import BOTTOM_UP, method_list, method_names

    if isinstance(spec, str) and spec.strip().lower() == "bottom-up":
        return [m for m in method_names(BOTTOM_UP)]
    if isinstance(spec, str) and not spec.strip():
        return []
    return method_list(spec, BOTTOM_UP, wrong_kind_hint="; score explanations with salience.segment / the "
                                                         "localisation functions")


class _Journal:
    """The per-pair scores of a run, one JSON line per (image, method), so an interrupted run can resume:
    the append-only journal of the batch runs too (:class:`salience.journal.Journal`: locked, a cut-off
    last line dropped) on the file ``path``.

    The first line records what changes every map (blur, centre bias); a resume with other values is
    refused.  Each later line holds a pair's per-image row and its threshold curves (JSON floats are
    ``repr``, so they are read back bit for bit).
    """

    MAGIC = "salience-mask-journal"

    def __init__(self, path: Path | None, config: dict[str, Any], resume: bool) -> None:
        from ..journal import Journal, read_lines

        self.path = path
        self.done: dict[tuple[str, str], tuple[dict[str, float], dict[str, np.ndarray]]] = {}
        self._journal: Journal | None = None
        if path is None:
            return
        lines = read_lines(path) if resume else []
        if lines:
            self._check(path, lines, config)
        elif path.exists():
            path.unlink()  # a fresh run (or an empty journal): start the file again
        self._journal = Journal(path)
        if not lines:
            self._journal.append([{self.MAGIC: 1, "config": config}])

    def _check(self, path: Path, lines: list[dict[str, Any]], config: dict[str, Any]) -> None:
        if lines[0].get(self.MAGIC) != 1:
            raise DataError(f"'{path}' is not the journal of a salience mask evaluation; remove it or write "
                            "to another --out")
        if lines[0].get("config") != config:
            raise DataError(f"'{path}' was written with {lines[0].get('config')}; this run asks for {config}: "
                            "resume with the same options, or write to another --out")
        try:
            for rec in lines[1:]:
                self.done[(rec["image"], rec["method"])] = (
                    {k: float(v) for k, v in rec["row"].items()},
                    {k: np.asarray(v, dtype=np.float64) for k, v in rec["curves"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DataError(f"'{path}' is not the journal of a salience mask evaluation; remove it or write "
                            "to another --out") from None

    def write(self, name: str, label: str, row: dict[str, float], curves: dict[str, np.ndarray]) -> None:
        if self._journal is not None:
            self._journal.append([{"image": name, "method": label, "row": row,
                                   "curves": {k: [float(x) for x in v] for k, v in curves.items()}}])

    def close(self, *, finished: bool) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            if finished and self.path is not None:
                self.path.unlink(missing_ok=True)


def evaluate_masks(dataset: MaskDataset | str | os.PathLike, methods: str | Sequence[str] = "frequency-tuned", *,
                   saliency_maps: Sequence[str | os.PathLike] = (), blur: float = 0.0, centre_bias: float = 0.0,
                   limit: int | None = None, progress: bool = False, jobs: int = 1,
                   journal: str | os.PathLike | None = None, resume: bool = False) -> MaskEvaluation:
    """Score bottom-up methods and/or folders of precomputed maps against the masks of a mask folder.

    Returns a :class:`MaskEvaluation`; its ``scores[label].scores`` hold :data:`~salience.metrics.SOD_METRICS`
    (max / mean F, E, IoU and Dice on the mean curve over images; the rest means over images).

    ``jobs`` images are scored at once (threads; the maps and scores are added in image order, so any
    ``jobs`` gives the same numbers).  ``journal``: a file that keeps every scored pair as it is done (a
    JSON line with its row and curves); with ``resume``, the pairs already in it are not recomputed, and
    the data-set scores equal those of an uninterrupted run.  The journal is removed when the run ends.
    """
    from ..datasets import find_saliency_maps

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if resume and journal is None:
        raise InputError("resume needs the journal of the earlier run (--out)")
    ds = dataset if isinstance(dataset, MaskDataset) else load_mask_folder(dataset)
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    items = ds.items[:limit] if limit else ds.items
    names = [it.name for it in items]
    sources: list[tuple[str, Any]] = [(m, None) for m in _resolve_methods(methods)]
    for folder in saliency_maps:
        found, _missing = find_saliency_maps(folder, names)
        sources.append((Path(folder).name or str(folder), found))
    if not sources:
        raise InputError("nothing to score: give --method and/or --saliency-maps")
    kw: dict[str, Any] = {}
    if blur:
        kw["blur"] = blur
    if centre_bias:
        kw["centre_bias"] = centre_bias
    jr = _Journal(None if journal is None else Path(journal), {"blur": float(blur), "centre_bias": float(centre_bias)},
                  resume)
    t0 = time.perf_counter()
    scored, missing = _score_items(items, sources, kw, jr, jobs, progress)
    scores, rows = _aggregate(items, sources, scored)
    return MaskEvaluation(dataset=str(ds.root), n_images=len(items), scores=scores, rows=rows, missing=missing,
                          elapsed=time.perf_counter() - t0, resumed=len(jr.done))


def _score_item(it: MaskItem, sources: list[tuple[str, Any]], kw: dict[str, Any], done: Any,
                scorer: ObjectScoreAccumulator) -> list[tuple[str, Any]]:
    """``(label, (row, curves))`` for every source of one image not in ``done``; ``None`` where a folder of
    maps has none for it."""
    import cv2

    from ..api import saliency_map
    from ..datasets import load_saliency_map

    todo = [(label, found) for label, found in sources if (it.name, label) not in done]
    if not todo:
        return []
    gt = _read_mask(it.mask_path)
    img = None
    out: list[tuple[str, Any]] = []
    for label, found in todo:
        if found is None:
            if img is None:
                from ..io import load_image

                img = load_image(it.image_path)
            sal = np.asarray(saliency_map(img, label, **kw), dtype=np.float64)
            if sal.shape != gt.shape:
                sal = cv2.resize(sal, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        elif it.name not in found:
            out.append((label, None))
            continue
        else:
            sal = load_saliency_map(found[it.name], shape=gt.shape)
        out.append((label, scorer.score(sal, gt)))
    return out


def _score_items(items: list[MaskItem], sources: list[tuple[str, Any]], kw: dict[str, Any], jr: _Journal,
                 jobs: int, progress: bool) -> tuple[dict[tuple[str, str], Any], dict[str, list[str]]]:
    """Every pair scored (the journal's and the new ones, the new ones journalled as each image ends) and,
    per map folder, the images it has no map for."""
    scorer = ObjectScoreAccumulator()
    scored: dict[tuple[str, str], Any] = dict(jr.done)
    missing: dict[str, list[str]] = {}
    bar = None
    if progress and len(items) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="salience evaluate", unit="image", file=sys.stderr, dynamic_ncols=True)
    pool = None
    finished = False
    try:
        if jobs > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="salience-masks")
        work = partial(_score_item, sources=sources, kw=kw, done=jr.done, scorer=scorer)
        for it, pairs in zip(items, map(work, items) if pool is None else pool.map(work, items)):
            for label, res in pairs:
                if res is None:
                    missing.setdefault(label, []).append(it.name)
                    continue
                scored[(it.name, label)] = res
                jr.write(it.name, label, *res)
            if bar is not None:
                bar.update(1)
        finished = True
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
        jr.close(finished=finished)
    return scored, missing


def _aggregate(items: list[MaskItem], sources: list[tuple[str, Any]],
               scored: dict[tuple[str, str], Any]) -> tuple[dict[str, ObjectScores], list[dict[str, Any]]]:
    """The data-set scores and per-image rows, the pairs added in image order (whatever finished first or
    came from the journal: the same sums)."""
    accs = {label: ObjectScoreAccumulator() for label, _ in sources}
    row_names: dict[str, list[str]] = {label: [] for label, _ in sources}
    for it in items:
        for label, _ in sources:
            if (it.name, label) in scored:
                accs[label].add_scored(*scored[(it.name, label)])
                row_names[label].append(it.name)
    scores: dict[str, ObjectScores] = {}
    rows: list[dict[str, Any]] = []
    for label, _ in sources:
        if not len(accs[label]):
            continue
        res = accs[label].result()
        scores[label] = res
        for name, r in zip(row_names[label], res.per_image):
            rows.append({"image": name, "method": label, **r})
    return scores, rows


def _rows_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "method", *SOD_METRICS], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue().encode()


def run_cli(args: Any) -> int:
    """``salience evaluate --dataset masks:DIR``: the salient-object scores of methods and map folders."""
    from ..io import atomic_write_bytes

    spec = str(args.dataset)[len("masks:"):]
    root = spec or args.data_dir
    if not root:
        raise InputError("--dataset masks:DIR needs the folder: masks:path/to/set (holding images/ and masks/)")
    if args.metrics not in ("all", None):
        wanted = [m.strip() for m in str(args.metrics).split(",") if m.strip()]
        bad = [m for m in wanted if m not in SOD_METRICS]
        if bad:
            raise InputError(f"unknown metric(s) {', '.join(bad)} for a mask data set; choose from {', '.join(SOD_METRICS)}")
    else:
        wanted = list(SOD_METRICS)
    if args.resume and args.overwrite:
        raise InputError("--resume and --overwrite contradict each other; pass one")
    if args.resume and not args.out:
        raise InputError("--resume needs the --out of the interrupted run (its journal is OUT.partial.jsonl)")
    if args.out and Path(args.out).suffix.lower() not in ("", ".csv"):
        raise InputError("--out for a mask data set is a .csv file")
    journal = Path(str(args.out) + ".partial.jsonl") if args.out else None
    if args.resume and journal is not None and not journal.exists():
        hint = ("it finished (its rows are in the file): pass --overwrite to score again, or write to another --out"
                if Path(args.out).exists() else "start it without --resume")
        raise InputError(f"nothing to resume: {journal} is not there; {hint}")
    if args.out and Path(args.out).exists() and not (args.overwrite or args.resume):
        raise InputError(f"{args.out} exists already; pass --overwrite to replace it")
    method = args.method if args.method is not None else ("" if args.saliency_maps else "frequency-tuned")
    ds = load_mask_folder(root)
    res = evaluate_masks(ds, method, saliency_maps=args.saliency_maps, blur=args.blur, centre_bias=args.centre_bias,
                         limit=args.limit, progress=not args.no_progress, jobs=args.jobs, journal=journal,
                         resume=args.resume)
    res.metrics = tuple(wanted)
    print(f"{res.dataset}: {res.n_images} image(s) with masks; mean ± half-width of the 95% t interval over "
          "images (max/mean F, E, IoU, Dice: of the mean curve over images)")
    print(res.table(markdown=args.markdown))
    if args.out:
        atomic_write_bytes(args.out, _rows_csv(res.rows), overwrite=args.overwrite)
    print(f"{len(res.rows)} (image, method) pair(s) scored"
          + (f" ({res.resumed} taken from the interrupted run)" if res.resumed else "") + f"; {res.elapsed:.1f} s"
          + (f"; rows in {args.out}" if args.out else ""), file=sys.stderr)
    status = 0
    if ds.unmatched:
        print(f"salience: {len(ds.unmatched)} image(s) have no mask and were skipped (first: "
              f"{', '.join(ds.unmatched[:5])})", file=sys.stderr)
    for label, names in res.missing.items():
        status = 1
        print(f"salience: {label}: {len(names)} of {res.n_images} image(s) have no map (first: "
              f"{', '.join(names[:5])}); they are not in its row of the table", file=sys.stderr)
    return status
