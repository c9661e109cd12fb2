"""``salience evaluate`` under hostile and untidy input (issue 17, items 8-17): each test reproduces a failure.

Bad images and maps are skipped and counted; image keys are exact; a results file that is not ours is never
touched; fixations just outside the border are clipped and counted (one rule for data sets and metrics);
shuffled AUC draws its negatives as the MIT code does; blurs relative to the image size and per-image pixels
per degree; the project's own map names; duplicated resumed rows; time units; one metric-name parser.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience.datasets as sd
import salience.evaluation as ev
from salience import metrics as M
from salience.cli import main
from salience.errors import DataError, InputError

SHARED = Path(os.environ.get("SALIENCE_SHARED_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
OSIE = SHARED / "osie"


def _images(folder: Path, names, size=(40, 30), seed=3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / n)


def _csv(path: Path, rows, header=("image", "subject", "x", "y"), encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _rows(names, n_subjects=2, size=(40, 30)):
    out = []
    for i, n in enumerate(names):
        for s in range(n_subjects):
            out += [[n, f"s{s}", 10 + i + s, 12], [n, f"s{s}", 20, 8 + s], [n, f"s{s}", size[0] / 2, size[1] / 2]]
    return out


def _bomb_png(path: Path, w: int, h: int) -> None:
    """A small PNG whose header claims ``w x h`` pixels (a decompression bomb, as far as the size goes)."""
    import struct
    import zlib

    Image.new("1", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", w, h)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    path.write_bytes(bytes(data))


def _cli(capsys, *argv):
    code = main(["evaluate", "--no-progress", "--jobs", "1", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ---- item 8: one bad image or map does not abort the run ---------------------------------------------

@pytest.mark.parametrize("jobs", [1, 2])
def test_truncated_jpeg_and_bomb_png_are_skipped_and_counted(tmp_path, jobs):
    """A truncated JPEG and a decompression-bomb PNG are skipped and reported; the other images are scored."""
    names = ["a.png", "b.png", "c.jpg", "d.png"]
    _images(tmp_path, ["a.png", "b.png", "c.jpg"])
    data = (tmp_path / "c.jpg").read_bytes()
    (tmp_path / "c.jpg").write_bytes(data[: len(data) // 3])  # the header (and size) survive
    _bomb_png(tmp_path / "d.png", 20000, 20000)  # 400 Mpx in its header: over the default pixel limit
    csv_path = _csv(tmp_path / "fix.csv", [r for r in _rows(names) if r[0] != "d.png"]
                    + [["d.png", "s0", 100, 100], ["d.png", "s1", 200, 50]])
    d = sd.load_csv(csv_path)
    res = ev.evaluate_dataset(d, "spectral-residual,chance", metrics="nss", sigma=3.0, jobs=jobs)
    assert sorted(res.skipped_images) == ["c", "d"]
    assert {r["image"] for r in res.rows} == {"a", "b"}
    assert all(m == "*" for _, m, _ in res.skipped)  # the whole image, every method
    assert any("d.png" in why or "pixels" in why for _, _, why in res.skipped)


def test_empty_npy_map_is_skipped_for_that_pair(tmp_path, capsys):
    """An empty .npy map skips its (image, maps) pair with one line; exit status 1; the rest is scored."""
    _images(tmp_path, ["a.png", "b.png"])
    csv_path = _csv(tmp_path / "fix.csv", _rows(["a.png", "b.png"]))
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "a.npy", np.zeros((0,)))
    np.save(maps / "b.npy", np.random.default_rng(0).random((30, 40)))
    code, out, err = _cli(capsys, "--dataset", f"csv:{csv_path}", "--saliency-maps", maps, "--method", "chance",
                          "--metrics", "nss", "--sigma", 3)
    assert code == 1, err
    assert "Traceback" not in err
    assert "a (maps:maps): skipped" in err and "1 image(s) skipped" in err
    assert "maps:maps" in out and "chance" in out


# ---- item 9: exact image keys ----------------------------------------------------------------------------

def test_two_images_with_one_stem_are_not_merged(tmp_path):
    """cat.jpg and cat.png both in the CSV: a clear error, not one image with both images' fixations."""
    _images(tmp_path, ["cat.jpg", "cat.png"])
    p = _csv(tmp_path / "f.csv", [["cat.jpg", "1", 3, 3], ["cat.png", "1", 5, 5]])
    with pytest.raises(DataError, match=r"line 3: cat.png and cat.jpg both have fixations.*stem"):
        sd.load_csv(p)
    q = _csv(tmp_path / "g.csv", [["cat", "1", 3, 3]])
    with pytest.raises(DataError, match=r"line 2: image 'cat' is ambiguous: cat.jpg, cat.png"):
        sd.load_csv(q)
    r = _csv(tmp_path / "h.csv", [["cat.png", "1", 5, 5]])
    assert sd.load_csv(r)["cat"].image_path.name == "cat.png"


