"""Training the fixation model's readout on eye-tracking data (``salience train-fixations``).

Recipe
    1. **Split** the images by name (:func:`split_names`): each name's rank under
       ``sha256(f"salience-gaze-split:{split_seed}:{name}")`` decides; the first seventh (rounded) is the
       test set, the next seventh validation, the rest training.  On OSIE (700 images) that is 500 / 100 /
       100, listed in ``salience/gaze/osie_split.json``.  The rule depends only on the names and
       ``split_seed`` (default 0), never on the training seed, so the test images stay the same across runs.
    2. **Cache the frozen features** of every image once (and of the mirror image of every training image:
       flipping left-right is the only augmentation), float16, in one file per data set and
       configuration under the cache folder (``$SALIENCE_CACHE``, else ``$XDG_CACHE_HOME/salience``, else
       ``~/.cache/salience``); a second run reads it back.
    3. **Fit the readout** by maximum likelihood: the loss is the mean negative log-density of the
       recorded fixations (every fixation of every viewer, on a grid 4x finer than the stride-8 feature
       grid: 192 x 144 cells on OSIE), Adam, cosine learning-rate decay, mini-batches of images in a seeded
       order.  The centre prior starts from the log-histogram of the training fixations.  After each epoch
       the validation log-likelihood (bits per fixation over a uniform density) is printed; the epoch with
       the best one is kept.
    4. **Score** the kept readout once on the test images (never used before): log-likelihood and the
       fixation metrics of :func:`salience.metrics.evaluate` on the full-resolution density.

Everything is seeded (``seed``): with the same data, seed and settings on the same machine the run is
repeated exactly; on other hardware to float round-off.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..datasets import FixationDataset
from ..errors import DataError, InputError
from .model import DEFAULT_CONFIG, LAYER_CHANNELS, FixationModel, Readout, one_intra_op_thread, save_readout

__all__ = [
    "SPLIT_SALT",
    "TARGET_UPSAMPLE",
    "split_names",
    "osie_split",
    "default_cache_dir",
    "TrainingRun",
    "train_readout",
]

SPLIT_SALT = "salience-gaze-split"
#: the likelihood is computed on a grid this many times finer than the stride-8 feature grid
TARGET_UPSAMPLE = 2
#: the backbone maps the feature cache keeps (a superset of the default readout's layers)
CACHE_LAYERS = (6, 13, 16, 17, 18)


# --------------------------------------------------------------------------------------------------------
# the split
# --------------------------------------------------------------------------------------------------------

def split_names(names: Sequence[str], *, split_seed: int = 0, val_fraction: float = 1 / 7,
                test_fraction: float = 1 / 7) -> dict[str, list[str]]:
    """Split image names into ``train`` / ``val`` / ``test`` by their rank under a seeded hash.

    Examples
    --------
    >>> s = split_names([f"{i}" for i in range(1001, 1701)])
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [500, 100, 100]
    """
    names = list(dict.fromkeys(str(n) for n in names))
    if len(names) < 3:
        raise DataError(f"training needs at least 3 images (train, validation, test), got {len(names)}")
    order = sorted(names, key=lambda n: hashlib.sha256(f"{SPLIT_SALT}:{split_seed}:{n}".encode()).hexdigest())
    n = len(order)
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    if n_test + n_val >= n:
        raise DataError(f"{n} images are too few for a validation and a test set")
    return {"train": sorted(order[n_test + n_val:]), "val": sorted(order[n_test:n_test + n_val]),
            "test": sorted(order[:n_test])}


def osie_split() -> dict[str, list[str]]:
    """The OSIE split written in the package (``osie_split.json``: 500 train, 100 val, 100 test names)."""
    with open(Path(__file__).resolve().parent / "osie_split.json", encoding="utf-8") as fh:
        data = json.load(fh)
    return {k: list(data[k]) for k in ("train", "val", "test")}


# --------------------------------------------------------------------------------------------------------
# the feature cache
# --------------------------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    env = os.environ.get("SALIENCE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "salience"


def _cache_key(dataset: FixationDataset, config: dict) -> str:
    spec = {"v": 1, "dataset": dataset.name, "root": str(dataset.root), "layers": list(config["layers"]),
            "long_side": int(config["input_long_side"]), "torch": torch.__version__.split("+")[0]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cached_features(model: FixationModel, dataset: FixationDataset, names: Sequence[str], flipped: Sequence[str],
                    cache_dir: str | os.PathLike | None, log: Callable[[str], None]) -> dict[str, Any]:
    """``{"plain": {name: [maps]}, "flip": {name: [maps]}}``, float16.

    One cache file per data set and configuration (layers, input size); images missing from it are
    computed and the file is rewritten (atomically), so any split or subset reuses what is there.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"gaze-features-{dataset.name}-{_cache_key(dataset, model.config)}.pt"
    data: dict[str, Any] = {"plain": {}, "flip": {}}
    if path.is_file():
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
            data = {"plain": dict(loaded["plain"]), "flip": dict(loaded["flip"])}
            log(f"features: {len(data['plain'])} image(s) read from the cache {path}")
        except Exception as exc:  # a truncated cache file is recomputed, not trusted
            log(f"features: cache {path} unreadable ({str(exc)[:120]}); recomputing")
    want_flip = set(flipped)
    todo = [n for n in names if n not in data["plain"] or (n in want_flip and n not in data["flip"])]
    t0 = time.perf_counter()
    for k, name in enumerate(todo):
        img = torch.from_numpy(np.ascontiguousarray(dataset.load_image(name))).permute(2, 0, 1)[None]
        batch = torch.cat([img, torch.flip(img, dims=[3])]) if name in want_flip else img
        feats = model.features(batch)
        data["plain"][name] = [f[0].to(torch.float16).cpu().clone() for f in feats]
        if name in want_flip:
            data["flip"][name] = [f[1].to(torch.float16).cpu().clone() for f in feats]
        if (k + 1) % 50 == 0 or k + 1 == len(todo):
            log(f"features: {k + 1}/{len(todo)} images, {time.perf_counter() - t0:.0f} s")
    if todo:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            torch.save(data, str(tmp))
            os.replace(tmp, path)
            log(f"features: cached in {path}")
        except OSError as exc:
            log(f"features: could not write the cache {path} ({exc}); continuing without it")
    return data


