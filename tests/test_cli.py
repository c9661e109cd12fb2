"""The `salience` command: map, methods, demo, --help, --version; exit codes and error lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience
from salience.cli import main
from salience.registry import BOTTOM_UP, method_names, methods


@pytest.fixture()
def two_photos(tmp_path, photos):
    paths = []
    for name in ("coffee", "chelsea"):
        p = tmp_path / f"{name}.png"
        Image.fromarray(np.floor(photos[name] * 255 + 0.5).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def _no_temp_files(folder: Path):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_version(capsys):
    """--version prints the package version and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"salience {salience.__version__}"


def test_help_lists_commands_and_examples(capsys):
    """--help lists the sub-commands and shows examples."""
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("map", "methods", "demo"):
        assert cmd in out
    assert "examples:" in out


def test_map_help_has_examples_and_lists_registry_methods(capsys):
    """map --help shows examples and every bottom-up method of the registry."""
    with pytest.raises(SystemExit):
        main(["map", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "examples:" in out and "--overwrite" in out
    for name in method_names(BOTTOM_UP):
        assert name in out


def test_no_command_prints_help_and_exits_2(capsys):
    """No sub-command prints the usage and exits 2."""
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_methods_lists_every_registry_name(capsys):
    """salience methods prints every registry name with its paper."""
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for m in methods():
        assert m.name in out and m.paper in out


def test_map_writes_every_requested_output(tmp_path, two_photos, capsys):
    """map writes the map, overlay, npy, panel and scanpath files asked for, for every input."""
    out = tmp_path / "out"
    code = main(["map", *map(str, two_photos), "--method", "itti,spectral-residual", "--out", str(out),
                 "--overlay", "--npy", "--panel", "--scanpath", "3"])
    assert code == 0
    cap = capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    for stem in ("coffee", "chelsea"):
        for method in ("itti", "spectral-residual"):
            for suffix in (".png", "_overlay.png", ".npy", "_scanpath.png"):
                assert f"{stem}_{method}{suffix}" in names
        assert f"{stem}_itti_panel.png" in names
    assert "spectral-residual_panel.png" not in " ".join(names)
    assert _no_temp_files(out) == []
    # the .npy is the map, the .png its 8-bit picture, both at the input's size
    arr = np.load(out / "coffee_itti.npy")
    png = np.asarray(Image.open(out / "coffee_itti.png"))
    assert arr.dtype == np.float32 and arr.shape == png.shape == Image.open(two_photos[0]).size[::-1]
    np.testing.assert_array_equal(png, salience.io.map_to_uint8(arr))
    np.testing.assert_allclose(arr, salience.saliency_map(two_photos[0], "itti"), atol=1e-6)
    # where it wrote, and the attended points
    assert str(out) in cap.out and "itti scanpath: 1." in cap.out
    assert cap.out.count("scanpath:") == 4


def test_map_default_method_and_folder(tmp_path, two_photos, monkeypatch):
    """Without options map writes the Itti-Koch map into salience-out/."""
    monkeypatch.chdir(tmp_path)
    assert main(["map", str(two_photos[0])]) == 0
    assert sorted(p.name for p in (tmp_path / "salience-out").iterdir()) == ["coffee_itti.png"]


def test_one_error_line_per_bad_input_while_good_inputs_complete(tmp_path, two_photos, capsys):
    """Each bad input gets one error line, the good ones are written, and the exit code is 1."""
    missing = tmp_path / "missing.jpg"
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    out = tmp_path / "out"
    code = main(["map", str(missing), str(two_photos[0]), str(text), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("salience: ") and "failed" not in line]
    assert len(errors) == 2
    assert str(missing) in errors[0] and "does not exist" in errors[0]
    assert str(text) in errors[1] and "not an image" in errors[1]
    assert "2 of 3 input(s) failed" in err[-1]
    assert (out / "coffee_itti.png").exists()


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, two_photos, capsys):
    """Existing outputs are never replaced without --overwrite."""
    out = tmp_path / "out"
    target = out / "coffee_frequency-tuned.png"
    out.mkdir()
    target.write_bytes(b"keep me")
    code = main(["map", *map(str, two_photos), "-m", "frequency-tuned", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "exist already" in err and "--overwrite" in err and str(two_photos[0]) in err
    assert target.read_bytes() == b"keep me"
    assert (out / "chelsea_frequency-tuned.png").exists()  # the other input still completed
    assert main(["map", *map(str, two_photos), "-m", "frequency-tuned", "--out", str(out), "--overwrite"]) == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    assert _no_temp_files(out) == []


def test_too_large_input_is_refused_with_the_flag_to_raise_the_limit(tmp_path, two_photos, capsys):
    """An image over --max-pixels is refused with a message naming the flag; 0 lifts the limit."""
    code = main(["map", str(two_photos[0]), "--out", str(tmp_path / "o"), "--max-pixels", "100"])
    assert code == 1
    assert "--max-pixels" in capsys.readouterr().err
    assert main(["map", str(two_photos[0]), "--out", str(tmp_path / "o"), "--max-pixels", "0"]) == 0


@pytest.mark.parametrize("argv,match", [
    (["--method", "itty"], "did you mean 'itti'"),
    (["--method", "spectral-residual", "--panel"], "--panel"),
    (["--alpha", "2"], "--alpha"),
    (["--cmap", "nope"], "--cmap"),
    (["--scanpath", "-1"], "--scanpath"),
    (["--method", ","], "empty"),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, two_photos, capsys, argv, match):
    """Bad options exit 2 with one error line and write nothing."""
    code = main(["map", str(two_photos[0]), "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("salience: error:") and match in err[0]
    assert not (tmp_path / "o").exists()


def test_explanation_method_is_pointed_to_salience_explain(tmp_path, two_photos, capsys):
    """An explanation method given to map is refused with a pointer to salience explain."""
    names = method_names("explanation")
    if not names:
        pytest.skip("no explanation methods registered")
    assert main(["map", str(two_photos[0]), "--method", names[0], "--out", str(tmp_path)]) == 2
    assert "salience explain" in capsys.readouterr().err


def test_same_stem_twice_gets_distinct_outputs(tmp_path, photos):
    """Two inputs with the same file stem get distinct output names."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d in (a, b):
        Image.fromarray(np.floor(photos["rocket"] * 255).astype(np.uint8)).save(d / "x.png")
    assert main(["map", str(a / "x.png"), str(b / "x.png"), "-m", "centre-bias", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x-2_centre-bias.png", "x_centre-bias.png"]


def test_demo_writes_a_gallery_with_every_bottom_up_method(tmp_path, capsys, monkeypatch):
    """The bottom-up part of the demo (the explanation part is stubbed out: it has its own tests)."""
    from salience import demo
    from salience.demo import run_demo
    from salience.errors import MissingDependencyError

    def skipped(photos, out_dir):
        raise MissingDependencyError("stubbed out in this test")

    monkeypatch.setattr(demo, "demo_explanations", skipped)

    index = run_demo(tmp_path / "demo", max_side=96)
    assert index == tmp_path / "demo" / "index.html"
    page = index.read_text()
    for m in methods(BOTTOM_UP):
        assert f"<h2>{m.name}</h2>" in page
    links = [s.split("'")[0] for s in page.split("src='")[1:]]
    assert links and all(not Path(link).is_absolute() and (index.parent / link).exists() for link in links)
    assert "itti_panel.png" in page and "itti_scanpath.png" in page
    out = capsys.readouterr().out
    assert str(index) in out and "explanations" in out
    assert _no_temp_files(index.parent) == []


def test_demo_adds_explanation_entries_from_the_hook(tmp_path, monkeypatch):
    """run_demo renders the entries that salience.demo.demo_explanations returns."""
    from salience import demo

    def fake(photos, out_dir):
        assert set(photos) >= {"astronaut", "coffee"} and all(p.dtype == np.float32 for p in photos.values())
        (out_dir / "x.png").write_bytes(b"")
        return [{"section": "Grad-CAM", "title": "cat", "path": "x.png", "caption": "a caption"}]

    monkeypatch.setattr(demo, "demo_explanations", fake)
    monkeypatch.setattr(demo, "methods", lambda kind=None: [m for m in methods(kind) if m.name == "centre-bias"])
    index = demo.run_demo(tmp_path, max_side=32, log=None)
    page = index.read_text()
    assert "<h2>Grad-CAM</h2>" in page and "a caption" in page and "src='x.png'" in page


def test_demo_reports_skipped_explanations(tmp_path, monkeypatch):
    """run_demo reports why the explanation part was skipped."""
    from salience import demo
    from salience.errors import MissingDependencyError

    def missing(photos, out_dir):
        raise MissingDependencyError("torch is not installed; pip install 'salience[torch]'")

    monkeypatch.setattr(demo, "demo_explanations", missing)
    monkeypatch.setattr(demo, "methods", lambda kind=None: [m for m in methods(kind) if m.name == "centre-bias"])
    lines = []
    demo.run_demo(tmp_path, max_side=32, log=lines.append)
    assert any(line.startswith("explanations skipped: torch is not installed") for line in lines)


def test_entry_point_runs_as_a_subprocess(tmp_path, two_photos):
    """The installed command runs; a missing input is reported on stderr, the good one written, exit 1."""
    exe = Path(sys.executable).parent / "salience"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "salience"]
    env = dict(os.environ)
    ok = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and salience.__version__ in ok.stdout
    bad = subprocess.run([*cmd, "map", str(tmp_path / "nope.png"), str(two_photos[0]), "-m", "centre-bias",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert "nope.png" in bad.stderr and "does not exist" in bad.stderr
    assert (tmp_path / "o" / "coffee_centre-bias.png").exists()
