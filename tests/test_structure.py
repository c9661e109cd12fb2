"""The import rules of ``src/salience``, checked on the syntax tree of every module (no import is run).

Layers: the parts of salience (each module or subpackage directly under ``salience/``) sit on the layers
of :data:`LAYERS`; a part imports only from lower layers.

Two kinds of private, by the leading underscore:

* an underscore **name** (``_pick``, ``_grid``) is private to its module: no other module imports it or
  reaches it as ``module._name``;
* an underscore **module** (``attribution/_base.py``, ``cli/_common.py``) is private to its
  package: only modules of the same package import from it.

A *package* is a folder with an ``__init__.py``: ``salience`` itself (its top-level modules, e.g.
``io.py``, ``viz.py``, ``demo.py``, ``_api.py``) and each subpackage (``salience.attribution``,
``salience.audit``, ``salience.bottomup``, ``salience.cli``, ``salience.metrics``); a subpackage is a
different package from its parent.  Dunder names (``__version__``, ``__all__``) are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _module_of(path: Path) -> tuple[list[str], bool]:
    """Dotted parts of a source file's module, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _is_module(parts: list[str]) -> bool:
    p = SRC.joinpath(*parts)
    return p.is_dir() or p.with_suffix(".py").is_file()


def violations(files: list[Path] | None = None) -> list[str]:
    """One line per import that breaks the rules, for every file of ``src/`` (or ``files``)."""
    out: list[str] = []
    for path in files if files is not None else sorted(SRC.rglob("*.py")):
        parts, is_init = _module_of(path)
        here = tuple(parts) if is_init else tuple(parts[:-1])
        where = f"{path.relative_to(SRC.parent)}"
        modules: dict[str, list[str]] = {}  # local name -> salience module it is bound to
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(here)[: len(here) - (node.level - 1)]
                    mod = base + (node.module.split(".") if node.module else [])
                else:
                    mod = (node.module or "").split(".")
                if mod[0] != "salience":
                    continue
                for alias in node.names:
                    full = mod + [alias.name]
                    if _is_module(full):  # `from . import viz`: a module
                        modules[alias.asname or alias.name] = full
                        target, name = full, None
                    else:
                        target, name = mod, alias.name
                    out += _check(where, node.lineno, tuple(parts), here, target, name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    full = alias.name.split(".")
                    if full[0] == "salience":
                        modules[alias.asname or full[0]] = full if alias.asname else full[:1]
                        out += _check(where, node.lineno, tuple(parts), here, full, None)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and _is_private(node.attr)):
                target = modules[node.value.id]
                if not _is_module(target + [node.attr]):
                    out += _check(where, node.lineno, tuple(parts), here, target, node.attr)
    return out


def _check(where: str, line: int, me: tuple[str, ...], here: tuple[str, ...], target: list[str],
           name: str | None) -> list[str]:
    found = []
    if name is not None and _is_private(name) and tuple(target) != me:
        found.append(f"{where}:{line}: imports the private name {name!r} of {'.'.join(target)}")
    # private modules on the way down from the importer's package: salience.attribution._base is private
    # to salience.attribution; salience._api to salience
    for i in range(1, len(target)):
        if _is_private(target[i]) and tuple(target[:i]) != here:
            found.append(f"{where}:{line}: imports {'.'.join(target)}, private to package "
                         f"{'.'.join(target[:i])}")
            break
    return found


#: The parts of salience from the bottom up: a part imports only from parts on lower layers (lazy imports
#: inside functions included).  A new part (a module or subpackage directly under salience/) gets a layer
#: here; docs/design.md draws the same picture.
LAYERS: list[set[str]] = [
    {"errors"},
    {"check", "limits"},
    {"io", "registry"},
    {"bottomup", "metrics", "viz", "journal"},     # journal: append-only JSON lines (batch, mask evaluation)
    {"attribution", "video", "targets"},          # attribution needs torch; targets: explain() targets
    {"drise"},                                    # drise: D-RISE for detectors
    {"api", "datasets"},
    {"evaluation", "__init__"},                   # __init__: the public facade
    {"tasks", "gaze", "batch"},                   # gaze: the learned fixation model; batch: whole folders
    {"audit"},                                    # audit: faithfulness, SpRAy, data-set audits (on batch runs)
    {"demo", "web"},                              # web: the HTTP service and the page
    {"cli"},
    {"__main__"},
]


def _part(parts: list[str]) -> str:
    """The part of salience a dotted module (``["salience", "attribution", "cam"]``) belongs to."""
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations() -> list[str]:
    """One line per import from a part on the same or a higher layer, or from/in an undeclared part."""
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    out: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        parts, is_init = _module_of(path)
        here = parts if is_init else parts[:-1]
        me = _part(parts)
        if me not in layer:
            out.append(f"{path.relative_to(SRC.parent)}: part {me!r} has no layer in LAYERS")
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                base = here[: len(here) - (node.level - 1)] if node.level else []
                mod = base + (node.module.split(".") if node.module else []) if node.level else \
                    (node.module or "").split(".")
                if mod[0] != "salience":
                    continue
                targets = [mod + [a.name] for a in node.names] if len(mod) == 1 else [mod]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "salience"]
            for target in targets:
                # a name, not a module, of the top package (``from .. import saliency_map``): the facade
                other = "__init__" if len(target) == 2 and not _is_module(target) else _part(target)
                if other == me:
                    continue
                if other not in layer:
                    out.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: imports undeclared part {other!r}")
                elif layer[other] >= layer[me]:
                    out.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: {me} (layer {layer[me]}) imports "
                               f"{'.'.join(target)} (layer {layer[other]})")
    return out


def test_parts_import_only_from_lower_layers():
    """Every import between parts of salience goes down the layers of LAYERS (docs/design.md)."""
    assert layer_violations() == []


def test_the_layer_checker_finds_an_upward_import(tmp_path, monkeypatch):
    """An import from a higher layer, and a part without a layer, are both reported."""
    pkg = tmp_path / "salience"
    (pkg / "attribution").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "attribution" / "__init__.py").write_text("from ..io import load_image\n")
    (pkg / "io.py").write_text("def f():\n    from .attribution import explain\n")
    (pkg / "newpart.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    found = layer_violations()
    assert len(found) == 2, found
    assert "io (layer 2) imports salience.attribution (layer 4)" in found[0], found
    assert "'newpart' has no layer" in found[1], found


def test_no_module_imports_another_packages_private_names():
    """No cross-package import of an underscore module and no cross-module use of an underscore name."""
    assert violations() == []


def test_the_checker_finds_what_it_forbids(tmp_path, monkeypatch):
    """The rule checker itself flags each kind of violation and accepts the allowed forms."""
    pkg = tmp_path / "salience"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    for f in ("__init__.py", "_api.py", "a/__init__.py", "a/_base.py", "a/one.py", "b/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "a" / "one.py").write_text("def _helper():\n    pass\n")
    bad = pkg / "b" / "user.py"
    bad.write_text("from ..a._base import thing\nfrom ..a.one import _helper\nfrom .. import _api\n"
                   "from ..a import one\none._helper()\n")
    good = pkg / "a" / "two.py"
    good.write_text("from ._base import thing\nfrom . import one\nfrom .. import __version__\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    found = violations([bad])
    assert len(found) == 4, found
    assert violations([good]) == []
