"""Auditing a model over a whole data set: where its explanations put the evidence, per predicted class.

One map at a time cannot show what a model relies on; a data set can.  :func:`audit_dataset` runs (or
resumes) a :mod:`salience.batch` run per method into ``OUT/maps/<method>/``, so it scales and resumes the
way batch runs do, then analyses the maps that run wrote, with the class the model predicted for each
image (the batch manifest's ``top_class``):

per image
    ``com_x``, ``com_y``: the centre of mass of the evidence in ``[0, 1]`` fractions of the width and
    height (the manifest's, computed by :func:`salience.batch.work.map_stats` from the float map);
    ``com_offset``: its distance from the image centre (in those fractions); ``border_share``: the share of
    the evidence within ``border`` (a fraction of the width / height) of an image edge, beside
    ``border_area``, the share a uniform map would have there (0.36 for the default 0.1).  *Evidence* is
    the map minus its minimum, scaled to ``[0, 1]``: what the batch run's 8-bit PNG holds (its ``.npy``
    float map is read instead when the run wrote one, ``format="npy"`` or ``"both"``).
per predicted class
    the mean explanation map (the images' evidence maps resampled to a common grid and averaged), the
    spread of the centres of mass (their standard deviations along x and y, and ``com_spread``, the root of
    the summed variances), the mean border share, and example images at the extremes (most and least
    evidence near the border; centre of mass farthest from the class's mean).
Spectral relevance analysis (SpRAy)
    per class with at least ``min_spray`` images, the down-sampled maps clustered spectrally by
    :func:`salience.audit.spray.spray` (Lapuschkin et al., *Unmasking Clever Hans predictors and assessing
    what machines really learn*, Nature Communications 10, 1096, 2019): the eigenvalue / eigengap spectrum,
    each cluster's size and mean map, and its members, so a shortcut shows up as a cluster of its own.
groups (``groups``: a CSV of ``image,group``)
    every score averaged per group, and per score the worst group.
localisation (``masks``: ``masks:DIR``, or ``boxes``: a CSV of ``image,x0,y0,x1,y1``)
    the pointing game (Zhang et al., ECCV 2016, 15-pixel tolerance), the energy-based pointing game (Wang
    et al., CVPR-W 2020; :mod:`salience.tasks.localisation`) and ``outside_share``, the share of the
    evidence outside the object (one minus the energy-based pointing game).
plausibility (``fixations``: a fixation data set, e.g. ``osie``)
    the explanation maps scored as fixation predictions with the fixation metrics by
    :func:`salience.evaluation.evaluate_dataset`, next to the learned fixation model (``deepgaze-mnv2``)
    and the centre bias, on the same images.

The numbers go to ``OUT/*.csv`` and ``OUT/*.parquet`` (:data:`TABLES`), the report to ``OUT/index.html``
(:mod:`salience.audit.report`: one self-contained file, images inline).  A second run into the same
folder computes no map again; only the (cheap) analysis is redone.

>>> import numpy as np
>>> e = np.zeros((10, 10)); e[0, :] = 1.0          # all the evidence on the top row
>>> border_share(e, 0.1), round(border_area((10, 10), 0.1), 2)
(1.0, 0.36)
"""

from __future__ import annotations

import csv
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import InputError, OutputError
from ..io import DEFAULT_MAX_PIXELS

__all__ = [
    "DatasetAudit",
    "audit_dataset",
    "border_share",
    "border_area",
    "read_groups",
    "read_boxes",
    "TABLES",
    "SCORE_DIRECTION",
    "BOTTOM_UP_CLASS",
    "spot",
    "is_candidate_shortcut",
    "SPOT_BOX",
]

#: the tables written as ``OUT/<name>.csv`` and ``OUT/<name>.parquet`` (those with no rows are not written)
TABLES = ("images", "classes", "clusters", "spectra", "groups", "worst_groups", "fixations")

#: per-image scores with a direction: +1 higher is better, -1 lower is better (the worst group is the
#: group whose mean is lowest, resp. highest); fixation metrics add theirs (``fix_kld``: -1, others +1)
SCORE_DIRECTION: dict[str, int] = {
    "pred_prob": +1, "border_share": -1, "pointing": +1, "energy_pointing": +1, "outside_share": -1,
}

#: the class of every image under a bottom-up method (no model, so no prediction)
BOTTOM_UP_CLASS = (-1, "(all images)")

#: side of the common grid the class and cluster mean maps are averaged on
MEAN_SIZE = 64
#: side of the down-sampled maps SpRAy clusters (and the report's member thumbnails)
SPRAY_SIZE = 32
#: side of the window in which :func:`spot` looks for a cluster's concentrated evidence (a fraction of the side)
SPOT_BOX = 0.25
_MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif", ".npy", ".jpg", ".jpeg", ".webp", ".pgm", ".pbm")
_FIXATION_BASELINES = ("deepgaze-mnv2", "centre-bias")
_DEFAULT_FIXATION_METRICS = ("auc_judd", "nss", "cc", "sim", "kld")


# ------------------------------------------------------------------------------------------------------
# the per-image quantities
# ------------------------------------------------------------------------------------------------------