def test_image_key_must_be_the_file_not_a_basename_elsewhere(tmp_path):
    """'other/cat.png' is not taken for the folder's cat.png."""
    _images(tmp_path, ["cat.png"])
    p = _csv(tmp_path / "f.csv", [["other/cat.png", "1", 3, 3]])
    with pytest.raises(DataError, match="unknown image 'other/cat.png'"):
        sd.load_csv(p)


# ---- item 10: results files and encodings ------------------------------------------------------------

def test_resume_never_modifies_a_file_that_is_not_ours(tmp_path):
    """A user's CSV without a final newline is refused as it was, byte for byte."""
    _images(tmp_path, ["a.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png"])))
    mine = tmp_path / "r.csv"
    content = b"name,score\nx,1\ny,2"
    mine.write_bytes(content)
    with pytest.raises(DataError, match="not a results file"):
        ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=mine, resume=True)
    assert mine.read_bytes() == content


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\x81\n", b"image,method\n\x00\x01\x02",
                                     None])
def test_resume_on_garbage_non_utf8_or_folder_is_a_clear_error(tmp_path, content):
    """Garbage, non-UTF-8 bytes or a folder as the results file: DataError, and nothing is changed."""
    _images(tmp_path, ["a.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png"])))
    out = tmp_path / "r.csv"
    if content is None:
        out.mkdir()
    else:
        out.write_bytes(content)
    with pytest.raises(DataError):
        ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=out, resume=True)
    if content is not None:
        assert out.read_bytes() == content
        with pytest.raises(DataError):
            ev.read_rows(out)


def test_our_own_cut_off_last_line_is_still_repaired(tmp_path):
    """The interrupted run's partial last row is dropped (the file is ours) and recomputed."""
    _images(tmp_path, ["a.png", "b.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png", "b.png"])))
    out = tmp_path / "r.csv"
    ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=out)
    data = out.read_bytes()
    out.write_bytes(data[:-7])
    res = ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=out, resume=True)
    assert res.resumed == 1 and res.computed == 1 and len(ev.read_rows(out)) == 2


def test_latin1_csv_is_named_or_read(tmp_path):
    """A Latin-1 byte: an error naming the line and the encoding; with encoding='latin-1' it is read; UTF-16
    with a byte-order mark is read as is."""
    _images(tmp_path, ["caf\u00e9.png"])
    rows = [["caf\u00e9.png", "s1", 3, 3], ["caf\u00e9.png", "s2", 4, 5]]
    p = _csv(tmp_path / "f.csv", rows, encoding="latin-1")
    with pytest.raises(DataError, match=r"line 2: byte 0xe9 is not valid UTF-8.*Latin-1.*encoding="):
        sd.load_csv(p)
    assert len(sd.load_csv(p, encoding="latin-1")["caf\u00e9"]) == 2
    q = _csv(tmp_path / "g.csv", rows, encoding="utf-16")
    assert len(sd.load_csv(q)["caf\u00e9"]) == 2


# ---- item 11: one rule for points outside the image ---------------------------------------------------

def test_half_a_pixel_outside_is_clipped_and_counted(tmp_path, capsys):
    """Two points half a pixel left of the border no longer refuse the data set: clipped, counted in the rows."""
    _images(tmp_path, ["a.png", "b.png"])
    rows = _rows(["a.png", "b.png"]) + [["a.png", "s0", -1.0, 10], ["a.png", "s1", -1.0, 12]]
    p = _csv(tmp_path / "f.csv", rows)
    d = sd.load_csv(p)
    assert d["a"].n_clipped == 2 and d["b"].n_clipped == 0 and d.n_clipped == 2
    assert d["a"].x.min() == 0.0
    out = tmp_path / "r.csv"
    code, _, err = _cli(capsys, "--dataset", f"csv:{p}", "--method", "chance", "--metrics", "nss", "--sigma", 3,
                        "--out", out)
    assert code == 0, err
    assert "2 fixation(s) up to one pixel outside" in err
    assert {r["image"]: r["n_clipped"] for r in ev.read_rows(out)} == {"a": 2, "b": 0}
    with pytest.raises(DataError, match="line 14: point"):
        sd.load_csv(p, outside="error")
    assert sd.load_csv(p, outside="drop")["a"].n_dropped == 2


