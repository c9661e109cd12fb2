"""What every sub-command shares: input iteration with a progress bar and per-input error lines."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import OutputExistsError, SalienceError

T = TypeVar("T")


def progress(items: Sequence[T], desc: str, *, unit: str = "image") -> Iterator[T]:
    """Iterate ``items`` with a tqdm progress bar on stderr when there is more than one."""
    if len(items) <= 1:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def emit(line: str, *, file=None) -> None:
    """Print one line without breaking a progress bar (through ``tqdm.write`` while tqdm is in use)."""
    file = file if file is not None else sys.stdout
    tq = sys.modules.get("tqdm")
    if tq is not None and getattr(tq.tqdm, "_instances", None):
        tq.tqdm.write(line, file=file)
    else:
        print(line, file=file)


def error_line(source: object, exc: BaseException) -> str:
    return f"salience: {source}: {exc}"


def for_each_input(
    inputs: Sequence[str], work: Callable[[str], None], *, desc: str
) -> int:
    """Run ``work`` on every input; report each failure on one stderr line and carry on.

    Returns the exit code: 0 when all succeeded, 1 when any failed (a summary line names them).
    """
    failed: list[str] = []
    for item in progress(list(inputs), desc):
        try:
            work(item)
        except SalienceError as exc:
            failed.append(item)
            emit(error_line(item, exc), file=sys.stderr)
    if failed:
        n = len(inputs)
        print(f"salience: {len(failed)} of {n} input(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def output_stem(path: str, used: dict[str, int]) -> str:
    """A file stem for an input, unique within one run (``photo``, ``photo-2``, ...)."""
    stem = Path(path).stem or "image"
    n = used.get(stem, 0) + 1
    used[stem] = n
    return stem if n == 1 else f"{stem}-{n}"


# ---- what the model-based commands (explain, audit) share ------------------------------------------


def add_model_arguments(p, *, default_method: str) -> None:
    """Arguments of every command that explains a model: inputs, model, weights, methods, target, layer,
    output folder, overwrite, device and the pixel limit."""
    from ..io import DEFAULT_MAX_PIXELS

    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default="mobilenet_v2",
                   help="mobilenet_v2 (default, bundled weights), efficientnet_lite0, or a torchvision name "
                        "with --weights")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="checkpoint (state dict .pth/.pt, or .safetensors); never unpickles code")
    p.add_argument("--method", "-m", default=default_method,
                   help=f"method(s), comma-separated (default {default_method})")
    p.add_argument("--target", default="top1", help="top1 (default), topK, a class index or a class name")
    p.add_argument("--layer", default=None, help="target layer for CAM methods (default: the model's)")
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")


def explanation_methods(spec: str) -> list[str]:
    """Registry names of a comma-separated ``--method`` value; bottom-up names are pointed to ``map``."""
    from ..registry import EXPLANATION, method_list

    return method_list(spec, EXPLANATION,
                       wrong_kind_hint="; use `salience map IMAGE --method ...` for bottom-up methods")


def bottom_up_methods(spec: str) -> list:
    """Registry rows of a comma-separated ``--method`` value; explanation names are pointed to ``explain``."""
    from ..registry import BOTTOM_UP, get_method, method_list

    names = method_list(spec, BOTTOM_UP,
                        wrong_kind_hint="; use `salience explain IMAGE --method ...` for model explanations")
    return [get_method(n) for n in names]


def refuse_overwrite(paths: Sequence[Path], overwrite: bool) -> None:
    """The CLI's one "refuse to overwrite" rule: unless ``overwrite``, an :class:`OutputExistsError` naming
    every output that exists already, raised before anything is computed or written."""
    if overwrite:
        return
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing:
        raise OutputExistsError(
            f"{len(existing)} output file(s) exist already ({', '.join(p.name for p in existing)}); "
            "pass --overwrite to replace them, or choose another --out"
        )


def load_model_for(args):
    """The model named by ``--model/--weights`` on ``--device``, with the device checked first."""
    from ..errors import InputError

    device = str(args.device)
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"--device must be cpu or cuda, got {args.device!r}")
    from ..attribution.models import load_model

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return load_model(args.model, weights=args.weights, device=args.device)


def parse_target(lm: Any, spec: Any) -> Any:
    """``--target``: ``top1``/``top-k`` (kept as text), a class index, or a class name of ``lm.class_names``
    (a :class:`~salience.errors.ModelError` with close matches when there is none)."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        return spec
    s = spec.strip()
    low = s.lower().replace(" ", "")
    if low.startswith("top") or low == "argmax":
        return s
    if s.lstrip("-").isdigit():
        return int(s)
    return lm.class_index(s)