def _band(shape: tuple[int, int], border: float) -> tuple[int, int]:
    h, w = shape
    by, bx = int(round(border * h)), int(round(border * w))
    return min(by, (h + 1) // 2), min(bx, (w + 1) // 2)


def border_area(shape: tuple[int, int], border: float = 0.1) -> float:
    """The share of an image of ``shape`` ``(H, W)`` that lies within ``border`` of an edge (rows and
    columns rounded to whole pixels): the border share a uniform map has."""
    h, w = shape
    by, bx = _band(shape, border)
    return 1.0 - max(0, h - 2 * by) * max(0, w - 2 * bx) / float(h * w)


def border_share(evidence: np.ndarray, border: float = 0.1) -> float:
    """The share of ``evidence`` (float ``(H, W)``, ``>= 0``) within ``border`` of an image edge: the rows
    in the top and bottom ``round(border * H)`` and the columns in the left and right
    ``round(border * W)``.  NaN for a map without evidence."""
    e = np.asarray(evidence, dtype=np.float64)
    total = float(e.sum())
    if not total > 0 or not math.isfinite(total):
        return float("nan")
    h, w = e.shape
    by, bx = _band((h, w), border)
    inner = float(e[by:h - by, bx:w - bx].sum()) if h - 2 * by > 0 and w - 2 * bx > 0 else 0.0
    return float(min(1.0, max(0.0, 1.0 - inner / total)))


def _evidence(levels_or_map: np.ndarray) -> np.ndarray:
    """Evidence in [0, 1] (float64): a uint8 PNG's levels / 255, or a float map minus its minimum over its
    range (non-finite values count as 0)."""
    m = np.asarray(levels_or_map)
    if m.dtype == np.uint8:
        return m.astype(np.float64) / 255.0
    m = np.nan_to_num(m.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _read_map(folder: Path, row: dict[str, Any]) -> np.ndarray:
    if row.get("npy"):
        return _evidence(np.load(folder / row["npy"], allow_pickle=False))
    from PIL import Image

    with Image.open(folder / row["png"]) as im:
        return _evidence(np.asarray(im.convert("L")))


def _shrink(e: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return cv2.resize(e.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------------------
# the side inputs: groups, boxes, masks
# ------------------------------------------------------------------------------------------------------

def _normalised(stack: np.ndarray) -> np.ndarray:
    """Each map of ``stack`` ``(n, h, w)`` divided by its sum (a map without evidence stays zero)."""
    a = np.asarray(stack, dtype=np.float64)
    tot = a.sum(axis=(1, 2), keepdims=True)
    return np.divide(a, tot, out=np.zeros_like(a), where=tot > 0)


def spot(cluster: np.ndarray, rest: np.ndarray, box: float = SPOT_BOX) -> dict[str, float]:
    """Where a cluster's evidence concentrates, and how much of the other images' evidence is there.

    ``cluster``, ``rest``: mean evidence maps ``(h, w)`` (each image's map normalised to sum 1 first) of
    a SpRAy cluster and of the class's other images.  The *spot* is the ``box`` x ``box`` window (a
    fraction of the side) that holds the most of ``cluster``'s evidence.  Returns ``spot_x``, ``spot_y``
    (the window's centre, fractions of the width / height), ``spot_share`` (the cluster's share in the
    window; a uniform map has ``box ** 2``) and ``rest_spot_share`` (the other images' share in the same
    window; NaN without other images).

    >>> c = np.zeros((32, 32)); c[:4, :4] = 1.0            # all of it top-left
    >>> r = np.ones((32, 32))
    >>> d = spot(c / c.sum(), r / r.sum())
    >>> d["spot_share"], d["rest_spot_share"], d["spot_x"], d["spot_y"]
    (1.0, 0.0625, 0.125, 0.125)
    """
    c = np.asarray(cluster, dtype=np.float64)
    window = _best_window(c, box)
    return {**_where(c, window), "rest_spot_share": _share(rest, window)}


def _best_window(c: np.ndarray, box: float) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the ``box`` x ``box`` window holding the most of ``c``."""
    h, w = c.shape
    bh, bw = max(1, round(box * h)), max(1, round(box * w))
    ii = np.pad(c, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # integral image: every window's sum at once
    win = ii[bh:, bw:] - ii[:-bh, bw:] - ii[bh:, :-bw] + ii[:-bh, :-bw]
    y, x = np.unravel_index(int(np.argmax(win)), win.shape)
    return int(y), int(x), bh, bw


def _share(a: Any, window: tuple[int, int, int, int]) -> float:
    """The share of ``a``'s sum inside ``window`` (NaN when ``a`` sums to zero)."""
    a = np.asarray(a, dtype=np.float64)
    y, x, bh, bw = window
    tot = float(a.sum())
    return float(a[y:y + bh, x:x + bw].sum()) / tot if tot > 0 else float("nan")


def _where(c: np.ndarray, window: tuple[int, int, int, int]) -> dict[str, float]:
    """``spot_x``, ``spot_y`` (the window's centre, fractions of the width / height) and ``spot_share``."""
    y, x, bh, bw = window
    h, w = c.shape
    return {"spot_x": (x + bw / 2) / w, "spot_y": (y + bh / 2) / h, "spot_share": _share(c, window)}


def _cluster_spots(unit: np.ndarray, labels: np.ndarray, n_clusters: int,
                   box: float = SPOT_BOX) -> list[dict[str, Any]]:
    """:func:`spot` of every cluster, its ``rest`` being the images of the clusters whose own spot lies
    elsewhere (centres at least half a window apart): a shortcut that SpRAy splits into several clusters on
    the same place is compared with the images that do not use that place, not with its own other half.
    ``same_spot``: the other clusters on the same place (space-separated)."""
    means = [unit[labels == k].mean(axis=0) for k in range(n_clusters)]
    windows = [_best_window(m, box) for m in means]
    first = [_where(m, win) for m, win in zip(means, windows)]
    out = []
    for k in range(n_clusters):
        near = [j for j in range(n_clusters) if j != k and math.hypot(first[j]["spot_x"] - first[k]["spot_x"],
                                                                   first[j]["spot_y"] - first[k]["spot_y"]) < box / 2]
        away = ~np.isin(labels, [k, *near])
        # NaN when every image of the class uses this place
        rest_share = _share(unit[away].mean(axis=0), windows[k]) if away.any() else float("nan")
        out.append({**first[k], "rest_spot_share": rest_share, "same_spot": " ".join(map(str, near))})
    return out


def is_candidate_shortcut(spot_share: float, rest_spot_share: float, box: float = SPOT_BOX) -> bool:
    """The report's rule for a cluster worth a look: its evidence sits in one place (at least three times a
    uniform map's share in its :func:`spot` window) that the class's other images use at most a quarter as
    much.  The numbers were set with the planted case of docs/audit.md in view (its stamp cluster: 26%
    against 2.6%; the control model's clusters at most 18% and at most 2.9 times the rest); the clusters
    table holds ``spot_share`` and ``rest_spot_share`` for a rule of one's own.

    >>> is_candidate_shortcut(0.26, 0.026), is_candidate_shortcut(0.18, 0.062)
    (True, False)
    """
    return bool(np.isfinite(spot_share) and np.isfinite(rest_spot_share)
                and spot_share >= 3 * box ** 2 and spot_share >= 4 * rest_spot_share)


def _read_csv(path: str | os.PathLike, need: Sequence[str], what: str) -> list[dict[str, str]]:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {p}: cannot read it ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"{what} {p} has no column {', '.join(missing)} (its header: "
                         f"{', '.join(header) or 'empty'}); give a CSV with the header {','.join(need)}")
    rows = []
    for raw in reader:
        rows.append({(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None})
    if not rows:
        raise InputError(f"{what} {p} has a header but no rows")
    return rows


def read_groups(path: str | os.PathLike) -> dict[str, str]:
    """``image -> group`` from a CSV with the columns ``image`` and ``group`` (other columns ignored).

    ``image`` names an input by its path, its file name, its name without suffix or its path below the
    input folder.  Raises :class:`~salience.errors.InputError` for a missing column, an empty group or an
    image given two different groups."""
    out: dict[str, str] = {}
    for i, r in enumerate(_read_csv(path, ("image", "group"), "the groups CSV"), start=2):
        if not r["image"] or not r["group"]:
            raise InputError(f"the groups CSV {path}, line {i}: the image and the group must not be empty")
        if r["image"] in out and out[r["image"]] != r["group"]:
            raise InputError(f"the groups CSV {path}, line {i}: image {r['image']!r} is given two groups "
                             f"({out[r['image']]!r} and {r['group']!r})")
        out[r["image"]] = r["group"]
    return out


def read_boxes(path: str | os.PathLike) -> dict[str, list[tuple[float, float, float, float]]]:
    """``image -> [(x0, y0, x1, y1), ...]`` from a CSV with the columns ``image,x0,y0,x1,y1`` (pixel edges,
    ``x1``/``y1`` exclusive; several rows of an image are the union of its boxes)."""
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    cols = ("x0", "y0", "x1", "y1")
    for i, r in enumerate(_read_csv(path, ("image",) + cols, "the boxes CSV"), start=2):
        try:
            box = tuple(float(r[c]) for c in cols)
        except ValueError:
            raise InputError(f"the boxes CSV {path}, line {i}: x0, y0, x1, y1 must be numbers, got "
                             f"{', '.join(r[c] for c in cols)}") from None
        if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(f"the boxes CSV {path}, line {i}: a box needs finite x1 > x0 and y1 > y0, got "
                             f"{', '.join(r[c] for c in cols)}")
        if not r["image"]:
            raise InputError(f"the boxes CSV {path}, line {i}: the image is empty")
        out.setdefault(r["image"], []).append(box)  # type: ignore[arg-type]
    return out


def _masks_dir(spec: str | os.PathLike) -> Path:
    text = os.fspath(spec)
    if text.startswith("masks:"):
        text = text[len("masks:"):]
    p = Path(text).expanduser()
    if not p.is_dir():
        raise InputError(f"masks {spec}: no such folder; give masks:DIR, a folder of one mask per image "
                         "(named like the image, e.g. DIR/cat.png for cat.jpg)")
    return p


def _read_mask(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as im:
                a = np.asarray(im.convert("L"))
    except Exception as exc:
        raise InputError(f"mask {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"mask {path}: a mask is a 2-D image, got an array of shape {a.shape}")
    if a.dtype == bool:
        return a
    if a.dtype == np.uint8:
        return a > 127
    if np.issubdtype(a.dtype, np.integer):
        return a > (np.iinfo(a.dtype).max // 2) if a.max() > 1 else a > 0
    return np.nan_to_num(a.astype(np.float64)) >= 0.5


class _Names:
    """Finds an audited image by any name a side CSV may use: its path as given, its path below the input
    folder (with or without suffix), its file name, or its file stem."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.index: dict[str, str] = {}
        ambiguous: set[str] = set()
        for r in rows:
            rel, path = r["rel"], str(r["input"])
            suffix = PurePosixPath(path).suffix
            keys = {rel, rel + suffix, path, os.path.normpath(path), PurePosixPath(path).name,
                    PurePosixPath(path).stem, PurePosixPath(rel).name}
            for k in keys:
                if k in self.index and self.index[k] != rel:
                    ambiguous.add(k)
                self.index.setdefault(k, rel)
        for k in ambiguous:
            if k not in {r["rel"] for r in rows}:
                del self.index[k]
        self.ambiguous = ambiguous

    def lookup(self, mapping: dict[str, Any], what: str) -> tuple[dict[str, Any], list[str]]:
        """``rel -> value`` and the names that match no audited image."""
        out: dict[str, Any] = {}
        unknown = []
        for name, v in mapping.items():
            key = name.replace("\\", "/")
            rel = self.index.get(key) or self.index.get(os.path.normpath(key))
            if rel is None:
                if key in self.ambiguous:
                    raise InputError(f"the {what} name {name!r} fits several images; name them by their "
                                     "path below the input folder")
                unknown.append(name)
                continue
            out[rel] = v
        return out, unknown


def _find_masks(folder: Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in _MASK_SUFFIXES:
            rel = PurePosixPath(p.relative_to(folder).as_posix())
            stem = str(rel.with_suffix(""))
            for k in (stem, stem.removesuffix("_mask"), stem.removesuffix("-mask")):
                files.setdefault(k, p)
    out = {}
    for r in rows:
        rel = r["rel"]
        name = PurePosixPath(rel).name
        for k in (rel, name):
            if k in files:
                out[rel] = files[k]
                break
    return out


# ------------------------------------------------------------------------------------------------------
# the result
# ------------------------------------------------------------------------------------------------------

@dataclass
class DatasetAudit:
    """What :func:`audit_dataset` found and wrote.

    ``tables``: name (:data:`TABLES`) -> list of row dicts; ``files``: what was written (name -> path);
    ``class_maps``: ``(method, class) -> float64 (MEAN_SIZE, MEAN_SIZE)`` mean evidence map;
    ``spray``: ``(method, class) -> SprayResult``; ``members``: ``(method, class) -> [image rel, ...]``
    in the order SpRAy saw them; ``small``: ``(method, rel) -> float32 (SPRAY_SIZE, SPRAY_SIZE)`` evidence;
    ``batch``: method -> ``{"total", "done", "skipped", "failed", "seconds"}`` of the batch run;
    ``seconds``: ``{"batch", "analysis", "fixations", "report"}`` wall-clock time of each stage.
    """

    out: Path
    methods: list[str]
    model: str | None
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    class_maps: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    spray: dict[tuple[str, int], Any] = field(default_factory=dict)
    members: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    small: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    batch: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path | None:
        return self.files.get("report")


# ------------------------------------------------------------------------------------------------------
# the audit
# ------------------------------------------------------------------------------------------------------

def _batch_runs(audit: DatasetAudit, inputs: list, names: list[str], out: Path, params: Any,
                **kw: Any) -> dict[str, list[dict[str, Any]]]:
    """One batch run per method into ``out/maps/METHOD`` (resumed when it exists), its manifest rows, and
    its counts in ``audit.batch``."""
    from .. import batch

    rows_by_method: dict[str, list[dict[str, Any]]] = {}
    for n in names:
        s = batch.RunSummary()
        p = {n: params[n]} if params and n in params else None
        table = batch.run(inputs, n, out / "maps" / n, params=p, target="top1", summary=s, **kw)
        rows_by_method[n] = table.to_pylist() if hasattr(table, "to_pylist") else list(table)
        audit.batch[n] = {"total": s.total, "done": s.done, "skipped": s.skipped, "failed": s.failed,
                          "seconds": s.seconds}
    return rows_by_method


def audit_dataset(
    inputs: Sequence[str | os.PathLike] | str | None,
    methods: Any = "gradcam",
    out: str | os.PathLike = "audit-report",
    *,
    model: str = "mobilenet_v2",
    weights: str | None = None,
    layer: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    format: str = "png",
    groups: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    boxes: str | os.PathLike | None = None,
    tolerance: float = 15.0,
    fixations: str | None = None,
    data_dir: str | os.PathLike | None = None,
    fixation_metrics: str | Sequence[str] = _DEFAULT_FIXATION_METRICS,
    border: float = 0.1,
    spray: bool = True,
    min_spray: int = 10,
    n_neighbors: int = 10,
    max_clusters: int = 10,
    n_examples: int = 3,
    report_classes: int = 20,
    report: bool = True,
    workers: int = 1,
    batch_size: int = 8,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetAudit:
    """Audit a model's explanations (or bottom-up maps) over a data set; see the module docstring.

    Parameters
    ----------
    inputs: folders, globs, list files or images, as :func:`salience.batch.run` takes them; ``None`` (or
        empty) with ``fixations``: the fixation data set's images.
    methods: registry names, comma-separated or a list (explanations are computed for the top-1 class).
    out: the report folder: ``maps/<method>/`` (the batch runs), the tables, ``index.html``.
    model, weights, layer, params, format, workers, batch_size, device, max_pixels: passed to the batch run
        (``format="npy"`` or ``"both"`` makes the analysis read the lossless float maps; ``max_pixels``: the
        decompression-bomb guard, ``None`` for no limit).
    groups: a CSV of ``image,group``.
    masks: ``masks:DIR``, a folder with one object mask per image (the image's name, any image suffix or
        ``.npy``; a mask must have the image's size); boxes: a CSV of ``image,x0,y0,x1,y1``.  At most one.
    tolerance: the pointing game's tolerance in pixels.
    fixations: a fixation data set (``osie``, ``csv:PATH``, ``maps:PATH``; :func:`salience.datasets.load_dataset`
        with ``data_dir``); its images among the inputs are scored with ``fixation_metrics``.
    border: the width of the border band, a fraction of the width / height, in ``[0, 0.5)``.
    spray: run SpRAy per class with at least ``min_spray`` images (``n_neighbors``, ``max_clusters``: its
        parameters, lowered to fit a small class).
    n_examples: example images per extreme in the report; report_classes: the largest classes that get a
        section of their own in the report (the tables hold every class).

    Returns
    -------
    DatasetAudit

    Raises
    ------
    InputError: bad options or side inputs (before anything runs where that can be known; a mask whose size
        differs from its image's once the maps exist: they are kept, so the re-run after fixing it computes
        no map again).  UnknownMethodError: an unknown method.  DataError: the fixation data set.
    """
    from ..registry import BOTTOM_UP, get_method, method_list

    t0 = time.perf_counter()
    names = method_list(methods)
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs or [])
    _check_options(border, masks, boxes, min_spray=min_spray, n_neighbors=n_neighbors, max_clusters=max_clusters,
                   n_examples=n_examples, report_classes=report_classes)
    group_map = read_groups(groups) if groups is not None else None
    box_map = read_boxes(boxes) if boxes is not None else None
    mask_dir = _masks_dir(masks) if masks is not None else None
    dataset = None
    fmetrics: list[str] = []
    if fixations is not None:
        from ..datasets import load_dataset
        from ..metrics import parse_metrics

        fmetrics = parse_metrics(fixation_metrics)
        dataset = load_dataset(fixations, data_dir)
        if not inputs:
            inputs = [str(it.image_path) for it in dataset if it.image_path is not None]
    if not inputs:
        raise InputError("no input; give image files, folders, globs or list files (or --fixations DATASET, "
                         "whose images are then the inputs)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    explained = any(get_method(n).kind != BOTTOM_UP for n in names)
    audit = DatasetAudit(out=out, methods=names, model=model if explained else None)
    audit.options = {"inputs": [os.fspath(i) for i in inputs], "border": float(border), "tolerance": tolerance,
                     "groups": None if groups is None else os.fspath(groups),
                     "masks": None if masks is None else os.fspath(masks),
                     "boxes": None if boxes is None else os.fspath(boxes), "fixations": fixations,
                     "weights": weights, "layer": layer, "n_examples": n_examples, "report_classes": report_classes}

    # 1. the batch runs (resumable): one folder per method
    t_batch = time.perf_counter()
    rows_by_method = _batch_runs(audit, inputs, names, out, params, model=model, weights=weights, layer=layer,
                                 format=format, workers=workers, batch_size=batch_size, device=device,
                                 max_pixels=max_pixels, progress=progress)
    audit.seconds["batch"] = time.perf_counter() - t_batch

    # 2. the analysis of what the runs wrote
    t_an = time.perf_counter()
    first = rows_by_method[names[0]]
    group_of = _match_groups(audit, first, group_map, groups) if group_map is not None else None
    targets = _match_targets(audit, first, box_map, boxes, mask_dir, masks)
    images, sums = _analyse(audit, rows_by_method, group_of, targets, border=border, tolerance=tolerance,
                            is_box=box_map is not None)
    audit.seconds["analysis"] = time.perf_counter() - t_an

    # 3. plausibility against people
    fix_rows: list[dict[str, Any]] = []
    if dataset is not None:
        t_fix = time.perf_counter()
        fix_rows = _fixation_scores(audit, dataset, names, images, fmetrics)
        audit.seconds["fixations"] = time.perf_counter() - t_fix

    # 4. per class, SpRAy, per group
    t_cl = time.perf_counter()
    classes, clusters, spectra = _per_class(audit, images, sums, spray=spray, min_spray=min_spray,
                                            n_neighbors=n_neighbors, max_clusters=max_clusters)
    audit.tables = {"images": images, "classes": classes, "clusters": clusters, "spectra": spectra}
    if group_of is not None:
        audit.tables["groups"], audit.tables["worst_groups"] = _per_group(images)
    if fix_rows:
        audit.tables["fixations"] = fix_rows
    audit.seconds["analysis"] += time.perf_counter() - t_cl

    # 5. the files
    t_rep = time.perf_counter()
    for name in TABLES:
        if audit.tables.get(name):
            audit.files.update(_write_table(out, name, audit.tables[name]))
    if report:
        from .report import write_report

        audit.files["report"] = write_report(audit, out / "index.html")
    audit.seconds["report"] = time.perf_counter() - t_rep
    audit.seconds["total"] = time.perf_counter() - t0
    return audit


def _check_options(border: Any, masks: Any, boxes: Any, **counts: Any) -> None:
    from ..check import check_int

    if not (isinstance(border, (int, float)) and not isinstance(border, bool) and 0 <= border < 0.5):
        raise InputError(f"border must be a fraction in [0, 0.5), got {border!r}")
    if masks is not None and boxes is not None:
        raise InputError("give masks or boxes, not both")
    for label, v in counts.items():
        check_int(label, v, minimum=0 if label == "n_examples" else 1)


def _match_groups(audit: DatasetAudit, first: list[dict[str, Any]], group_map: dict[str, str],
                  groups: Any) -> dict[str, str]:
    group_of, unknown = _Names(first).lookup(group_map, "groups CSV")
    if not group_of:
        raise InputError(f"no image of the groups CSV {groups} is among the inputs; its image column names "
                         "images by path, file name or name without suffix")
    if unknown:
        audit.notes.append(f"{len(unknown)} image(s) of the groups CSV are not among the inputs "
                           f"(e.g. {unknown[0]!r})")
    n_without = sum(r["rel"] not in group_of for r in first)
    if n_without:
        audit.notes.append(f"{n_without} image(s) have no group in the groups CSV (group left empty)")
    return group_of


def _match_targets(audit: DatasetAudit, first: list[dict[str, Any]], box_map: dict[str, Any] | None, boxes: Any,
                   mask_dir: Path | None, masks: Any) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    if box_map is not None:
        targets, unknown = _Names(first).lookup(box_map, "boxes CSV")
        if not targets:
            raise InputError(f"no image of the boxes CSV {boxes} is among the inputs; its image column names "
                             "images by path, file name or name without suffix")
        if unknown:
            audit.notes.append(f"{len(unknown)} image(s) of the boxes CSV are not among the inputs")
    elif mask_dir is not None:
        targets = dict(_find_masks(mask_dir, first))
        if not targets:
            raise InputError(f"masks {masks}: no mask is named like an input image (e.g. {mask_dir}/"
                             f"{PurePosixPath(first[0]['rel']).name}.png)")
    if targets:
        n_without = sum(r["rel"] not in targets for r in first)
        if n_without:
            audit.notes.append(f"{n_without} image(s) have no {'box' if box_map is not None else 'mask'}: "
                               "no localisation score")
    return targets


def _analyse(audit: DatasetAudit, rows_by_method: dict[str, list[dict[str, Any]]], group_of: dict[str, str] | None,
             targets: dict[str, Any], *, border: float, tolerance: float, is_box: bool):
    """The image rows, and the per-(method, class) sums of the MEAN_SIZE evidence maps."""
    from ..registry import BOTTOM_UP, get_method

    images: list[dict[str, Any]] = []
    sums: dict[tuple[str, int], np.ndarray] = {}
    for n, rows in rows_by_method.items():
        bottom_up = get_method(n).kind == BOTTOM_UP
        folder = audit.out / "maps" / n
        for r in rows:
            row = _image_row(n, r, bottom_up)
            images.append(row)
            if group_of is not None:
                row["group"] = group_of.get(r["rel"])
            if targets:
                row.update(pointing=None, energy_pointing=None, outside_share=None)
            if r["status"] != "ok":
                continue
            try:
                e = _read_map(folder, r)
            except (OSError, ValueError) as exc:
                row["status"], row["error"] = "failed", f"cannot read the map the batch run wrote ({exc})"
                continue
            row["border_share"] = border_share(e, border)
            row["border_area"] = border_area(e.shape, border)
            if r["rel"] in targets:
                row.update(_localise(e, targets[r["rel"]], r, tolerance, is_box))
            key = (n, int(row["pred_class"]))
            m = _shrink(e, MEAN_SIZE).astype(np.float64)
            sums[key] = sums[key] + m if key in sums else m
            audit.small[(n, r["rel"])] = _shrink(e, SPRAY_SIZE)
    return images, sums


def _image_row(method: str, r: dict[str, Any], bottom_up: bool) -> dict[str, Any]:
    nan = float("nan")
    if bottom_up:
        cls, name, prob = BOTTOM_UP_CLASS[0], BOTTOM_UP_CLASS[1], nan
    else:
        cls = -1 if r.get("top_class") is None else int(r["top_class"])
        name = r.get("top_name") or "?"
        prob = nan if r.get("top_prob") is None else float(r["top_prob"])
    ok = r["status"] == "ok"
    cx = float(r["com_x"]) if ok and r.get("com_x") is not None else nan
    cy = float(r["com_y"]) if ok and r.get("com_y") is not None else nan
    return {
        "method": method, "image": r["rel"], "input": r["input"], "status": r["status"], "error": r.get("error"),
        "map": r.get("npy") or r.get("png"), "width": r.get("width"), "height": r.get("height"),
        "pred_class": cls, "pred_name": name, "pred_prob": prob,
        "com_x": cx, "com_y": cy, "com_offset": float(math.hypot(cx - 0.5, cy - 0.5)),
        "border_share": nan, "border_area": nan,
    }


def _localise(e: np.ndarray, target: Any, r: dict[str, Any], tolerance: float, is_box: bool) -> dict[str, Any]:
    from ..tasks.localisation import energy_pointing_game, pointing_game

    if not is_box:
        mask = _read_mask(target)
        if mask.shape != e.shape:
            raise InputError(f"mask {target} is {mask.shape[1]} x {mask.shape[0]} (W x H) but image {r['input']} is "
                             f"{e.shape[1]} x {e.shape[0]}; give masks of the images' sizes (the maps are kept: "
                             "re-running computes none again)")
        target = mask
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant map: a miss and NaN, as the functions define
            hit = pointing_game(e, target, tolerance=tolerance)
            energy = energy_pointing_game(e, target)
    except InputError as exc:
        raise InputError(f"{'boxes' if is_box else 'mask'} of image {r['input']}: {exc}") from None
    return {"pointing": float(hit), "energy_pointing": energy, "outside_share": 1.0 - energy}


def _fixation_scores(audit: DatasetAudit, dataset: Any, methods: list[str], images: list[dict[str, Any]],
                     metrics: list[str]) -> list[dict[str, Any]]:
    """Score the maps of the images that the data set has, with the learned model and the centre bias
    beside them; adds ``fix_<metric>`` to the image rows and returns the summary rows."""
    from ..evaluation import evaluate_dataset

    in_set = set(dataset.names)
    rels = [r["image"] for r in images if r["method"] == methods[0] and r["status"] == "ok"]
    names = [PurePosixPath(r).name for r in rels if PurePosixPath(r).name in in_set]
    if not names:
        audit.notes.append(f"no audited image is in the fixation data set {dataset.name!r}: no plausibility scores")
        return []
    sub = dataset.subset(names=names)
    folders = [_fixation_view(audit, m, [r for r in images if r["method"] == m], in_set) for m in methods]
    rows_file = audit.out / "fixations" / f"rows_{'-'.join(metrics)}.csv"  # another metric set: another file
    res = evaluate_dataset(sub, list(_FIXATION_BASELINES), metrics=metrics, saliency_maps=folders,
                           out=rows_file, resume=True)
    label = {f"maps:{f.resolve().name}": m for f, m in zip(folders, methods)}
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for row in res.rows:
        per[(label.get(row["method"], row["method"]), row["image"])] = row
    for r in images:
        got = per.get((r["method"], PurePosixPath(r["image"]).name))
        for mt in metrics:
            v = got.get(mt) if got is not None else None
            r[f"fix_{mt}"] = float("nan") if v is None else float(v)
    out = []
    for s in res.summary:
        m = label.get(s.method, s.method)
        out.append({"dataset": dataset.name, "method": m,
                    "kind": "explanation" if m in methods else ("learned fixation model" if m == "deepgaze-mnv2"
                                                                 else "centre bias"),
                    "metric": s.metric, "n": s.n, "n_undefined": s.n_undefined, "mean": s.mean, "low": s.low,
                    "high": s.high})
    audit.options["fixation_images"] = len(names)
    audit.options["fixation_computed"] = res.computed
    return out


def _fixation_view(audit: DatasetAudit, method: str, rows: list[dict[str, Any]], in_set: set[str]) -> Path:
    """A folder ``OUT/fixations/maps/<method><@tag>/`` holding this run's map of each data-set image as
    ``<image name>.png|.npy`` (hard links to the batch run's files, copies where links are refused), so
    that the evaluation matches exactly these maps by name: not the maps of other settings that the batch
    folder may also hold.  The folder's name carries the batch run's settings tag, so a changed setting
    is a new label in the evaluation's journal, never a resumed row of other maps."""
    import shutil

    ok = [r for r in rows if r["status"] == "ok" and PurePosixPath(r["image"]).name in in_set]
    tag = ""
    if ok:
        stem = PurePosixPath(ok[0]["map"]).stem
        prefix = f"{PurePosixPath(ok[0]['image']).name}_{method}"
        tag = stem[len(prefix):] if stem.startswith(prefix) else ""
    folder = audit.out / "fixations" / "maps" / f"{method}{tag}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        wanted = set()
        for r in ok:
            src = audit.out / "maps" / method / r["map"]
            dst = folder / f"{PurePosixPath(r['image']).name}{src.suffix}"
            if dst.name in wanted:
                continue  # two audited images of one name (in different folders): the first one's map
            wanted.add(dst.name)
            if dst.exists() and os.path.samefile(src, dst):
                continue
            tmp = dst.with_name(f".{dst.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        for p in folder.iterdir():  # maps of images no longer audited
            if p.is_file() and p.name not in wanted:
                p.unlink()
    except OSError as exc:
        from ..io import output_error

        raise output_error(exc, folder) from None
    return folder


def _scores(rows: list[dict[str, Any]]) -> list[str]:
    """The numeric per-image score columns present in the rows (in a fixed order)."""
    base = ["pred_prob", "com_x", "com_y", "com_offset", "border_share", "pointing", "energy_pointing",
            "outside_share"]
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    return [k for k in base if k in keys] + sorted(k for k in keys if k.startswith("fix_"))


def _mean(vals: list[Any]) -> float:
    v = [float(x) for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")


def _sd(vals: list[Any]) -> float:
    v = [float(x) for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")


def _direction(score: str) -> int:
    if score in SCORE_DIRECTION:
        return SCORE_DIRECTION[score]
    if score.startswith("fix_"):
        return -1 if score == "fix_kld" else +1
    return 0


def _per_class(audit: DatasetAudit, images: list[dict[str, Any]], sums: dict[tuple[str, int], np.ndarray], *,
               spray: bool, min_spray: int, n_neighbors: int, max_clusters: int):
    classes: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    spectra: list[dict[str, Any]] = []
    scores = _scores(images)
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in images:
        if r["status"] == "ok":
            by.setdefault((r["method"], int(r["pred_class"])), []).append(r)
    from .spray import spray as run_spray
    order = sorted(by, key=lambda k: (audit.methods.index(k[0]), -len(by[k]), k[1]))
    for key in order:
        rows = by[key]
        n = len(rows)
        audit.class_maps[key] = sums[key] / n
        cx = [r["com_x"] for r in rows]
        cy = [r["com_y"] for r in rows]
        sx, sy = _sd(cx), _sd(cy)
        c: dict[str, Any] = {
            "method": key[0], "pred_class": key[1], "pred_name": rows[0]["pred_name"], "n": n,
            "com_x_mean": _mean(cx), "com_y_mean": _mean(cy), "com_sd_x": sx, "com_sd_y": sy,
            "com_spread": float(math.hypot(sx, sy)) if n > 1 else float("nan"),
            "border_share_sd": _sd([r["border_share"] for r in rows]),
        }
        for s in scores:
            if s not in ("com_x", "com_y"):
                c[f"{s}_mean" if s in ("pred_prob", "com_offset") else s] = _mean([r.get(s) for r in rows])
        c["n_clusters"] = None
        mx, my = c["com_x_mean"], c["com_y_mean"]
        for r in rows:
            r["com_dev"] = float(math.hypot(r["com_x"] - mx, r["com_y"] - my))
        if spray and n >= min_spray:
            maps = np.stack([audit.small[(key[0], r["image"])] for r in rows])
            res = run_spray(maps, size=(SPRAY_SIZE, SPRAY_SIZE), n_neighbors=min(n_neighbors, n - 1),
                            max_clusters=min(max_clusters, n - 1), seed=0)
            audit.spray[key] = res
            audit.members[key] = [r["image"] for r in rows]
            for r, lab in zip(rows, np.asarray(res.labels).tolist()):
                r["cluster"] = int(lab)
            c["n_clusters"] = int(res.n_clusters)
            c["largest_cluster_share"] = float(res.sizes[0]) / n
            gaps = np.asarray(res.eigengaps, dtype=np.float64)
            c["max_eigengap"] = float(gaps.max()) if gaps.size else float("nan")
            unit = _normalised(maps)
            labels = np.asarray(res.labels)
            spots = _cluster_spots(unit, labels, int(res.n_clusters))
            for k in range(int(res.n_clusters)):
                mm = np.asarray(res.mean_maps[k], dtype=np.float64)
                inside = labels == k
                members = [rows[i] for i in np.flatnonzero(inside)]
                bs = [r["border_share"] for r in members]
                where = spots[k]
                clusters.append({"method": key[0], "pred_class": key[1], "pred_name": c["pred_name"], "cluster": k,
                                 "size": int(res.sizes[k]), "share": float(res.sizes[k]) / n,
                                 "border_share": _mean(bs), "mean_map_border_share": border_share(mm, 0.1),
                                 "com_x_mean": _mean([r["com_x"] for r in members]),
                                 "com_y_mean": _mean([r["com_y"] for r in members]), **where,
                                 "candidate_shortcut": is_candidate_shortcut(where["spot_share"],
                                                                             where["rest_spot_share"])})
            ev = np.asarray(res.eigenvalues, dtype=np.float64)
            for i, v in enumerate(ev.tolist()):
                spectra.append({"method": key[0], "pred_class": key[1], "index": i, "eigenvalue": float(v),
                                "eigengap": float(gaps[i]) if i < gaps.size else float("nan")})
        classes.append(c)
    return classes, clusters, spectra


def _per_group(images: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    scores = _scores(images)
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in images:
        if r["status"] == "ok" and r.get("group") is not None:
            by.setdefault((r["method"], r["group"]), []).append(r)
    groups = []
    for (m, g), rows in sorted(by.items()):
        row: dict[str, Any] = {"method": m, "group": g, "n": len(rows),
                               "n_classes": len({r["pred_class"] for r in rows})}
        for s in scores:
            row[s] = _mean([r.get(s) for r in rows])
        groups.append(row)
    worst = []
    for m in dict.fromkeys(r["method"] for r in groups):
        mine = [r for r in groups if r["method"] == m]
        for s in scores:
            d = _direction(s)
            vals = [(r[s], r["group"]) for r in mine if not math.isnan(r[s])]
            if d == 0 or len(vals) < 2:
                continue
            vals.sort(key=lambda t: (t[0] * d, t[1]))  # worst first
            worst.append({"method": m, "score": s, "direction": "higher is better" if d > 0 else "lower is better",
                          "worst_group": vals[0][1], "worst": vals[0][0], "best_group": vals[-1][1],
                          "best": vals[-1][0], "gap": abs(vals[-1][0] - vals[0][0])})
    return groups, worst


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        for k in r:
            cols.setdefault(k, None)
    return list(cols)


def _write_table(out: Path, name: str, rows: list[dict[str, Any]]) -> dict[str, Path]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io import atomic_write_bytes

    cols = _columns(rows)
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else (repr(v) if isinstance(v := r.get(k), float) else v)
                    for k in cols})
    files = {}
    try:
        files[f"{name}.csv"] = atomic_write_bytes(out / f"{name}.csv", text.getvalue().encode("utf-8"), overwrite=True)
        table = pa.Table.from_pylist([{k: r.get(k) for k in cols} for r in rows])
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        files[f"{name}.parquet"] = atomic_write_bytes(out / f"{name}.parquet", buf.getvalue().to_pybytes(),
                                                      overwrite=True)
    except OutputError:
        raise
    return files