def test_far_outside_is_an_error_naming_the_line_or_dropped(tmp_path):
    """A point 3 px outside: DataError naming the line (default), or left out with outside='drop'."""
    _images(tmp_path, ["a.png"])
    p = _csv(tmp_path / "f.csv", [["a.png", "1", 3, 3], ["a.png", "1", 43.0, 3]])
    with pytest.raises(DataError, match=r"line 3: point \(x=43, y=3\) is outside image a.png \(40 x 30\)"):
        sd.load_csv(p)
    d = sd.load_csv(p, outside="drop")
    assert len(d["a"]) == 1 and d["a"].n_dropped == 1
    with pytest.raises(DataError, match="outside must be one of"):
        sd.load_csv(p, outside="ignore")


def test_points_to_binary_and_metrics_follow_the_same_rule():
    """datasets.points_to_binary and the metrics clip within one pixel and refuse further out, alike."""
    shape = (30, 40)
    smap = np.random.default_rng(0).random(shape)
    near = np.array([[-1.2, 5.0], [40.3, 29.9], [3.0, 3.0]])
    inside = np.array([[0.0, 5.0], [39.0, 29.0], [3.0, 3.0]])
    np.testing.assert_array_equal(sd.points_to_binary(near, shape), sd.points_to_binary(inside, shape))
    assert M.nss(smap, near) == M.nss(smap, inside)  # identical pixels, the same code path
    far = np.array([[-2.0, 5.0]])
    with pytest.raises(InputError, match="outside"):
        sd.points_to_binary(far, shape)
    with pytest.raises(InputError, match="outside"):
        M.nss(smap, far)


# ---- item 12: shuffled AUC's negatives ------------------------------------------------------------------

def test_sauc_other_images_are_drawn_seeded_and_all_is_an_option(tmp_path):
    """Under mit, each image's negatives come from 10 seeded other images; 'all' keeps the old rule."""
    names = [f"i{k:02d}.png" for k in range(14)]
    _images(tmp_path, names)
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(names, n_subjects=1)))
    cfg = ev._Config(dataset=d, specs=[], metrics=("sauc",), convention="mit", blur=ev.FixationBlur(), seed=0,
                     map_files={}, sauc_others=ev.SAUC_OTHER_IMAGES)
    cfg.other = ev._normalised_fixations(d)
    a = ev._other_points(cfg, 0)
    assert a.shape == (10 * 3, 2)  # 3 fixations per image, 10 other images
    np.testing.assert_array_equal(a, ev._other_points(cfg, 0))
    cfg.sauc_others = None
    assert ev._other_points(cfg, 0).shape == (13 * 3, 2)
    r10 = ev.evaluate_dataset(d, "centre-bias", metrics="sauc", limit=3)
    r10b = ev.evaluate_dataset(d, "centre-bias", metrics="sauc", limit=3, jobs=2)
    assert [r["sauc"] for r in r10.rows] == [r["sauc"] for r in r10b.rows]
    with pytest.raises(InputError, match="sauc_others"):
        ev.evaluate_dataset(d, "centre-bias", metrics="sauc", sauc_others=0)


@pytest.mark.slow
@pytest.mark.skipif(not (OSIE / "fixations.mat").is_file(), reason=f"OSIE data not found at {OSIE}")
def test_centre_map_scores_about_half_on_osie():
    """A content-free centre map scores about 0.5 shuffled AUC on OSIE with the MIT rule (10 other images);
    the all-other-images rule scores it higher on the same images (the bias the issue measured)."""
    d = sd.load_osie(OSIE)
    ten = ev.evaluate_dataset(d, "centre-bias", metrics="sauc", limit=40, jobs=2)
    s = next(x for x in ten.summary if x.metric == "sauc")
    assert abs(s.mean - 0.5) < 0.02 and s.low < 0.5 < s.high
    every = ev.evaluate_dataset(d, "centre-bias", metrics="sauc", limit=40, jobs=2, sauc_others="all")
    diff = np.array([b["sauc"] - a["sauc"] for a, b in zip(ten.rows, every.rows, strict=True)])
    assert diff.mean() > 0.01


# ---- item 13: blur relative to the image size; pixels per degree per image -----------------------------