# --------------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------------

@dataclass
class _Sample:
    name: str
    feats: list[torch.Tensor]
    cells: torch.Tensor  # flat indices of the fixations on the (oh, ow) target grid
    out_size: tuple[int, int]

    @property
    def key(self) -> tuple:
        return (tuple(tuple(f.shape) for f in self.feats), self.out_size)


def _cells(item, out_size: tuple[int, int], flipped: bool) -> torch.Tensor:
    pts = item.points()
    x, y = pts[:, 0], pts[:, 1]
    if flipped:
        x = (item.width - 1) - x
    oh, ow = out_size
    col = np.clip(np.floor((x + 0.5) * ow / item.width), 0, ow - 1).astype(np.int64)
    row = np.clip(np.floor((y + 0.5) * oh / item.height), 0, oh - 1).astype(np.int64)
    return torch.from_numpy(row * ow + col)


def _samples(dataset: FixationDataset, names: Sequence[str], feats: dict[str, list[torch.Tensor]],
             flipped: bool) -> list[_Sample]:
    out = []
    for name in names:
        f = feats[name]
        gh, gw = f[0].shape[-2:]
        size = (int(gh) * TARGET_UPSAMPLE, int(gw) * TARGET_UPSAMPLE)
        item = dataset[name]
        if len(item) == 0:
            continue
        out.append(_Sample(name, f, _cells(item, size, flipped), size))
    return out


