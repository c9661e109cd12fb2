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
from .errors import DataError, InputError, OutputExistsError
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
_HEAD = ("image", "method", "convention", "fixation_sigma", "n_fixations")
_TAIL = ("seconds",)


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
    """The metric names to compute, in :data:`salience.metrics.METRICS` order."""
    from .metrics import METRICS

    tokens = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    tokens = [t.strip().lower().replace("-", "_") for t in tokens if t.strip()]
    if not tokens:
        raise InputError(f"no metric given; choose from all, {', '.join(METRICS)}")
    if "all" in tokens:
        return tuple(METRICS)
    unknown = [t for t in tokens if t not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {', '.join(unknown)}; choose from all, {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in tokens)


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

@dataclass
class _Config:
    dataset: FixationDataset
    specs: list[MethodSpec]
    metrics: tuple[str, ...]
    convention: str
    sigma: float | None
    seed: int
    map_files: dict[str, dict[str, Path]]  # label -> image name -> file
    other: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (owner index, u, v) normalised
    _cache: dict = field(default_factory=dict)


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
    """Fixations of every other image, in this image's pixel coordinates (pixel areas scaled)."""
    owner, u, v = cfg.other
    keep = owner != idx
    item = cfg.dataset[idx]
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


def _method_map(cfg: _Config, spec: MethodSpec, item, image_cache: dict, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "chance":
        return rng.random(item.shape)
    if spec.kind == "maps":
        return load_saliency_map(cfg.map_files[spec.label][item.name], shape=item.shape)
    if "image" not in image_cache:
        image_cache["image"] = cfg.dataset.load_image(item.name)
    from ._api import saliency_map

    kwargs = {}
    if spec.blur:
        kwargs["blur"] = spec.blur
    if spec.centre_bias:
        kwargs["centre_bias"] = spec.centre_bias
    return saliency_map(image_cache["image"], spec.name, **kwargs)


def _evaluate_image(task: tuple[int, tuple[str, ...]]) -> list[dict[str, Any]]:
    from .metrics import evaluate

    cfg = _STATE
    assert cfg is not None, "worker not initialised"  # internal invariant, not user input
    idx, labels = task
    item = cfg.dataset[idx]
    specs = {s.label: s for s in cfg.specs}
    pts = item.points()
    need_gt = any(k in _CONTINUOUS for k in cfg.metrics)
    gt = item.density_map(cfg.sigma) if need_gt else None
    other = _other_points(cfg, idx) if ("sauc" in cfg.metrics and cfg.other is not None) else None
    base = _centre_map(cfg, item.shape) if "ig" in cfg.metrics else None
    image_cache: dict = {}
    rows = []
    for label in labels:
        spec = specs[label]
        rng = np.random.default_rng(image_seed(item.name, label, cfg.seed))
        t0 = time.perf_counter()
        if spec.kind == "human":
            vals = human_ceiling(item, metrics=cfg.metrics, convention=cfg.convention, sigma=cfg.sigma,
                                 other_fixations=other, baseline_map=base, rng=rng)
        else:
            smap = _method_map(cfg, spec, item, image_cache, rng)
            vals = evaluate(smap, pts, metrics=list(cfg.metrics), convention=cfg.convention, fixation_map=gt,
                            other_fixations=other, baseline_map=base, rng=rng, nan_policy="propagate")
        row: dict[str, Any] = {
            "image": item.name, "method": label, "convention": cfg.convention,
            "fixation_sigma": "default" if cfg.sigma is None else _fmt_num(cfg.sigma),
            "n_fixations": len(item),
        }
        for k in cfg.metrics:
            row[k] = float(vals[k])
        row["seconds"] = round(time.perf_counter() - t0, 4)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------------
# the output file
# --------------------------------------------------------------------------------------------------------

def _columns(metrics: Sequence[str]) -> list[str]:
    return [*_HEAD, *metrics, *_TAIL]


def _parse_row(raw: dict[str, str], metrics: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict(raw)
    for k in metrics:
        text = raw.get(k, "")
        row[k] = float(text) if text not in ("", None) else math.nan
    row["n_fixations"] = int(float(raw.get("n_fixations") or 0))
    row["seconds"] = float(raw.get("seconds") or "nan")
    return row


def _read_csv_rows(path: Path, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a CSV written by a previous run; a last line cut off by an interruption is dropped."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # interrupted mid-line: cut the partial row off for good
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        data = data[:cut]
    if not data.strip():
        return []
    reader = csv.DictReader(_io.StringIO(data.decode("utf-8")))
    expected = _columns(metrics)
    if reader.fieldnames != expected:
        raise DataError(
            f"'{path}' has columns {','.join(reader.fieldnames or [])}, but this run writes "
            f"{','.join(expected)} (other metrics?); resume with the same --metrics or write to another --out"
        )
    return [_parse_row(r, metrics) for r in reader if None not in r.values()]


def read_rows(path: str | os.PathLike, metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-image rows of a results file (CSV or Parquet) written by :func:`evaluate_dataset`."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        pq = _pyarrow()
        table = pq.read_table(p)
        rows = table.to_pylist()
        for r in rows:
            for k, v in list(r.items()):
                if v is None and k not in _HEAD:
                    r[k] = math.nan
        return rows
    if metrics is None:
        with open(p, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        metrics = [c for c in header if c not in _HEAD and c not in _TAIL]
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
        self._fh = open(path, "w" if fresh else "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=_columns(metrics), lineterminator="\n")
        if new:
            self._writer.writeheader()
            self._fh.flush()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


# --------------------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------------------

@dataclass
class EvaluationResult:
    """What :func:`evaluate_dataset` returns.

    ``rows``: per-image rows (dicts) of this run's images and methods, resumed ones included, in data-set
    order; ``summary``: per (method, metric) mean and CI; ``missing``: label -> images without a map;
    ``computed`` / ``resumed``: (image, method) pairs computed now / taken from the file; ``elapsed``: s.
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

    def table(self, *, digits: int = 3, markdown: bool = False) -> str:
        """The summary as a text (or Markdown) table: method x metric, ``mean ± half-width of the 95 % CI``."""
        by = {(s.method, s.metric): s for s in self.summary}
        lower = {"kld", "emd"}
        head = ["method", "n"] + [f"{k} (lower better)" if k in lower and not markdown else
                                  (f"{k} ↓" if k in lower else k) for k in self.metrics]
        body = []
        for m in self.methods:
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
            body.append(cells)
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(c) + " |" for c in body]
            return "\n".join(lines)
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
        return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body)])


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
    metrics: ``"all"`` or names from :data:`salience.metrics.METRICS`.
    convention: ``"mit"`` or ``"tuebingen"`` (see docs/metrics.md).
    saliency_maps: folders of precomputed maps (PNG / NPY, file stem = image name).
    blur, centre_bias: the optional prior of :func:`salience.saliency_map` for the bottom-up methods.
    sigma: blur of the fixations into the continuous ground truth, in pixels (``None``: the convention's).
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
    """
    t_start = time.perf_counter()
    if not isinstance(dataset, FixationDataset):
        raise InputError(f"dataset must be a FixationDataset (salience.datasets.load_*), got {type(dataset).__name__}")
    if convention not in ("mit", "tuebingen"):
        raise InputError(f"unknown convention {convention!r}; expected 'mit' or 'tuebingen'")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InputError(f"jobs must be a whole number >= 1, got {jobs!r}")
    metric_names = resolve_metrics(metrics)
    specs = resolve_methods(methods, saliency_maps=saliency_maps, blur=blur, centre_bias=centre_bias)
    if sigma is not None and not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma (the fixation blur in pixels) must be a positive number, got {sigma!r}")
    if len(dataset) == 0:
        raise DataError(f"data set {dataset.name!r} has no images")
    selected = dataset.subset(limit) if limit is not None else dataset
    names = selected.names
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

    # ---- the output file and what it already holds ----
    out_path = Path(out).expanduser() if out is not None else None
    if resume and out_path is None:
        raise InputError("resume needs the output file of the earlier run (--out)")
    parquet = out_path is not None and out_path.suffix.lower() == ".parquet"
    if parquet:
        _pyarrow()
    journal = out_path.with_name(out_path.name + ".partial.csv") if parquet else out_path
    done_rows: list[dict[str, Any]] = []
    if out_path is not None:
        exists = out_path.exists() or (journal is not None and journal.exists())
        if exists and not resume and not overwrite:
            raise OutputExistsError(
                f"{out_path} exists already; pass --resume to continue that run or --overwrite to replace it"
            )
        if resume:
            if parquet and out_path.exists():
                done_rows.extend(read_rows(out_path))
            if journal.exists():
                done_rows.extend(_read_csv_rows(journal, metric_names))
            for r in done_rows:
                if r.get("convention") != convention or str(r.get("fixation_sigma")) != (
                        "default" if sigma is None else _fmt_num(sigma)):
                    raise DataError(
                        f"'{out_path}' holds rows computed with convention {r.get('convention')}, fixation "
                        f"sigma {r.get('fixation_sigma')}; this run asks for {convention}, "
                        f"{'default' if sigma is None else _fmt_num(sigma)}: write to another --out"
                    )
            if parquet:  # everything goes through the journal from here on
                _RowSink(journal, metric_names, fresh=True).close()
                sink_rows = done_rows
            else:
                sink_rows = []
        else:
            sink_rows = []
    done = {(r["image"], r["method"]) for r in done_rows}

    tasks: list[tuple[int, tuple[str, ...]]] = []
    index = {n: i for i, n in enumerate(dataset.names)}
    resumed = 0
    for n in names:
        labels = []
        for s in specs:
            if s.kind == "maps" and n not in map_files[s.label]:
                continue
            if (n, s.label) in done:
                resumed += 1
                continue
            labels.append(s.label)
        if labels:
            tasks.append((index[n], tuple(labels)))

    cfg = _Config(dataset=dataset, specs=specs, metrics=metric_names, convention=convention, sigma=sigma,
                  seed=seed, map_files=map_files)
    if "sauc" in metric_names and tasks:
        owner, u, v = [], [], []
        for i, it in enumerate(dataset):
            pts = it.points()
            owner.append(np.full(len(pts), i, dtype=np.int64))
            u.append((pts[:, 0] + 0.5) / it.width)
            v.append((pts[:, 1] + 0.5) / it.height)
        cfg.other = (np.concatenate(owner), np.concatenate(u), np.concatenate(v))

    sink = None
    if out_path is not None:
        sink = _RowSink(journal, metric_names, fresh=not resume)
        if parquet and resume and sink_rows:
            sink.write(sink_rows)
    new_rows: list[dict[str, Any]] = []
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="evaluate", unit="image", file=sys.stderr, dynamic_ncols=True)
    pool = None
    try:
        if jobs == 1 or len(tasks) <= 1:
            _init_worker(cfg)
            results: Iterable[list[dict[str, Any]]] = map(_evaluate_image, tasks)
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(
                min(jobs, len(tasks)), initializer=_init_worker, initargs=(cfg,))
            results = pool.imap_unordered(_evaluate_image, tasks, chunksize=1)
        for rows in results:
            new_rows.extend(rows)
            if sink is not None:
                sink.write(rows)
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
        if sink is not None:
            sink.close()
        global _STATE
        _STATE = None

    all_rows = done_rows + new_rows
    if parquet:
        _write_parquet(out_path, all_rows, metric_names)
        journal.unlink(missing_ok=True)
    order = {n: i for i, n in enumerate(names)}
    labels = [s.label for s in specs]
    lab_order = {lab: i for i, lab in enumerate(labels)}
    rows = sorted((r for r in all_rows if r["image"] in order and r["method"] in lab_order),
                  key=lambda r: (order[r["image"]], lab_order[r["method"]]))
    return EvaluationResult(
        dataset=dataset.name, methods=labels, metrics=metric_names, convention=convention, rows=rows,
        summary=summarize(rows, labels, metric_names), missing=missing, computed=len(new_rows),
        resumed=resumed, elapsed=time.perf_counter() - t_start, n_images=len(names),
    )