def test_relative_blur_scales_with_the_image_and_ppd_comes_from_the_csv(tmp_path):
    """sigma_fraction gives each image sigma = F * its larger side; sigma_deg uses each image's own ppd."""
    (tmp_path / "img").mkdir()
    _images(tmp_path / "img", ["small.png"], size=(40, 30))
    _images(tmp_path / "img", ["big.png"], size=(160, 120))
    rows = [["small.png", "s", 20, 15, 10], ["big.png", "s", 80, 60, 40]]
    p = _csv(tmp_path / "f.csv", rows, header=("image", "subject", "x", "y", "pixels_per_degree"))
    d = sd.load_csv(p, images=tmp_path / "img")
    assert d["small"].pixels_per_degree == 10 and d["big"].pixels_per_degree == 40
    cfg = ev._Config(dataset=d, specs=[], metrics=(), convention="mit",
                     blur=ev.fixation_blur(sigma_fraction=0.05), seed=0, map_files={})
    assert cfg.sigma(d["small"]) == pytest.approx(2.0) and cfg.sigma(d["big"]) == pytest.approx(8.0)
    cfg.blur = ev.fixation_blur(sigma_deg=0.5)
    assert cfg.sigma(d["small"]) == pytest.approx(5.0) and cfg.sigma(d["big"]) == pytest.approx(20.0)
    res = ev.evaluate_dataset(d, "chance", metrics="cc", sigma_fraction=0.05)
    assert {r["fixation_sigma"] for r in res.rows} == {"0.05*size"}
    with pytest.raises(InputError, match="one way"):
        ev.evaluate_dataset(d, "chance", metrics="cc", sigma=3.0, sigma_fraction=0.05)
    bad = _csv(tmp_path / "g.csv", [["small.png", "s", 1, 1, 10], ["small.png", "s", 2, 2, 12]],
               header=("image", "subject", "x", "y", "ppd"))
    with pytest.raises(DataError, match="line 3: pixels_per_degree 12"):
        sd.load_csv(bad, images=tmp_path / "img")


def test_default_blur_is_unchanged(tmp_path):
    """Without a blur option the ground truth is still the MIT benchmark's blur (label 'default')."""
    _images(tmp_path, ["a.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png"])))
    res = ev.evaluate_dataset(d, "centre-bias", metrics="cc")
    item = d["a"]
    smap = np.asarray(ev._centre_map(ev._Config(d, [], (), "mit", ev.FixationBlur(), 0, {}), item.shape))
    expected = M.cc(smap, item.density_map())
    assert res.rows[0]["fixation_sigma"] == "default"
    assert math.isclose(res.rows[0]["cc"], expected, rel_tol=1e-12)


# ---- item 14: the project's own map names ---------------------------------------------------------------

def test_maps_named_like_salience_map_npy_are_found(tmp_path):
    """`salience map --npy` writes 001_itti.npy; evaluate --saliency-maps finds it (and ignores overlays)."""
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "001_itti.npy", np.ones((3, 3)))
    Image.new("L", (3, 3)).save(maps / "001_itti_overlay.png")
    np.save(maps / "002.npy", np.ones((3, 3)))
    found, missing = sd.find_saliency_maps(maps, ["001", "002", "003"])
    assert found["001"].name == "001_itti.npy" and found["002"].name == "002.npy" and missing == ["003"]
    np.save(maps / "001_spectral-residual.npy", np.ones((3, 3)))
    with pytest.raises(DataError, match="several methods for image '001'"):
        sd.find_saliency_maps(maps, ["001"])


# ---- item 17: label, duplicated rows, time units --------------------------------------------------------

def test_table_is_labelled_with_the_data_set_spec(tmp_path, capsys):
    """The header line names the data set as given (csv:PATH), not just the CSV's file name."""
    _images(tmp_path / "lab", ["a.png"])
    p = _csv(tmp_path / "lab" / "fixations.csv", _rows(["a.png"]))
    code, out, _ = _cli(capsys, "--dataset", f"csv:{p}", "--method", "chance", "--metrics", "kl", "--sigma", 3)
    assert code == 0
    assert out.splitlines()[0].startswith(f"csv:{p}: 1 image(s)")
    assert "kld" in out  # `--metrics kl`: the metrics' own aliases (one parser)


def test_duplicated_rows_in_a_resumed_file_count_once(tmp_path):
    """A row written twice (e.g. two runs appending) is one row in the summary and in read_rows."""
    _images(tmp_path, ["a.png", "b.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png", "b.png"])))
    out = tmp_path / "r.csv"
    ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines + [lines[1]]))
    res = ev.evaluate_dataset(d, "chance", metrics="nss", sigma=3.0, out=out, resume=True)
    assert res.resumed == 2 and len(res.rows) == 2
    assert next(s for s in res.summary if s.metric == "nss").n == 2
    assert len(ev.read_rows(out)) == 2


@pytest.mark.parametrize("header, unit, factor", [("duration", None, 1.0), ("duration_s", None, 1000.0),
                                                  ("duration (ms)", None, 1.0), ("duration", "s", 1000.0)])
