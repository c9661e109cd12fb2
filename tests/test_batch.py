"""salience batch / salience.batch.run: layout, manifest, failures, resume, changed parameters, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience
import salience.batch
from salience.batch.jobs import expand_inputs
from salience.batch.manifest import JOURNAL, read_records
from salience.cli import main

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.floor(np.asarray(arr) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def tree(tmp_path, photos):
    """in/x/astronaut.png, in/x/coffee.png, in/y/chelsea.jpg-as-png, in/y/broken.png (not an image)."""
    root = tmp_path / "in"
    _write(root / "x" / "astronaut.png", photos["astronaut"])
    _write(root / "x" / "coffee.png", photos["coffee"])
    _write(root / "y" / "chelsea.png", photos["chelsea"])
    (root / "y" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _rows(table):
    return table.to_pylist()


def test_layout_manifest_and_a_bad_image(tree, tmp_path):
    """A batch run writes the folder layout and one manifest row per image and method, with stats equal to the files,
    and fails a bad image alone."""
    out = tmp_path / "out"
    t = salience.batch.run([tree], "spectral-residual,frequency-tuned", out=out, format="both")
    rows = _rows(t)
    assert len(rows) == 4 * 2  # one row per image and method
    assert [r["rel"] for r in rows[::2]] == ["x/astronaut", "x/coffee", "y/broken", "y/chelsea"]
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] != "ok"]
    assert len(ok) == 6 and {r["rel"] for r in bad} == {"y/broken"}
    assert all("not an image" in r["error"] for r in bad) and all(r["png"] for r in bad)
    assert not (out / "y" / "broken_spectral-residual.png").exists()
    for r in ok:
        arr = np.load(out / r["npy"])
        png = np.asarray(Image.open(out / r["png"]))
        assert arr.dtype == np.float32 and arr.shape == png.shape == (r["height"], r["width"])
        assert r["min"] == pytest.approx(float(arr.min())) and r["max"] == pytest.approx(float(arr.max()))
        assert r["mean"] == pytest.approx(float(arr.mean()), rel=1e-5)
        assert 0 < r["entropy"] <= 8 and 0 < r["com_x"] < 1 and 0 < r["com_y"] < 1
        assert r["top_class"] is None and r["seconds"] > 0
    # the map is the one salience.saliency_map gives for the same file
    ref = salience.saliency_map(str(tree / "x" / "coffee.png"), "spectral-residual")
    np.testing.assert_allclose(np.load(out / "x" / "coffee_spectral-residual.npy"), ref, atol=1e-6)
    import pyarrow.parquet as pq

    on_disk = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [(r["key"], r["status"]) for r in on_disk] == [(r["key"], r["status"]) for r in rows]


def test_rerun_skips_and_a_changed_parameter_is_a_new_job(tree, tmp_path):
    """A rerun skips finished jobs without touching them; a changed parameter is a new @hash job, a default value is
    not."""
    out = tmp_path / "out"
    first = _rows(salience.batch.run([tree / "x"], "spectral-residual", out=out))
    png = out / "astronaut_spectral-residual.png"
    stamp = png.stat().st_mtime_ns
    s = salience.batch.RunSummary()
    again = _rows(salience.batch.run([tree / "x"], "spectral-residual", out=out, summary=s))
    assert s.skipped == 2 and s.done == 0 and png.stat().st_mtime_ns == stamp
    assert [r["key"] for r in again] == [r["key"] for r in first]
    s = salience.batch.RunSummary()
    changed = _rows(salience.batch.run([tree / "x"], "spectral-residual", out=out, summary=s,
                                       params={"spectral-residual": {"sigma": 3.0}}))
    assert s.done == 2 and s.skipped == 0
    assert {r["key"] for r in changed}.isdisjoint(r["key"] for r in first)
    tagged = out / changed[0]["png"]
    assert "@" in tagged.name and tagged.exists() and png.stat().st_mtime_ns == stamp
    assert not np.array_equal(np.asarray(Image.open(tagged)), np.asarray(Image.open(png)))
    import pyarrow.parquet as pq

    assert pq.read_table(out / "manifest.parquet").num_rows == 4  # both jobs' rows are kept
    s = salience.batch.RunSummary()  # a parameter at its default value is the same job as leaving it out
    salience.batch.run([tree / "x"], "spectral-residual", out=out, summary=s,
                       params={"spectral-residual": {"sigma": 8}})
    assert s.skipped == 2 and s.done == 0
    from salience.errors import InputError

    with pytest.raises(InputError, match="no parameter 'sigmaa'"):
        salience.batch.run([tree / "x"], "spectral-residual", out=out, params={"spectral-residual": {"sigmaa": 1}})


def test_globs_lists_and_same_names(tree, tmp_path):
    """Globs, list files and plain paths expand in order, with same-named images made unique; a missing input is
    refused."""
    lst = tmp_path / "list.txt"
    lst.write_text("# two images\nin/x/coffee.png\n\nin/y/chelsea.png\n")
    items = expand_inputs([str(tree / "x" / "*.png"), lst, tree / "x" / "coffee.png"])
    assert [i.rel for i in items] == ["astronaut", "coffee", "in/x/coffee", "in/y/chelsea", "coffee-2"]
    from salience.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "nothing"])


def test_cli_exit_status_and_summary(tree, tmp_path, capsys):
    """`salience batch` exits 1 with the failed file named, 0 once it is gone (done before), 2 on usage errors."""
    out = tmp_path / "out"
    code = main(["batch", str(tree), "--method", "frequency-tuned", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 1
    assert "1 of 4 job(s) failed" in cap.err and "broken.png" in cap.err
    assert "3 done now" in cap.out
    os.unlink(tree / "y" / "broken.png")
    assert main(["batch", str(tree), "--method", "frequency-tuned", "--out", str(out)]) == 0
    assert "3 done before" in capsys.readouterr().out
    assert main(["batch", str(tree), "--method", "nope", "--out", str(out)]) == 2
    assert main(["batch", str(tree), "--method", "itti", "--param", "gradcam.x=1", "--out", str(out)]) == 2


def test_partial_journal_line_and_stale_temp_file(tree, tmp_path):
    """What SIGKILL can leave: a journal line cut short and a temporary file; the re-run repairs both."""
    import shutil

    first = tmp_path / "first"
    salience.batch.run([tree / "x"], "spectral-residual", out=first)
    out = tmp_path / "out"  # a folder this process never wrote into, as for the process of a re-run
    shutil.copytree(first, out)
    journal = out / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while appending the 2nd record
    victim = out / "coffee_spectral-residual.png"
    good = victim.read_bytes()
    victim.unlink()
    tmp = out / ".coffee_spectral-residual.png.abcd1234.salience.tmp"
    tmp.write_bytes(good[:10])  # killed while writing the file
    assert len(read_records(out)) == 1
    s = salience.batch.RunSummary()
    salience.batch.run([tree / "x"], "spectral-residual", out=out, summary=s)
    assert s.done == 1 and s.skipped == 1
    assert victim.read_bytes() == good and not tmp.exists()
    recs = [json.loads(x) for x in journal.read_bytes().splitlines()]  # every line parses again
    assert len(recs) == 2 and len({r["key"] for r in recs}) == 2


@pytest.mark.slow  # ~60 s on the loaded 2-core machine (model loaded twice, six Grad-CAMs)
def test_explanations_batched_through_one_model(tmp_path, photos):
    """Explanations run in batches through one model give the single-image maps and top class."""
    pytest.importorskip("torch")
    root = tmp_path / "in"
    _write(root / "a.png", photos["astronaut"])  # 128 x 128
    _write(root / "b.png", photos["rocket"])     # another size: its own group in the batch
    _write(root / "c.png", photos["chelsea"])
    t = _rows(salience.batch.run([root], "gradcam,spectral-residual", out=tmp_path / "out", batch_size=3,
                                 format="npy"))
    grad = [r for r in t if r["method"] == "gradcam"]
    assert [r["status"] for r in t] == ["ok"] * 6
    lm = salience.load_model()
    for r in grad:
        img = salience.load_image(r["input"])
        ref = salience.saliency_map(img, "gradcam", model=lm)
        got = np.load(tmp_path / "out" / r["npy"])
        np.testing.assert_allclose(got, ref, atol=2e-3)  # batched vs one image: float rounding only
        top = lm.top_k(lm.preprocess(img, crop=False), 1)[0][0]
        assert (r["top_class"], r["top_name"]) == (top[0], top[1]) and r["top_prob"] == pytest.approx(top[2], abs=1e-4)
    assert all(r["top_class"] is None for r in t if r["method"] == "spectral-residual")


def test_two_workers_same_bytes_as_one(tree, tmp_path):
    """Two worker processes write byte-identical files and the same rows as one."""
    os.unlink(tree / "y" / "broken.png")
    a = _rows(salience.batch.run([tree], "spectral-residual,frequency-tuned", out=tmp_path / "a", workers=1))
    b = _rows(salience.batch.run([tree], "spectral-residual,frequency-tuned", out=tmp_path / "b", workers=2))
    assert [(r["key"], r["status"]) for r in a] == [(r["key"], r["status"]) for r in b]
    for r in a:
        assert (tmp_path / "a" / r["png"]).read_bytes() == (tmp_path / "b" / r["png"]).read_bytes()


# ---- SIGKILL of a real run ------------------------------------------------------------------------------


def _cli(args, env):
    return [sys.executable, "-m", "salience", "batch", *args]


@pytest.mark.slow
def test_sigkill_at_several_points_then_rerun_finishes(tmp_path, photos):
    """Kill a real `salience batch` (2 worker processes) at several moments; each re-run continues, and
    the last leaves every job exactly once in the manifest, with the bytes of an uninterrupted run and
    no temporary file."""
    root = tmp_path / "in"
    names = sorted(photos)
    for i in range(8):
        _write(root / f"d{i % 2}" / f"{names[i % len(names)]}{i}.png", photos[names[i % len(names)]])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [str(root), "--method", "itti,spectral-residual", "--workers", "2", "--format", "both"]
    ref = tmp_path / "ref"
    subprocess.run(_cli(args + ["--out", str(ref)], env), env=env, check=True, capture_output=True, timeout=240)
    out = tmp_path / "out"
    journal = out / JOURNAL
    kills = 0
    for wait_lines in (0, 3, 9):  # at start-up, early, late
        proc = subprocess.Popen(_cli(args + ["--out", str(out)], env), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            n = journal.read_bytes().count(b"\n") if journal.exists() else 0
            if n >= wait_lines:
                break
            time.sleep(0.02)
        if wait_lines == 0:
            time.sleep(1.5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, like a power cut
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 2  # the run was really cut (not finished before the kill)
    done = subprocess.run(_cli(args + ["--out", str(out)], env), env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(rows) == 16 and len({r["key"] for r in rows}) == 16 and {r["status"] for r in rows} == {"ok"}
    ref_files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file() and ".salience-batch" not in p.parts)
    out_files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and ".salience-batch" not in p.parts)
    assert out_files == ref_files  # nothing missing, nothing extra (no temporary file left)
    for rel in ref_files:
        if rel.suffix == ".png":
            assert (out / rel).read_bytes() == (ref / rel).read_bytes(), rel
        elif rel.suffix == ".npy":  # spectral-residual differs by 1 ulp between processes (not batch's doing)
            np.testing.assert_allclose(np.load(out / rel), np.load(ref / rel), rtol=0, atol=1e-6, err_msg=str(rel))


def test_engine_ray_without_ray_says_how_to_install(tree, tmp_path, monkeypatch, capsys):
    """--engine ray without Ray says how to install it and writes nothing."""
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code = main(["batch", str(tree / "x"), "--method", "frequency-tuned", "--engine", "ray", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "pip install 'salience[ray]'" in err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tmp_path):
    """`salience batch photos/ --out photos/maps`: the second run finds its own maps under the input folder
    and must not take them for new images (nor would a third, from its maps' maps); a summary passed to
    both runs says what the last one did."""
    photos = tmp_path / "photos"
    photos.mkdir()
    img = np.zeros((32, 40, 3), np.uint8)
    img[8:20, 10:24] = 255
    Image.fromarray(img).save(photos / "a.png")
    s = salience.batch.RunSummary()
    salience.batch.run([photos], "spectral-residual", out=photos / "maps", summary=s)
    assert (s.total, s.done) == (1, 1)
    salience.batch.run([photos], "spectral-residual", out=photos / "maps", summary=s)
    assert (s.total, s.skipped, s.done) == (1, 1, 0)
    assert sorted(p.name for p in (photos / "maps").glob("*.png")) == ["a_spectral-residual.png"]
    # without the exclusion the folder holds two images: the photo and the map
    assert len(expand_inputs([photos])) == 2 and len(expand_inputs([photos], exclude=[photos / "maps"])) == 1
