"""What a batch run is made of: the inputs (folders, globs, list files), and one job per image and method.

A job is identified by a key: a hash of the input's path relative to the output folder's structure, the
method, its parameters and, for explanations, the model, weights, target and layer.  Changing any of these
makes a different job (a new row, new output files), never a skip.  Output paths keep the input folder
structure: ``photos/a/cat.jpg`` given as part of the folder ``photos`` becomes ``OUT/a/cat_<method>.png``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError
from ..registry import EXPLANATION, get_method, method_list, parse_param_specs

__all__ = ["IMAGE_SUFFIXES", "Item", "Spec", "Job", "expand_inputs", "make_jobs", "config_tag"]

#: file name endings taken from a folder or a glob (case-insensitive); a list file may name any file
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm")
#: an input ending so is a list file: one image path per line (relative paths: from the list's folder)
LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class Item:
    """One input image: its path and its path relative to the output folder (POSIX, without suffix)."""

    path: str
    rel: str


@dataclass(frozen=True)
class Spec:
    """The settings a job's result depends on (besides the image): method, parameters, model."""

    method: str
    params: tuple[tuple[str, Any], ...] = ()
    model: str | None = None
    weights: str | None = None
    target: str | None = None
    layer: str | None = None

    def identity(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method, "params": [list(p) for p in self.params]}
        if get_method(self.method).kind == EXPLANATION:
            d.update(model=self.model, weights=self.weights, target=self.target, layer=self.layer)
        return d


@dataclass(frozen=True)
class Job:
    """One image and one method: the unit of the manifest (one row) and of resuming."""

    item: Item
    spec: Spec
    key: str
    outputs: dict[str, str] = field(hash=False, compare=False)  # format -> path relative to the out folder


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_tag(spec: Spec) -> str:
    """'' for a method with its defaults (and, for explanations, the default model, top-1 target and the
    model's layer); else ``@`` and 8 hex digits of the settings' hash, so different settings never share
    an output file.

    >>> config_tag(Spec("itti")), config_tag(Spec("itti", params=(("sigma", 2.0),)))[:1]
    ('', '@')
    """
    ident = spec.identity()
    default = not ident["params"] and ident.get("model", "mobilenet_v2") in (None, "mobilenet_v2") \
        and ident.get("weights") is None and ident.get("target") in (None, "top1") and ident.get("layer") is None
    if default:
        return ""
    return "@" + hashlib.sha256(_canonical(ident).encode()).hexdigest()[:8]


def job_key(rel: str, spec: Spec) -> str:
    return hashlib.sha256(_canonical({"rel": rel, **spec.identity()}).encode()).hexdigest()[:20]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _strip(rel: PurePosixPath) -> str:
    return str(rel.with_suffix("")) if rel.suffix else str(rel)


def expand_inputs(inputs: Sequence[str | os.PathLike], *, exclude: Sequence[str | os.PathLike] = ()) -> list[Item]:
    """The images named by ``inputs``: folders (searched recursively for image files), globs (``**``
    allowed), list files (``.txt``/``.lst``: one path per line, ``#`` comments) and image files.

    The relative output path keeps the structure below a folder (or below a glob's fixed part, or below
    a list file's folder); a single file keeps its name only.  Two inputs that would share an output
    path get ``-2``, ``-3``, ... in the order given.  Sorted within each input, so runs are reproducible.

    Images inside a folder of ``exclude`` (a run's own output folder, when it lies below an input folder)
    are left out of folders and globs, so a second run does not take the first run's maps for inputs.

    Raises :class:`~salience.errors.InputError` for an input that names nothing.
    """
    skip = [Path(x).resolve() for x in exclude]

    def kept(f: str | Path) -> bool:
        r = Path(f).resolve()
        return not any(r == s or s in r.parents for s in skip)

    found: list[tuple[str, PurePosixPath]] = []
    for raw in inputs:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            base = p
            files = sorted(f for f in p.rglob("*") if f.is_file() and _is_image(f.name)
                           and not any(part.startswith(".") for part in f.relative_to(p).parts) and kept(f))
            found += [(str(f), PurePosixPath(f.relative_to(base).as_posix())) for f in files]
        elif p.is_file() and text.lower().endswith(LIST_SUFFIXES):
            found += _read_list(p)
        elif p.is_file():
            found.append((text, PurePosixPath(p.name)))
        elif glob.has_magic(text):
            fixed = []
            for part in Path(text).parts:
                if glob.has_magic(part):
                    break
                fixed.append(part)
            base = Path(*fixed) if fixed else Path(".")
            files = sorted(f for f in glob.glob(text, recursive=True)
                           if os.path.isfile(f) and _is_image(f) and kept(f))
            if not files:
                raise InputError(f"the pattern {text!r} matches no image file")
            found += [(f, PurePosixPath(Path(os.path.relpath(f, base)).as_posix())) for f in files]
        else:
            raise InputError(f"{text}: no such file, folder or pattern; give image files, folders, globs or a "
                             "list file (.txt, one path per line)")
    items: list[Item] = []
    used: dict[str, int] = {}
    for path, rel in found:
        stem = _strip(rel)
        if stem.startswith("../") or stem.startswith("/"):
            stem = _strip(PurePosixPath(rel.name))
        n = used.get(stem, 0) + 1
        used[stem] = n
        items.append(Item(path=path, rel=stem if n == 1 else f"{stem}-{n}"))
    if not items:
        raise InputError("no image found in the inputs (image files end in " + ", ".join(IMAGE_SUFFIXES) + ")")
    return items