def test_time_unit_from_header_or_option(tmp_path, header, unit, factor):
    """onset/duration are read in the unit the header or the option names, and stored in milliseconds."""
    _images(tmp_path, ["a.png"])
    p = _csv(tmp_path / "f.csv", [["a.png", "1", 3, 3, 0.25]], header=("image", "subject", "x", "y", header))
    assert sd.load_csv(p, time_unit=unit)["a"].duration.tolist() == [0.25 * factor]


def test_time_unit_conflict_is_an_error(tmp_path):
    """A header in seconds and time_unit='ms' contradict each other."""
    _images(tmp_path, ["a.png"])
    p = _csv(tmp_path / "f.csv", [["a.png", "1", 3, 3, 0.25]], header=("image", "subject", "x", "y", "duration_s"))
    with pytest.raises(DataError, match="header says the times are in s"):
        sd.load_csv(p, time_unit="ms")


def test_one_metric_name_parser():
    """evaluate's --metrics and metrics.evaluate accept the same names and aliases."""
    assert ev.resolve_metrics("kl,auc") == ("auc_judd", "kld")
    assert M.parse_metrics("kl,auc") == ["kld", "auc_judd"]
    assert ev.resolve_metrics("nss,all") == tuple(M.METRICS)
    with pytest.raises(InputError, match="unknown metric 'auroc'"):
        ev.resolve_metrics("auroc")


def test_table_says_how_to_read_the_human_rows_continuous_metrics(tmp_path):
    """With a human row and CC/SIM/KL, the table carries a note that the row is no ceiling there."""
    _images(tmp_path, ["a.png"])
    d = sd.load_csv(_csv(tmp_path / "f.csv", _rows(["a.png"])))
    res = ev.evaluate_dataset(d, "centre-bias,human", metrics="nss,cc,kld,sim", sigma=3.0)
    for text in (res.table(), res.table(markdown=True)):
        assert "human: its cc, kld, sim compare one viewer's sparse fixation map" in text
    assert "human:" not in ev.evaluate_dataset(d, "centre-bias,human", metrics="nss", sigma=3.0).table()


def test_cli_outside_and_sauc_options(tmp_path, capsys):
    """--outside error refuses a clipped point with one line (exit 2); --sauc-others parses N and 'all'."""
    _images(tmp_path, ["a.png", "b.png"])
    p = _csv(tmp_path / "f.csv", _rows(["a.png", "b.png"]) + [["a.png", "s0", -1.0, 10]])
    code, _, err = _cli(capsys, "--dataset", f"csv:{p}", "--method", "chance", "--metrics", "nss", "--outside", "error")
    assert code == 2 and err.count("\n") == 1 and "line 14: point" in err, err
    for value in ("1", "all"):
        code, out, err = _cli(capsys, "--dataset", f"csv:{p}", "--method", "centre-bias", "--metrics", "sauc",
                              "--sauc-others", value)
        assert code == 0 and "centre-bias" in out, err
    code, _, err = _cli(capsys, "--dataset", f"csv:{p}", "--method", "chance", "--metrics", "sauc", "--sauc-others", "x")
    assert code == 2 and "--sauc-others" in err
    code, _, err = _cli(capsys, "--dataset", "osie", "--data-dir", tmp_path, "--outside", "drop")
    assert code == 2 and "apply to csv: data sets only" in err


# ---- item 16: EMD's ground distance without the full matrix -------------------------------------------

def test_emd_distance_block_gives_the_same_integer_problem():
    """The block of ground distances EMD needs gives the same integer costs as the full matrix, and the
    same EMD (the full 9,882^2 matrix of a 3888 x 2592 image is never built)."""
    from salience.metrics._emd import (
        emd_hat_gd_metric,
        grid_distance_block,
        ground_distance,
    )

    rng = np.random.default_rng(4)
    rows, cols = 19, 25
    full = ground_distance(rows, cols)
    src, snk = np.sort(rng.choice(rows * cols, 40, replace=False)), np.arange(0, rows * cols, 3)
    norm = 1e6 / full.max()
    as_int = lambda d: np.floor(d * norm + 0.5).astype(np.int64)  # noqa: E731
    np.testing.assert_array_equal(as_int(grid_distance_block(rows, cols, src, snk)), as_int(full[np.ix_(src, snk)]))
    p, q = rng.random(rows * cols), rng.random(rows * cols)
    p, q = p / p.sum(), q / q.sum()
    assert math.isclose(emd_hat_gd_metric(p, q, (rows, cols)), emd_hat_gd_metric(p, q, full), rel_tol=1e-12)