def _batches(samples: Sequence[_Sample], batch_size: int, rng: np.random.Generator | None) -> list[list[_Sample]]:
    """Mini-batches of samples with equal shapes, in a seeded order (``rng``) or in the given order."""
    buckets: dict[tuple, list[_Sample]] = {}
    order = rng.permutation(len(samples)) if rng is not None else range(len(samples))
    for i in order:
        buckets.setdefault(samples[i].key, []).append(samples[i])
    out = [b[s:s + batch_size] for b in buckets.values() for s in range(0, len(b), batch_size)]
    if rng is not None:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def _batch_logp(readout: Readout, batch: Sequence[_Sample]) -> tuple[torch.Tensor, int]:
    """Sum of log-densities (nats) at the batch's fixations, and their number."""
    n_layers = len(batch[0].feats)
    feats = [torch.stack([s.feats[k] for s in batch]).float() for k in range(n_layers)]
    logd = readout.log_density(feats, batch[0].out_size).flatten(1)
    total = sum(logd[b].gather(0, s.cells).sum() for b, s in enumerate(batch))
    return total, sum(int(s.cells.numel()) for s in batch)


def _bits_over_uniform(readout: Readout, samples: Sequence[_Sample], batch_size: int = 32) -> float:
    """Mean log-likelihood of the fixations, bits per fixation, relative to a uniform density."""
    if not samples:
        return math.nan
    tot, n, uni = 0.0, 0, 0.0
    with torch.no_grad():
        for batch in _batches(samples, batch_size, None):
            s, k = _batch_logp(readout, batch)
            tot += float(s)
            n += k
            uni += sum(s_.cells.numel() * math.log(s_.out_size[0] * s_.out_size[1]) for s_ in batch)
    return (tot + uni) / n / math.log(2)


def _prior_init(dataset: FixationDataset, names: Sequence[str], grid: Sequence[int]) -> torch.Tensor:
    """Log of the (add-one smoothed) histogram of the training fixations on the prior's grid, mean 0."""
    gr, gc = int(grid[0]), int(grid[1])
    hist = np.ones((gr, gc))
    for name in names:
        item = dataset[name]
        pts = item.points()
        for xs in (pts[:, 0], (item.width - 1) - pts[:, 0]):  # the mirror images are trained on too
            c = np.clip(np.floor((xs + 0.5) * gc / item.width), 0, gc - 1).astype(int)
            r = np.clip(np.floor((pts[:, 1] + 0.5) * gr / item.height), 0, gr - 1).astype(int)
            np.add.at(hist, (r, c), 1.0)
    logh = np.log(hist)
    return torch.tensor(logh - logh.mean(), dtype=torch.float32).view(1, 1, gr, gc)


@dataclass
class TrainingRun:
    """What :func:`train_readout` returns (and ``salience train-fixations`` writes as JSON)."""

    readout: Readout
    config: dict[str, Any]
    split: dict[str, list[str]]
    hyper: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    scores: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        return {"config": self.config, "hyper_parameters": self.hyper,
                "split": {k: v for k, v in self.split.items()},
                "n_images": {k: len(v) for k, v in self.split.items()},
                "history": self.history, "best_epoch": self.best_epoch, "scores": self.scores,
                "seconds": self.seconds}

    def save(self, path: str | os.PathLike) -> str:
        """Write the readout (tensors only); returns its SHA-256."""
        return save_readout(self.readout, self.config, path)


