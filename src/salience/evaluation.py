"""Scoring saliency maps against human fixations over a whole data set, with baselines and resumable runs.

:func:`evaluate_dataset` computes the fixation metrics of :mod:`salience.metrics` for every image of a
:class:`~salience.datasets.FixationDataset` and every method, writes one row per (image, method) as it
goes, and summarises each metric by its mean and a 95 % confidence interval over images.

What is evaluated
    - Methods of the registry (bottom-up ones: ``itti``, ``spectral-residual``, ...; ``bottom-up`` names
      them all), optionally with the centre-bias prior and blur of :func:`salience.saliency_map`
      (``blur``, ``centre_bias``; rows are then labelled e.g. ``itti[blur=0.02,cb=0.3]``).
    - Folders of precomputed maps (``saliency_maps``; PNG or NPY matched to images by file stem; rows
      labelled ``maps:<folder name>``); images without a map are reported in
      :attr:`EvaluationResult.missing`, not scored.
    - Baselines (``baselines`` names all three):

      ``centre-bias``
          the registry's centre-bias method (a Gaussian centred on the image), computed like any method.
      ``chance``
          a map of independent uniform random values, ``numpy.random.default_rng(seed).random((H, W))``
          with the per-image seed below.  A constant map would be the natural "no information" map, but
          under the ``mit`` convention it makes AUC, SIM and IG undefined (0/0 in the benchmark's min-max
          normalisation); a random map is defined under every metric and convention and gives the chance
          level each metric actually produces: AUC-Judd / AUC-Borji / sAUC about 0.5, NSS and CC about 0,
          and the KL, SIM, EMD and IG values of an uninformative map.
      ``human``
          the inter-observer ("human") ceiling, leave one subject out: for each subject ``s`` of an image,
          the fixations of all other subjects, blurred into a fixation map exactly as the ground truth is,
          are the saliency map; it is scored against ``s``'s fixations (and, for CC, KL, SIM and EMD,
          against ``s``'s own blurred fixation map); the image's value is the mean over subjects.  It
          needs subject identities (OSIE, CSV data; not binary-map folders).  Note that the continuous
          metrics then compare against one subject's map while models are compared against all
          subjects', so the ceiling is conservative for CC / KL / SIM / EMD.

Ground truth per image
    fixations: every recorded fixation, as 0-based ``(x, y)`` points; continuous fixation map (CC, KL,
    SIM, EMD): the points blurred by :meth:`~salience.datasets.ImageFixations.density_map` (``sigma`` in
    pixels, or the convention's default), or the data set's own continuous map for map folders;
    shuffled-AUC negatives: the fixations of **all other images of the data set** (rescaled to this image's
    size when sizes differ; independent of ``limit``); information-gain baseline: the centre-bias map.

Determinism
    Every random draw (the chance map, the random metrics) uses a generator seeded from
    ``sha256(f"{seed}:{image}:{method}")``, so a result depends only on the image, the method and ``seed``,
    never on the number of worker processes or on the order in which images finish.

Confidence intervals
    Per metric and method: mean over images of the per-image values, and the t-based 95 % interval
    ``mean +- t(0.975, n - 1) * sd / sqrt(n)`` (``sd`` with ``ddof=1``).  Images where a metric is undefined
    (NaN, e.g. a constant map under ``mit``) are left out of that mean and counted in ``n_undefined``.

Resuming
    Rows are appended to the output file (CSV) and flushed as each image finishes.  With ``resume=True`` the
    (image, method) pairs already in the file are not recomputed.  For a ``.parquet`` output the rows are
    journalled in ``<out>.partial.csv`` and written to Parquet (needs ``pyarrow``) when the run completes.

Example
-------
>>> import numpy as np, salience.datasets as sd
>>> from salience.evaluation import ci95
>>> mean, low, high = ci95([1.0, 2.0, 3.0])   # half-width t(0.975, 2) * sd / sqrt(3), sd = 1
>>> mean, round(high - mean, 4)
(2.0, 2.4841)
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .datasets import FixationDataset, find_saliency_maps, load_saliency_map
from .errors import DataError, InputError, OutputExistsError, SalienceError
from .registry import BOTTOM_UP, get_method, method_names

__all__ = [
    "BASELINES",
    "MethodSpec",
    "EvaluationResult",
    "Summary",
    "evaluate_dataset",
    "resolve_methods",
    "resolve_metrics",
    "summarize",
    "ci95",
    "image_seed",
    "human_ceiling",
    "read_rows",
]

#: evaluation-only baselines (``centre-bias`` is a registry method and is listed with them by ``baselines``)
BASELINES = ("chance", "human")
_BASELINE_ALIASES = {"chance": "chance", "random": "chance", "human": "human", "inter-observer": "human",
                     "interobserver": "human", "loo": "human"}
_CENTRE = "centre-bias"
_CONTINUOUS = ("cc", "kld", "sim", "emd")
#: columns written before the metric columns, and after them
_HEAD = ("image", "method", "convention", "fixation_sigma", "n_fixations", "n_clipped", "sauc_others")
_TAIL = ("seconds",)
#: the leading columns of files written by earlier releases (still read and resumed): before ``n_clipped``,
#: and before ``sauc_others``
_OLDER_HEADS = (_HEAD[:5], _HEAD[:6])


# --------------------------------------------------------------------------------------------------------
# what to evaluate
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MethodSpec:
    """One column of the evaluation: a registry method, a folder of maps, or a baseline."""

    label: str
    kind: str  # "registry" | "maps" | "chance" | "human"
    name: str  # registry name, or the maps folder
    blur: float = 0.0
    centre_bias: float = 0.0


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def resolve_methods(
    methods: str | Sequence[str] = "bottom-up,baselines",
    *,
    saliency_maps: Sequence[str | os.PathLike] = (),
    blur: float = 0.0,
    centre_bias: float = 0.0,
) -> list[MethodSpec]:
    """Turn a method list (names, ``bottom-up``, ``baselines``) and map folders into :class:`MethodSpec` s.

    ``blur`` / ``centre_bias`` apply to the registry's bottom-up methods other than ``centre-bias`` (which
    is the prior itself).  Unknown names raise :class:`~salience.errors.UnknownMethodError`; explanation
    methods raise :class:`~salience.errors.InputError` (precompute their maps and pass the folder).
    """
    for label, v in (("blur", blur), ("centre_bias", centre_bias)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InputError(f"{label} must be a number >= 0, got {v!r}")
    if centre_bias > 1:
        raise InputError(f"centre_bias is a mixing weight in [0, 1], got {centre_bias!r}")
    tokens = [t.strip() for t in (methods.split(",") if isinstance(methods, str) else methods)]
    tokens = [t for t in tokens if t]
    if not tokens and not saliency_maps:
        raise InputError("no method to evaluate; pass method names (e.g. itti,spectral-residual), 'bottom-up', "
                         "'baselines', or --saliency-maps DIR")
    names: list[str] = []
    for t in tokens:
        key = t.lower()
        if key in ("bottom-up", "bottomup", "all"):
            names.extend(n for n in method_names(BOTTOM_UP))
        elif key == "baselines":
            names.extend([_CENTRE, "chance", "human"])
        else:
            names.append(key)
    specs: list[MethodSpec] = []
    seen: set[str] = set()
    for n in names:
        if n in _BASELINE_ALIASES:
            base = _BASELINE_ALIASES[n]
            spec = MethodSpec(base, base, base)
        else:
            m = get_method(n)
            if m.kind != BOTTOM_UP:
                raise InputError(
                    f"method {m.name!r} explains a model; evaluate its maps by saving them "
                    "(`salience explain ... --npy`) and passing the folder as --saliency-maps DIR"
                )
            if m.name != _CENTRE and (blur or centre_bias):
                parts = ([f"blur={_fmt_num(blur)}"] if blur else []) + ([f"cb={_fmt_num(centre_bias)}"] if centre_bias else [])
                spec = MethodSpec(f"{m.name}[{','.join(parts)}]", "registry", m.name, float(blur), float(centre_bias))
            else:
                spec = MethodSpec(m.name, "registry", m.name)
        if spec.label not in seen:
            seen.add(spec.label)
            specs.append(spec)
    for folder in saliency_maps:
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise DataError(f"saliency-map folder '{p}' does not exist")
        label = f"maps:{p.resolve().name}"
        if label in seen:
            raise InputError(f"two saliency-map folders are named {p.name!r}; rename one")
        seen.add(label)
        specs.append(MethodSpec(label, "maps", str(p)))
    return specs


def resolve_metrics(metrics: str | Sequence[str] = "all") -> tuple[str, ...]:
    """The metric names to compute, in :data:`salience.metrics.METRICS` order.

    Parsed by :func:`salience.metrics.parse_metrics` (the one parser: ``"kl,auc"`` works here as in
    :func:`salience.metrics.evaluate`).
    """
    from .metrics import METRICS, parse_metrics

    wanted = set(parse_metrics(metrics))
    return tuple(m for m in METRICS if m in wanted)


def image_seed(image: str, method: str, seed: int = 0) -> int:
    """A 63-bit seed from ``sha256(f"{seed}:{image}:{method}")``: the same in every process and run."""
    digest = hashlib.sha256(f"{seed}:{image}:{method}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# --------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------

def ci95(values: Iterable[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its t-based 95 % confidence interval; NaNs are ignored.

    ``mean +- t(0.975, n - 1) * sd / sqrt(n)``, ``sd`` with ``ddof=1``.  One value: the interval is
    ``(nan, nan)``; none: everything is NaN.
    """
    v = np.asarray([x for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return (mean, math.nan, math.nan)
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return (mean, mean - half, mean + half)


@dataclass(frozen=True)
class Summary:
    """Mean and 95 % CI of one metric for one method over the images (``n`` defined, ``n_undefined`` NaN)."""

    method: str
    metric: str
    n: int
    n_undefined: int
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def summarize(rows: Sequence[dict[str, Any]], methods: Sequence[str], metrics: Sequence[str]) -> list[Summary]:
    """One :class:`Summary` per (method, metric) over ``rows`` (dicts with ``method`` and metric keys)."""
    out = []
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        for k in metrics:
            vals = [float(r.get(k, math.nan)) for r in mine]
            finite = [v for v in vals if math.isfinite(v)]
            mean, lo, hi = ci95(finite)
            out.append(Summary(m, k, len(finite), len(vals) - len(finite), mean, lo, hi))
    return out


# --------------------------------------------------------------------------------------------------------
# per-image work (runs in worker processes)
# --------------------------------------------------------------------------------------------------------

#: shuffled-AUC negatives under ``mit``: the fixations of this many other images, drawn at random (seeded)
#: per image, as the MIT benchmark's ``AUC_shuffled.m`` expects ("M other random images, Borji uses M=10")
SAUC_OTHER_IMAGES = 10


def _sauc_others(sauc_others: int | str | None, convention: str) -> int | None:
    """How many other images give the shuffled-AUC negatives (``None``: all of them)."""
    if sauc_others is None:
        return SAUC_OTHER_IMAGES if convention == "mit" else None
    if sauc_others == "all":
        return None
    if isinstance(sauc_others, bool) or not isinstance(sauc_others, (int, np.integer)) or sauc_others < 1:
        raise InputError(f"sauc_others must be a whole number >= 1 or 'all', got {sauc_others!r}")
    return int(sauc_others)


@dataclass(frozen=True)
class FixationBlur:
    """How the fixations are blurred into the continuous ground truth of one image.

    ``kind``: ``"default"`` (the MIT benchmark's ``run_antonioGaussian(F, 25)``, about 25-50 px whatever
    the image size), ``"px"`` (a Gaussian of ``value`` pixels), ``"fraction"`` (a Gaussian of ``value *
    max(H, W)`` pixels: relative to the image size, the "cycles per image" sense of the MIT benchmark;
    ``fc`` cycles per image is ``value = sqrt(ln 2 / (2 pi^2)) / fc``, 0.0234 for 8 cycles) or ``"deg"``
    (``value`` degrees of visual angle times the image's pixels per degree).
    """

    kind: str = "default"
    value: float | None = None

    @property
    def label(self) -> str:
        """What the ``fixation_sigma`` column of the rows holds: ``default``, ``3``, ``0.04*size``, ``1deg``."""
        if self.kind == "default":
            return "default"
        text = _fmt_num(float(self.value))
        return {"px": text, "fraction": f"{text}*size", "deg": f"{text}deg"}[self.kind]

    def sigma(self, item, ppd: float | None) -> float | None:
        """The blur in pixels for ``item`` (``None``: the default blur)."""
        if self.kind == "px":
            return float(self.value)
        if self.kind == "fraction":
            return float(self.value) * max(item.width, item.height)
        if self.kind == "deg":
            if ppd is None:
                raise DataError(f"image {item.name!r}: a blur in degrees (sigma_deg) needs pixels_per_degree "
                                "(a pixels_per_degree column in the CSV, or --pixels-per-degree)")
            return float(self.value) * ppd
        return None


def fixation_blur(sigma: float | None = None, *, sigma_fraction: float | None = None,
                  sigma_deg: float | None = None) -> FixationBlur:
    """The :class:`FixationBlur` of at most one of ``sigma`` (px), ``sigma_fraction``, ``sigma_deg``."""
    given = [(k, v) for k, v in (("px", sigma), ("fraction", sigma_fraction), ("deg", sigma_deg)) if v is not None]
    if len(given) > 1:
        raise InputError("give the fixation blur one way: sigma (pixels), sigma_fraction (of the image size) "
                         "or sigma_deg (degrees), not several")
    if not given:
        return FixationBlur()
    kind, v = given[0]
    if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        name = {"px": "sigma (the fixation blur in pixels)", "fraction": "sigma_fraction", "deg": "sigma_deg"}[kind]
        raise InputError(f"{name} must be a positive number, got {v!r}")
    return FixationBlur(kind, float(v))


@dataclass
class _Config:
    dataset: FixationDataset
    specs: list[MethodSpec]
    metrics: tuple[str, ...]
    convention: str
    blur: FixationBlur
    seed: int
    map_files: dict[str, dict[str, Path]]  # label -> image name -> file
    pixels_per_degree: float | None = None
    sauc_others: int | None = SAUC_OTHER_IMAGES
    other: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (owner index, u, v) normalised
    _cache: dict = field(default_factory=dict)

    def sigma(self, item) -> float | None:
        ppd = item.pixels_per_degree if item.pixels_per_degree is not None else (
            self.pixels_per_degree if self.pixels_per_degree is not None else self.dataset.pixels_per_degree)
        return self.blur.sigma(item, ppd)


_STATE: _Config | None = None


def _init_worker(cfg: _Config) -> None:
    global _STATE
    _STATE = cfg
    try:  # one BLAS / OpenCV thread per worker: the pool is the parallelism
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover
        pass


def _other_points(cfg: _Config, idx: int) -> np.ndarray:
    """Shuffled-AUC negatives of image ``idx``, in its pixel coordinates (pixel areas scaled).

    The fixations of :data:`SAUC_OTHER_IMAGES` other images of the whole data set (``cfg.sauc_others``),
    drawn without replacement by a generator seeded from the image's name and the run's seed, or of all
    other images when ``cfg.sauc_others`` is ``None``.
    """
    owner, u, v = cfg.other
    n = len(cfg.dataset)
    item = cfg.dataset[idx]
    if cfg.sauc_others is None or cfg.sauc_others >= n - 1:
        keep = owner != idx
    else:
        pool = np.delete(np.arange(n), idx)
        g = np.random.default_rng(image_seed(item.name, "sauc-other-images", cfg.seed))
        keep = np.isin(owner, g.choice(pool, size=cfg.sauc_others, replace=False))
    return np.stack([u[keep] * item.width - 0.5, v[keep] * item.height - 0.5], axis=1)


def _centre_map(cfg: _Config, shape: tuple[int, int]) -> np.ndarray:
    key = ("centre", shape)
    if key not in cfg._cache:
        func = get_method(_CENTRE).load()
        cfg._cache[key] = np.asarray(func(np.zeros((*shape, 3), np.float32)), dtype=np.float64)
    return cfg._cache[key]


def human_ceiling(
    item,
    *,
    metrics: Sequence[str],
    convention: str = "mit",
    sigma: float | None = None,
    other_fixations: np.ndarray | None = None,
    baseline_map: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Leave-one-subject-out inter-observer scores of one image (mean over subjects; NaN with < 2 subjects).

    For each subject ``s``: the other subjects' fixations blurred into a map (:meth:`density_map` with
    ``sigma``) are scored against ``s``'s fixations, and against ``s``'s own blurred map for the
    continuous metrics.  ``item`` is an :class:`~salience.datasets.ImageFixations`.
    """
    from .metrics import evaluate

    subjects = [s for s in item.subjects() if len(item.points(s))]
    if len(subjects) < 2:
        return {k: math.nan for k in metrics}
    need_gt = any(k in _CONTINUOUS for k in metrics)
    per: dict[str, list[float]] = {k: [] for k in metrics}
    for s in subjects:
        mine = item.points(s)
        rest = item.points(exclude=s)
        pred = item.density_map(sigma, points=rest)
        gt = item.density_map(sigma, points=mine) if need_gt else None
        vals = evaluate(pred, mine, metrics=list(metrics), convention=convention, fixation_map=gt,
                        other_fixations=other_fixations, baseline_map=baseline_map, rng=rng,
                        nan_policy="propagate")
        for k in metrics:
            per[k].append(float(vals[k]))
    out = {}
    for k in metrics:
        v = np.asarray(per[k], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else math.nan
    return out


def _method_map(cfg: _Config, spec: MethodSpec, item, image: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "chance":
        return rng.random(item.shape)
    if spec.kind == "maps":
        return load_saliency_map(cfg.map_files[spec.label][item.name], shape=item.shape)
    from .api import saliency_map

    kwargs = {}
    if spec.blur:
        kwargs["blur"] = spec.blur
    if spec.centre_bias:
        kwargs["centre_bias"] = spec.centre_bias
    return saliency_map(image, spec.name, **kwargs)


#: what a worker returns for one image: its rows, and (image, method or "*", reason) for what was skipped
_ImageResult = tuple[list[dict[str, Any]], list[tuple[str, str, str]]]


def _evaluate_image(task: tuple[int, tuple[str, ...]]) -> _ImageResult:
    """Rows of one image; a bad stimulus skips the image, a bad map or undefined metric input the pair."""
    cfg = _STATE
    assert cfg is not None, "worker not initialised"  # internal invariant, not user input
    idx, labels = task
    item = cfg.dataset[idx]
    specs = {s.label: s for s in cfg.specs}
    image = None
    try:
        sigma = cfg.sigma(item)
        if any(specs[lab].kind == "registry" for lab in labels):
            image = cfg.dataset.load_image(item.name)
        gt = item.density_map(sigma) if any(k in _CONTINUOUS for k in cfg.metrics) else None
        other = _other_points(cfg, idx) if ("sauc" in cfg.metrics and cfg.other is not None) else None
        base = _centre_map(cfg, item.shape) if "ig" in cfg.metrics else None
    except SalienceError as exc:
        return [], [(item.name, "*", str(exc))]
    rows, skipped = [], []
    for label in labels:
        try:
            rows.append(_score(cfg, specs[label], item, image, sigma, gt, other, base))
        except SalienceError as exc:
            skipped.append((item.name, label, str(exc)))
    return rows, skipped


def _score(cfg: _Config, spec: MethodSpec, item, image, sigma, gt, other, base) -> dict[str, Any]:
    """One (image, method) row."""
    from .metrics import evaluate

    rng = np.random.default_rng(image_seed(item.name, spec.label, cfg.seed))
    t0 = time.perf_counter()
    if spec.kind == "human":
        vals = human_ceiling(item, metrics=cfg.metrics, convention=cfg.convention, sigma=sigma,
                             other_fixations=other, baseline_map=base, rng=rng)
    else:
        smap = _method_map(cfg, spec, item, image, rng)
        vals = evaluate(smap, item.points(), metrics=list(cfg.metrics), convention=cfg.convention,
                        fixation_map=gt, other_fixations=other, baseline_map=base, rng=rng,
                        nan_policy="propagate")
    row: dict[str, Any] = {
        "image": item.name, "method": spec.label, "convention": cfg.convention,
        "fixation_sigma": cfg.blur.label, "n_fixations": len(item), "n_clipped": item.n_clipped,
        "sauc_others": sauc_label(cfg.sauc_others),
    }
    for k in cfg.metrics:
        row[k] = float(vals[k])
    row["seconds"] = round(time.perf_counter() - t0, 4)
    return row


# --------------------------------------------------------------------------------------------------------
# the output file
# --------------------------------------------------------------------------------------------------------

def _columns(metrics: Sequence[str]) -> list[str]:
    return [*_HEAD, *metrics, *_TAIL]


def sauc_label(sauc_others: int | None) -> str:
    """The ``sauc_others`` column: how many other images gave an image's shuffled-AUC negatives (``"all"``
    for every other image).  Rows with another value are not mixed into one results file on resume.

    >>> sauc_label(None), sauc_label(10)
    ('all', '10')
    """
    return "all" if sauc_others is None else str(int(sauc_others))


def _head_of(fields: Sequence[str]) -> tuple[str, ...] | None:
    """The leading columns ``fields`` start with: this release's or an earlier one's (``None``: neither)."""
    for head in (_HEAD, *reversed(_OLDER_HEADS)):
        if tuple(fields[: len(head)]) == head and (len(fields) == len(head) + len(_TAIL) or
                                                   fields[len(head)] not in _HEAD):
            return head
    return None


def _parse_row(raw: dict[str, str], metrics: Sequence[str], where: str) -> dict[str, Any]:
    row: dict[str, Any] = dict(raw)
    try:
        for k in metrics:
            text = raw.get(k, "")
            row[k] = float(text) if text not in ("", None) else math.nan
        row["n_fixations"] = int(float(raw.get("n_fixations") or 0))
        row["n_clipped"] = int(float(raw.get("n_clipped") or 0))  # files before the column: none counted
        row["sauc_others"] = raw.get("sauc_others") or None  # files before the column: unknown
        row["seconds"] = float(raw.get("seconds") or "nan")
    except (TypeError, ValueError):
        raise DataError(f"{where}: not a row of salience evaluate (a value is not a number); was this file "
                        "written by another program? write to another --out") from None
    return row


def _read_csv_rows(path: Path, metrics: Sequence[str] | None, *, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a CSV written by a previous run, validated before anything is changed.

    The header must be this run's columns (``metrics``; ``None``: any metric columns) and every complete
    line a row of ours; only then, with ``repair``, is a last line cut off by an interruption removed from
    the file for good.  A duplicated (image, method) row counts once (the first is kept).
    """
    if path.is_dir():
        raise DataError(f"'{path}' is a folder; --out must be a results file (.csv or .parquet)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if not data.strip():
        return []
    complete = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
    try:
        text = complete.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not a results file of salience evaluate (not UTF-8 text); "
                        "write to another --out") from None
    reader = csv.DictReader(_io.StringIO(text))
    fields = reader.fieldnames or []
    head = _head_of(fields)
    ours = head is not None and fields[-len(_TAIL):] == list(_TAIL)
    if metrics is not None and (not ours or fields[len(head or ()): len(fields) - len(_TAIL)] != list(metrics)):
        hint = ("(other metrics?); resume with the same --metrics or write to another --out" if ours else
                "; it is not a results file of salience evaluate: write to another --out")
        raise DataError(f"'{path}' has columns {','.join(fields) or '(none)'}, but this run writes "
                        f"{','.join(_columns(metrics))} {hint}")
    if not ours or head is None:
        raise DataError(f"'{path}' is not a results file of salience evaluate (columns {','.join(fields)})")
    metrics = fields[len(head): len(fields) - len(_TAIL)]
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for raw in reader:
        if None in raw.values() or None in raw:
            raise DataError(f"'{path}' line {reader.line_num}: wrong number of fields; write to another --out")
        row = _parse_row(raw, metrics, f"'{path}' line {reader.line_num}")
        key = (row["image"], row["method"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    if repair and len(complete) < len(data):  # interrupted mid-line: cut the partial row off for good
        with open(path, "r+b") as fh:
            fh.truncate(len(complete))
    return rows


def read_rows(path: str | os.PathLike, metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-image rows of a results file (CSV or Parquet) written by :func:`evaluate_dataset`.

    The file is never changed; a duplicated (image, method) row is returned once.
    """
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        pq = _pyarrow()
        try:
            rows = pq.read_table(p).to_pylist()
        except Exception as exc:  # pyarrow raises its own kinds on a file that is not Parquet
            raise DataError(f"cannot read '{p}' as Parquet results: {exc}") from None
        for r in rows:
            for k, v in list(r.items()):
                if v is None and k not in _HEAD:
                    r[k] = math.nan
        unique = {(r.get("image"), r.get("method")): r for r in reversed(rows)}
        return [r for r in rows if unique.get((r.get("image"), r.get("method"))) is r]
    return _read_csv_rows(p, metrics)


def _pyarrow():
    try:
        import pyarrow.parquet as pq  # noqa: F401
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            "writing or reading Parquet needs pyarrow: pip install pyarrow (or write a .csv instead)"
        ) from None
    return pq


def _write_parquet(path: Path, rows: list[dict[str, Any]], metrics: Sequence[str]) -> None:
    pq = _pyarrow()
    import pyarrow as pa

    cols = _columns(metrics)
    table = pa.table({c: [r.get(c) for r in rows] for c in cols})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    from .io import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue().to_pybytes(), overwrite=True)


class _RowSink:
    """Appends rows to the journal CSV, flushing after each image."""

    def __init__(self, path: Path, metrics: Sequence[str], fresh: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = fresh or not path.exists() or path.stat().st_size == 0
        fields = _columns(metrics)
        if not new:  # appending to a file of an earlier release: its columns, so every line matches its header
            with open(path, newline="", encoding="utf-8") as fh:
                fields = next(csv.reader(fh), fields)
        self._fh = open(path, "w" if fresh else "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._fh.flush()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _resumed_rows(out_path: Path, journal: Path, parquet: bool, metrics: Sequence[str], convention: str,
                  blur_label: str, sauc_others: str) -> list[dict[str, Any]]:
    """The rows of an earlier run, each (image, method) once, after checking they are ours and compatible."""
    done: list[dict[str, Any]] = []
    if parquet and out_path.exists():
        done.extend(read_rows(out_path))
    if journal.exists():
        done.extend(_read_csv_rows(journal, metrics))
    for r in done:
        if r.get("convention") != convention or str(r.get("fixation_sigma")) != blur_label:
            raise DataError(
                f"'{out_path}' holds rows computed with convention {r.get('convention')}, fixation "
                f"sigma {r.get('fixation_sigma')}; this run asks for {convention}, {blur_label}: "
                "write to another --out"
            )
        if "sauc" in metrics and r.get("sauc_others") != sauc_others:
            was = (f"with the negatives of {r.get('sauc_others')} other image(s)" if r.get("sauc_others") else
                   "by a release that did not record how many other images gave the negatives")
            raise DataError(
                f"'{out_path}' holds shuffled-AUC rows computed {was}; this run uses {sauc_others}: resume with "
                f"--sauc-others {r.get('sauc_others') or 'N'} (the same as before), or write to another --out"
            )
    if journal.exists() and not parquet:
        _read_csv_rows(journal, metrics, repair=True)  # validated above: now drop a cut-off last line
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for r in done:
        unique.setdefault((r["image"], r["method"]), r)
    return list(unique.values())


@dataclass
class _Journal:
    """The output file of a run: what it already holds (resume) and where new rows go."""

    out: Path | None
    journal: Path | None
    parquet: bool
    done_rows: list[dict[str, Any]]
    sink: _RowSink | None = None

    @classmethod
    def open(cls, out, *, resume: bool, overwrite: bool, metrics: Sequence[str], convention: str,
             blur_label: str, sauc_others: str = "all") -> "_Journal":
        """Check the output file and read what it holds, before anything in it is changed."""
        out_path = Path(out).expanduser() if out is not None else None
        if resume and out_path is None:
            raise InputError("resume needs the output file of the earlier run (--out)")
        if out_path is None:
            return cls(None, None, False, [])
        if out_path.is_dir():
            raise DataError(f"--out '{out_path}' is a folder; give a file name ending in .csv or .parquet")
        parquet = out_path.suffix.lower() == ".parquet"
        if parquet:
            _pyarrow()
        journal = out_path.with_name(out_path.name + ".partial.csv") if parquet else out_path
        exists = out_path.exists() or journal.exists()
        if exists and not resume and not overwrite:
            raise OutputExistsError(
                f"{out_path} exists already; pass --resume to continue that run or --overwrite to replace it"
            )
        done = _resumed_rows(out_path, journal, parquet, metrics, convention, blur_label,
                             sauc_others) if resume else []
        return cls(out_path, journal, parquet, done)

    @property
    def done(self) -> set[tuple[str, str]]:
        return {(r["image"], r["method"]) for r in self.done_rows}

    def start(self, metrics: Sequence[str], resume: bool) -> None:
        if self.journal is None:
            return
        if self.parquet and resume:  # everything goes through the journal from here on
            self.sink = _RowSink(self.journal, metrics, fresh=True)
            self.sink.write(self.done_rows)
        else:
            self.sink = _RowSink(self.journal, metrics, fresh=not resume)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.sink is not None:
            self.sink.write(rows)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    def finish(self, new_rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
        rows = self.done_rows + new_rows
        if self.parquet:
            _write_parquet(self.out, rows, metrics)
            self.journal.unlink(missing_ok=True)
        return rows


# --------------------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------------------

@dataclass
class EvaluationResult:
    """What :func:`evaluate_dataset` returns.

    ``rows``: per-image rows (dicts) of this run's images and methods, resumed ones included, in data-set
    order; ``summary``: per (method, metric) mean and CI; ``missing``: label -> images without a map;
    ``skipped``: ``(image, method or "*", reason)`` for what could not be scored (``"*"``: the whole image,
    e.g. an unreadable stimulus); ``n_clipped``: fixations of the scored images clipped onto an image border
    when the data were read; ``computed`` / ``resumed``: (image, method) pairs computed now / taken from
    the file; ``elapsed``: s.
    """

    dataset: str
    methods: list[str]
    metrics: tuple[str, ...]
    convention: str
    rows: list[dict[str, Any]]
    summary: list[Summary]
    missing: dict[str, list[str]]
    computed: int
    resumed: int
    elapsed: float
    n_images: int
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    n_clipped: int = 0

    @property
    def skipped_images(self) -> list[str]:
        """Images with at least one (image, method) pair that could not be scored, in order of report."""
        return list(dict.fromkeys(s[0] for s in self.skipped))

    def table(self, *, digits: int = 3, markdown: bool = False) -> str:
        """The summary as a text (or Markdown) table: method x metric, ``mean ± half-width of the 95 % CI``."""
        by = {(s.method, s.metric): s for s in self.summary}
        lower = {"kld", "emd"}
        head = ["method", "n"] + [f"{k} (lower better)" if k in lower and not markdown else
                                  (f"{k} ↓" if k in lower else k) for k in self.metrics]
        body = [self._table_row(m, by, digits) for m in self.methods]
        notes = self.notes()
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(c) + " |" for c in body]
            return "\n".join(lines + ["", *notes] if notes else lines)
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
        return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body), *notes])

    def notes(self) -> list[str]:
        """Footnotes of the table: how to read the human row's continuous metrics."""
        cont = [k for k in self.metrics if k in _CONTINUOUS]
        if "human" not in self.methods or not cont:
            return []
        note = (f"human: its {', '.join(cont)} compare one viewer's sparse fixation map with the other viewers' "
                "map, while the other rows are compared with all viewers' map; there it is no ceiling and can "
                "fall below centre-bias (leave-one-out ground truth is sparser).")
        return [note]

    def _table_row(self, m: str, by: dict, digits: int) -> list[str]:
        ns = [by[(m, k)].n for k in self.metrics]
        cells = [m, str(max(ns) if ns else 0)]
        for k in self.metrics:
            s = by[(m, k)]
            if s.n == 0:
                cells.append("undefined")
                continue
            txt = f"{s.mean:.{digits}f}"
            if math.isfinite(s.half_width):
                txt += f" ± {s.half_width:.{digits}f}"
            if s.n_undefined:
                txt += f" ({s.n_undefined} undef.)"
            cells.append(txt)
        return cells


@dataclass
class _Plan:
    """What a run will do: the images, the methods, the map files, and the (image, methods) tasks."""

    names: list[str]
    specs: list[MethodSpec]
    metrics: tuple[str, ...]
    map_files: dict[str, dict[str, Path]]
    missing: dict[str, list[str]]
    tasks: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    resumed: int = 0


def _plan(dataset, methods, *, metrics, convention, saliency_maps, blur, centre_bias, limit, jobs) -> _Plan:
    """Validate the arguments and choose the images, methods and map files (nothing is written)."""
    if not isinstance(dataset, FixationDataset):
        raise InputError(f"dataset must be a FixationDataset (salience.datasets.load_*), got {type(dataset).__name__}")
    if convention not in ("mit", "tuebingen"):
        raise InputError(f"unknown convention {convention!r}; expected 'mit' or 'tuebingen'")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InputError(f"jobs must be a whole number >= 1, got {jobs!r}")
    metric_names = resolve_metrics(metrics)
    specs = resolve_methods(methods, saliency_maps=saliency_maps, blur=blur, centre_bias=centre_bias)
    if len(dataset) == 0:
        raise DataError(f"data set {dataset.name!r} has no images")
    names = (dataset.subset(limit) if limit is not None else dataset).names
    if any(s.kind == "human" for s in specs) and not dataset.has_subjects:
        raise DataError(
            f"the human (inter-observer) baseline needs each fixation's subject, and data set {dataset.name!r} "
            "has none (binary fixation maps); leave 'human' out"
        )
    map_files: dict[str, dict[str, Path]] = {}
    missing: dict[str, list[str]] = {}
    for s in specs:
        if s.kind == "maps":
            found, miss = find_saliency_maps(s.name, names)
            map_files[s.label] = found
            if miss:
                missing[s.label] = miss
    return _Plan(names, specs, metric_names, map_files, missing)


def _add_tasks(plan: _Plan, dataset: FixationDataset, done: set[tuple[str, str]]) -> None:
    """The (image index, method labels) still to compute: not in ``done``, and with a map where one is needed."""
    index = {n: i for i, n in enumerate(dataset.names)}
    for n in plan.names:
        labels = []
        for s in plan.specs:
            if s.kind == "maps" and n not in plan.map_files[s.label]:
                continue
            if (n, s.label) in done:
                plan.resumed += 1
                continue
            labels.append(s.label)
        if labels:
            plan.tasks.append((index[n], tuple(labels)))


def _config(dataset, plan: _Plan, convention: str, fblur: FixationBlur, pixels_per_degree, sauc_others,
            seed: int) -> _Config:
    """The workers' configuration, with the blur checked on every image before any work."""
    if pixels_per_degree is not None and not (isinstance(pixels_per_degree, (int, float))
                                              and math.isfinite(pixels_per_degree) and pixels_per_degree > 0):
        raise InputError(f"pixels_per_degree must be a positive number, got {pixels_per_degree!r}")
    cfg = _Config(dataset=dataset, specs=plan.specs, metrics=plan.metrics, convention=convention, blur=fblur,
                  seed=seed, map_files=plan.map_files, pixels_per_degree=pixels_per_degree,
                  sauc_others=_sauc_others(sauc_others, convention))
    if fblur.kind == "deg":
        for n in plan.names:
            cfg.sigma(dataset[n])  # every image needs its pixels per degree: refuse before any work
    return cfg


def _normalised_fixations(dataset: FixationDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner image index, x / W, y / H) of every fixation of the data set (pixel areas as fractions)."""
    owner, u, v = [], [], []
    for i, it in enumerate(dataset):
        pts = it.points()
        owner.append(np.full(len(pts), i, dtype=np.int64))
        u.append((pts[:, 0] + 0.5) / it.width)
        v.append((pts[:, 1] + 0.5) / it.height)
    return np.concatenate(owner), np.concatenate(u), np.concatenate(v)


def _run(cfg: _Config, tasks, jobs: int, progress: bool, journal: _Journal):
    """Compute the tasks (in this process or a pool), writing each image's rows as it finishes."""
    new_rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str, str]] = []
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="evaluate", unit="image", file=sys.stderr, dynamic_ncols=True)
    pool = None
    try:
        if jobs == 1 or len(tasks) <= 1:
            _init_worker(cfg)
            results: Iterable[_ImageResult] = map(_evaluate_image, tasks)
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(
                min(jobs, len(tasks)), initializer=_init_worker, initargs=(cfg,))
            results = pool.imap_unordered(_evaluate_image, tasks, chunksize=1)
        for rows, bad in results:
            new_rows.extend(rows)
            skipped.extend(bad)
            journal.write(rows)
            if bar is not None:
                bar.update(1)
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()
        journal.close()
        global _STATE
        _STATE = None
    return new_rows, skipped


def evaluate_dataset(
    dataset: FixationDataset,
    methods: str | Sequence[str] = "bottom-up,baselines",
    *,
    metrics: str | Sequence[str] = "all",
    convention: str = "mit",
    saliency_maps: Sequence[str | os.PathLike] = (),
    blur: float = 0.0,
    centre_bias: float = 0.0,
    sigma: float | None = None,
    sigma_fraction: float | None = None,
    sigma_deg: float | None = None,
    pixels_per_degree: float | None = None,
    sauc_others: int | str | None = None,
    limit: int | None = None,
    jobs: int = 1,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    seed: int = 0,
) -> EvaluationResult:
    """Score every method on every image of ``dataset`` (see the module docstring for the definitions).

    Parameters
    ----------
    dataset: a :class:`~salience.datasets.FixationDataset` (``load_osie``, ``load_csv``, ``load_map_folder``).
    methods: method names, ``bottom-up`` (all bottom-up methods of the registry) and/or ``baselines``
        (``centre-bias``, ``chance``, ``human``), as a comma-separated string or a sequence.
    metrics: ``"all"`` or names (and aliases, e.g. ``kl``, ``auc``) of :data:`salience.metrics.METRICS`,
        parsed by :func:`salience.metrics.parse_metrics`.
    convention: ``"mit"`` or ``"tuebingen"`` (see docs/metrics.md).
    saliency_maps: folders of precomputed maps (PNG / NPY, file stem = image name, or ``<image>_<method>``
        as ``salience map`` / ``salience explain`` name them).
    blur, centre_bias: the optional prior of :func:`salience.saliency_map` for the bottom-up methods.
    sigma, sigma_fraction, sigma_deg: the blur of the fixations into the continuous ground truth, at most
        one: in pixels; as a fraction of the image's larger side (relative to the image size); in degrees
        of visual angle (times the image's pixels per degree: a CSV's ``pixels_per_degree`` column, else
        ``pixels_per_degree``, else the data set's).  None: the MIT benchmark's blur (the default; see
        :class:`FixationBlur`).
    pixels_per_degree: display pixels per degree for ``sigma_deg`` where an image has no value of its own.
    sauc_others: how many other images' fixations are the shuffled-AUC negatives of an image (drawn per
        image, seeded); ``"all"``: every other image; ``None``: the convention's rule (``mit``:
        :data:`SAUC_OTHER_IMAGES` = 10, as ``AUC_shuffled.m`` expects; ``tuebingen``: all, as pysaliency).
    limit: only the first ``limit`` images (in name order).
    jobs: worker processes (1: in this process).  Results do not depend on it.
    out: per-image rows file, ``.csv`` or ``.parquet``; ``None`` keeps rows in memory only.
    resume: keep the rows already in ``out`` and compute only the missing (image, method) pairs.
    overwrite: replace an existing ``out`` (otherwise an existing file without ``resume`` is an error).
    progress: show a progress bar on stderr.
    seed: base of the per-image seeds.

    Returns
    -------
    EvaluationResult
        An image whose stimulus or map cannot be read, or whose map a metric refuses, is skipped and
        listed in :attr:`EvaluationResult.skipped` (not written, so a resumed run tries it again).
    """
    t_start = time.perf_counter()
    plan = _plan(dataset, methods, metrics=metrics, convention=convention, saliency_maps=saliency_maps,
                 blur=blur, centre_bias=centre_bias, limit=limit, jobs=jobs)
    cfg = _config(dataset, plan, convention, fixation_blur(sigma, sigma_fraction=sigma_fraction, sigma_deg=sigma_deg),
                  pixels_per_degree, sauc_others, seed)
    journal = _Journal.open(out, resume=resume, overwrite=overwrite, metrics=plan.metrics,
                            convention=convention, blur_label=cfg.blur.label,
                            sauc_others=sauc_label(cfg.sauc_others))
    _add_tasks(plan, dataset, journal.done)
    if "sauc" in plan.metrics and plan.tasks:
        cfg.other = _normalised_fixations(dataset)
    journal.start(plan.metrics, resume)
    new_rows, skipped = _run(cfg, plan.tasks, jobs, progress, journal)
    all_rows = journal.finish(new_rows, plan.metrics)
    skipped = [(name, "*", why) for name, why in dataset.unreadable.items()] + skipped
    order = {n: i for i, n in enumerate(plan.names)}
    labels = [s.label for s in plan.specs]
    lab_order = {lab: i for i, lab in enumerate(labels)}
    rows = sorted((r for r in all_rows if r["image"] in order and r["method"] in lab_order),
                  key=lambda r: (order[r["image"]], lab_order[r["method"]]))
    return EvaluationResult(
        dataset=dataset.name, methods=labels, metrics=plan.metrics, convention=convention, rows=rows,
        summary=summarize(rows, labels, plan.metrics), missing=plan.missing, computed=len(new_rows),
        resumed=plan.resumed, elapsed=time.perf_counter() - t_start, n_images=len(plan.names),
        skipped=skipped, n_clipped=sum(dataset[n].n_clipped for n in plan.names),
    )