def _read_list(path: Path) -> list[tuple[str, PurePosixPath]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list file ({exc})") from None
    out = []
    base = path.parent
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        f = Path(s) if os.path.isabs(s) else base / s
        try:
            rel = PurePosixPath(f.resolve().relative_to(base.resolve()).as_posix())
        except ValueError:
            rel = PurePosixPath(f.name)
        out.append((str(f), rel))  # a missing file becomes a failed row, not a refused run
    return out


def parse_params(pairs: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--param [METHOD.]NAME=VALUE`` items -> ``{method: {name: value}}`` for the methods that get any,
    read as the CLI's other commands read them (:func:`salience.registry.parse_param_specs`).

    >>> parse_params(["spectral-residual.sigma=2", "combination=max"], ["spectral-residual", "itti"])
    {'spectral-residual': {'sigma': 2}, 'itti': {'combination': 'max'}}
    """
    out = parse_param_specs(pairs, [get_method(m).name for m in methods])
    return {m: p for m, p in out.items() if p}


def make_specs(methods: Any, params: dict[str, dict[str, Any]] | None = None, *, model: str = "mobilenet_v2",
               weights: str | None = None, target: str | None = "top1", layer: str | None = None) -> list[Spec]:
    """One :class:`Spec` per method (registry names, aliases accepted), with its parameters."""
    names = method_list(methods)
    params = {get_method(k).name: v for k, v in (params or {}).items()}
    extra = set(params) - set(names)
    if extra:
        raise InputError(f"parameters given for {', '.join(sorted(extra))}, which is not among the methods")
    specs = []
    for n in names:
        p = params.get(n, {})
        if not isinstance(p, dict):
            raise InputError(f"the parameters of {n} must be a mapping name -> value, got {type(p).__name__}")
        p = _checked_params(n, p)
        specs.append(Spec(method=n, params=tuple(sorted(p.items())), model=model,
                          weights=None if weights is None else os.path.abspath(weights),
                          target=None if target is None else str(target), layer=layer))
    return specs


def _checked_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse a parameter the method does not take; drop those equal to the method's default (the same
    job as leaving them out)."""
    import inspect

    try:
        sig = inspect.signature(get_method(method).load())
    except (ImportError, ValueError, TypeError):  # torch missing: checked when the method runs
        return dict(params)
    named = {k: v for k, v in sig.parameters.items()
             if v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}
    open_ = any(v.kind == v.VAR_KEYWORD for v in sig.parameters.values())
    reserved = {"image", "model", "images", "target", "layer"}
    out = {}
    for k, v in params.items():
        if k in reserved or (k not in named and not open_):
            known = ", ".join(k2 for k2 in named if k2 not in reserved) or "none"
            raise InputError(f"{method} has no parameter {k!r}; its parameters: {known}")
        d = named[k].default if k in named else inspect.Parameter.empty
        if d is not inspect.Parameter.empty and type(d) in (int, float, bool, str) and v == d \
                and (type(v) is type(d) or (isinstance(v, (int, float)) and isinstance(d, (int, float))
                                            and not isinstance(v, bool) and not isinstance(d, bool))):
            continue
        out[k] = v
    return out


FORMATS = {"png": ("png",), "npy": ("npy",), "both": ("png", "npy")}


def make_jobs(items: Sequence[Item], specs: Sequence[Spec], fmt: str = "png") -> list[Job]:
    """Every method for every image, in image order."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be png, npy or both, got {fmt!r}")
    jobs = []
    for it in items:
        for s in specs:
            stem = f"{it.rel}_{s.method}{config_tag(s)}"
            outputs = {f: f"{stem}.{f}" for f in FORMATS[fmt]}
            jobs.append(Job(item=it, spec=s, key=job_key(it.rel, s), outputs=outputs))
    return jobs