def _check_int(label: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise InputError(f"{label} must be a whole number >= {lo}, got {v!r}")
    return v


def train_readout(
    dataset: FixationDataset,
    *,
    seed: int = 0,
    split: dict[str, Sequence[str]] | None = None,
    split_seed: int = 0,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    flip: bool = False,
    config: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    model: FixationModel | None = None,
    test_metrics: str | Sequence[str] | None = "auc_judd,nss,cc,kld,sim,ig",
    log: Callable[[str], None] | None = None,
) -> TrainingRun:
    """Train the readout on ``dataset`` (see the module docstring for the recipe).

    Parameters
    ----------
    dataset: a :class:`~salience.datasets.FixationDataset` with stimulus files.
    seed: seeds the readout's initialisation and the order of the mini-batches.
    split: ``{"train": names, "val": names, "test": names}``; default :func:`split_names` with ``split_seed``.
    epochs, batch_size, lr, weight_decay: the optimisation (Adam, cosine decay of ``lr`` to 0).
    flip: also train on the left-right mirror image of every training image.
    config: the architecture (:data:`~salience.gaze.model.DEFAULT_CONFIG` updated by this).
    cache_dir: where the frozen features are cached (default :func:`default_cache_dir`).
    model: a :class:`~salience.gaze.model.FixationModel` whose backbone gives the features (default: the
        default MobileNetV2 on the CPU).
    test_metrics: fixation metrics computed on the test images at the end (``None``: only the likelihood).
    log: called with each progress line (default: print to stderr).
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    seed = _check_int("seed", seed, 0)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    for label, v in (("lr", lr), ("weight_decay", weight_decay)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(f"{label} must be a number >= 0, got {v!r}")
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    layers = [int(i) for i in cfg["layers"]]
    if not layers or any(i not in LAYER_CHANNELS for i in layers) or layers != sorted(set(layers)):
        raise InputError(f"layers must be increasing values of {sorted(LAYER_CHANNELS)}, got {cfg['layers']}")
    cfg["layers"] = layers
    split = _checked_split(dataset, split, split_seed)
    hyper = {"seed": seed, "split_seed": split_seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "weight_decay": weight_decay, "flip": bool(flip), "optimizer": "Adam, cosine decay to 0",
             "target_upsample": TARGET_UPSAMPLE, "dataset": dataset.name}
    t_start = time.perf_counter()

    if model is None:
        from .. import load_model

        backbone = load_model(str(cfg["backbone"])).model.features
        model = FixationModel(backbone, Readout([LAYER_CHANNELS[i] for i in layers]), cfg)
    # the cache holds CACHE_LAYERS whenever the asked layers are among them, so that trying another subset
    # reuses it; the readout then takes its own layers from it
    cache_layers = list(CACHE_LAYERS) if set(layers) <= set(CACHE_LAYERS) else layers
    model.config = {**cfg, "layers": cache_layers}
    names = split["train"] + split["val"] + split["test"]
    data = cached_features(model, dataset, names, split["train"] if flip else [], cache_dir, log)
    model.config = dict(cfg)
    pick = [cache_layers.index(i) for i in layers]
    data = {part: {n: [maps[i] for i in pick] for n, maps in data[part].items()} for part in ("plain", "flip")}
    t_feat = time.perf_counter() - t_start

    train = _samples(dataset, split["train"], data["plain"], False)
    if flip:
        train += _samples(dataset, split["train"], data["flip"], True)
    val = _samples(dataset, split["val"], data["plain"], False)
    if not train or not val:
        raise DataError("the training or validation images have no fixations")

    torch.manual_seed(seed)
    readout = Readout([LAYER_CHANNELS[i] for i in layers], cfg["hidden"], cfg["prior_grid"])
    with torch.no_grad():
        readout.prior.copy_(_prior_init(dataset, split["train"], cfg["prior_grid"]))
    run = TrainingRun(readout, cfg, split, hyper)
    best = _fit(readout, train, val, run, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                seed=seed, log=log)
    readout.load_state_dict(best[2])
    readout.eval()
    run.best_epoch = best[1]
    run.scores["val_bits_over_uniform"] = best[0]
    t_train = time.perf_counter() - t_start - t_feat
    log(f"kept epoch {best[1]} (best validation {best[0]:.4f} bits/fixation)")

    if split["test"]:
        test = _samples(dataset, split["test"], data["plain"], False)
        run.scores["test_bits_over_uniform"] = _bits_over_uniform(readout, test)
        if test_metrics:
            run.scores["test_metrics"] = _test_metrics(readout, dataset, split["test"], data["plain"], test_metrics)
        log("test: " + ", ".join(f"{k} {v:.4f}" for k, v in _flat_scores(run.scores).items()))
    run.seconds = {"features": round(t_feat, 1), "training": round(t_train, 1),
                   "total": round(time.perf_counter() - t_start, 1)}
    return run


def _checked_split(dataset: FixationDataset, split: dict[str, Sequence[str]] | None,
                   split_seed: int) -> dict[str, list[str]]:
    """The train/val/test names (default :func:`split_names`), refused when train or val is empty or the
    test images overlap them."""
    if split is None:
        split = split_names(dataset.names, split_seed=split_seed)
    out = {k: list(split.get(k, [])) for k in ("train", "val", "test")}
    if not out["train"] or not out["val"]:
        raise DataError("training needs at least one training and one validation image")
    seen = set(out["train"]) | set(out["val"])
    if seen & set(out["test"]):
        raise DataError("the test images must not be among the training or validation images")
    return out


def _fit(readout: Readout, train: list, val: list, run: TrainingRun, *, epochs: int, batch_size: int, lr: float,
         weight_decay: float, seed: int, log: Callable[[str], None]) -> tuple[float, int, dict[str, Any]]:
    """Adam with cosine decay over the epochs, the validation likelihood after each (in ``run.history``);
    returns ``(best validation bits, its epoch, its state dict)``."""
    opt = torch.optim.Adam(readout.parameters(), lr=lr, weight_decay=weight_decay)
    n_steps = epochs * len(_batches(train, batch_size, None))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, n_steps) / n_steps)))
    rng = np.random.default_rng(seed)

    best = (-math.inf, 0, copy.deepcopy(readout.state_dict()))
    v0 = _bits_over_uniform(readout, val)
    log(f"epoch   0: validation {v0:.4f} bits/fixation over uniform (initial readout)")
    run.history.append({"epoch": 0, "train_loss_bits": math.nan, "val_bits": v0})
    for epoch in range(1, epochs + 1):
        readout.train()
        tot, n = 0.0, 0
        for batch in _batches(train, batch_size, rng):
            s, k = _batch_logp(readout, batch)
            loss = -s / k
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(s.detach())
            n += k
        readout.eval()
        v = _bits_over_uniform(readout, val)
        train_bits = -tot / n / math.log(2)
        run.history.append({"epoch": epoch, "train_loss_bits": train_bits, "val_bits": v})
        sigma = float(torch.exp(readout.log_sigma.detach()))
        log(f"epoch {epoch:3d}: training loss {train_bits:.4f} bits/fixation (neg. log-lik.), validation "
            f"{v:.4f} bits/fixation over uniform, blur sigma {sigma:.4f}")
        if v > best[0]:
            best = (v, epoch, copy.deepcopy(readout.state_dict()))
    return best


def _flat_scores(scores: dict[str, Any]) -> dict[str, float]:
    out = {k: v for k, v in scores.items() if isinstance(v, float)}
    for k, v in (scores.get("test_metrics") or {}).items():
        out[f"test_{k}"] = v["mean"]
    return out


def _test_metrics(readout: Readout, dataset: FixationDataset, names: Sequence[str],
                  feats: dict[str, list[torch.Tensor]], metrics: str | Sequence[str]) -> dict[str, dict[str, float]]:
    """The fixation metrics of the full-resolution density on each test image: mean and 95 % interval."""
    from ..evaluation import ci95
    from ..metrics import evaluate

    per: dict[str, list[float]] = {}
    # one intra-op thread, as in FixationModel.forward: the scores do not depend on the core count
    with torch.no_grad(), one_intra_op_thread():
        for name in names:
            item = dataset[name]
            if len(item) == 0:
                continue
            logd = readout.log_density([f[None].float() for f in feats[name]], item.shape)[0].numpy()
            smap = np.exp(logd.astype(np.float64) - float(logd.max()))
            vals = evaluate(smap, item.points(), metrics=metrics, rng=0, nan_policy="propagate")
            for k, v in vals.items():
                per.setdefault(k, []).append(float(v))
    out = {}
    for k, vs in per.items():
        mean, lo, hi = ci95(vs)
        out[k] = {"mean": mean, "ci95": [lo, hi], "n": len(vs)}
    return out
