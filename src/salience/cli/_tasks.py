"""What ``salience segment`` and ``salience crop`` share: the map options (any registry method, with a
model for explanation methods) and the per-input output check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError
from ..io import DEFAULT_MAX_PIXELS


def add_map_arguments(p, *, default_method: str, default_note: str = "") -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, TIFF, BMP, WebP, ...)")
    p.add_argument("--method", "-m", default=default_method,
                   help=f"any registry method, bottom-up or explanation (default {default_method}{default_note}; "
                        "`salience methods` lists them)")
    p.add_argument("--blur", type=float, default=0.0, metavar="F",
                   help="bottom-up only: blur the map by a Gaussian of sigma F x image width (default 0)")
    p.add_argument("--centre-bias", "--center-bias", dest="centre_bias", type=float, default=0.0, metavar="W",
                   help="bottom-up only: (1-W) * map + W * centre Gaussian (default 0)")
    p.add_argument("--model", default="mobilenet_v2", help="explanation methods: the model (default mobilenet_v2)")
    p.add_argument("--weights", metavar="PATH", default=None, help="explanation methods: a checkpoint")
    p.add_argument("--target", default=None, help="explanation methods: top1 (default), a class index or name")
    p.add_argument("--layer", default=None, help="explanation methods: the CAM layer (default: the model's)")
    p.add_argument("--device", default="cpu", help="explanation methods: cpu (default) or cuda")
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR", help="output folder (default salience-out)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")


def map_kwargs(args) -> tuple[str, dict[str, Any]]:
    """The method's registry name and the keyword arguments for ``image_and_map``-based functions."""
    from ..registry import EXPLANATION, get_method

    m = get_method(args.method)
    if m.kind == EXPLANATION:
        if args.blur or args.centre_bias:
            raise InputError(f"--blur and --centre-bias apply to bottom-up methods; {m.name!r} explains a model")
        from ._common import load_model_for

        return m.name, {"model": load_model_for(args), "target": args.target, "layer": args.layer}
    for opt in ("weights", "target", "layer"):
        if getattr(args, opt) is not None:
            raise InputError(f"--{opt} applies to explanation methods; {m.name!r} is bottom-up")
    kw: dict[str, Any] = {}
    if args.blur:
        kw["blur"] = args.blur
    if args.centre_bias:
        kw["centre_bias"] = args.centre_bias
    return m.name, kw


def check_free(targets: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in targets if p.exists()]
    if existing:
        raise OutputExistsError(
            f"{len(existing)} output file(s) exist already ({', '.join(p.name for p in existing)}); "
            "pass --overwrite to replace them, or choose another --out"
        )


def json_bytes(obj: Any) -> bytes:
    import json

    return (json.dumps(obj, indent=2) + "\n").encode()
