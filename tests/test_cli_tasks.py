"""``salience segment``, ``salience crop`` and ``salience evaluate --dataset masks:DIR``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from salience import metrics
from salience.cli import main


def _save(path, rgb_float):
    Image.fromarray(np.floor(np.asarray(rgb_float) * 255 + 0.5).astype(np.uint8)).save(path)


@pytest.fixture()
def object_image(tmp_path):
    img = np.full((80, 120, 3), 0.5, np.float32)
    yy, xx = np.mgrid[0:80, 0:120]
    obj = (yy - 40) ** 2 + (xx - 85) ** 2 <= 15 ** 2
    img[obj] = (0.9, 0.1, 0.1)
    path = tmp_path / "ball.png"
    _save(path, img)
    return path, obj


def test_segment_writes_mask_boxes_and_overlay(tmp_path, object_image, capsys):
    """`salience segment` writes the mask, boxes JSON and overlay of the object, and keeps outputs unless --overwrite.
    """
    path, obj = object_image
    out = tmp_path / "out"
    assert main(["segment", str(path), "--out", str(out)]) == 0
    mask = np.asarray(Image.open(out / "ball_frequency-tuned_mask.png")) > 0
    assert metrics.iou(mask, obj, "binary") > 0.8
    doc = json.loads((out / "ball_frequency-tuned_boxes.json").read_text())
    b = doc["boxes"][0]
    assert doc["method"] == "frequency-tuned" and doc["width"] == 120 and doc["height"] == 80
    assert abs(b["x0"] - 70) <= 2 and abs(b["x1"] - 101) <= 2 and abs(b["y0"] - 25) <= 2
    overlay = np.asarray(Image.open(out / "ball_frequency-tuned_segment.png"))
    assert overlay.shape == (80, 120, 3)
    assert "box(es), best" in capsys.readouterr().out
    # outputs are kept unless --overwrite; the input that fails is reported, exit 1
    before = (out / "ball_frequency-tuned_boxes.json").read_bytes()
    assert main(["segment", str(path), "--out", str(out), "--threshold", "otsu"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "ball_frequency-tuned_boxes.json").read_bytes() == before
    assert main(["segment", str(path), "--out", str(out), "--threshold", "otsu", "--overwrite", "--grabcut"]) == 0


@pytest.mark.parametrize("argv, match", [
    (["--threshold", "high"], "--threshold"),
    (["--min-area", "3"], "--min-area"),
    (["--method", "itti", "--target", "3"], "--target applies to explanation"),
    (["--method", "no-such"], "no-such"),
])
def test_segment_bad_usage_exits_2(tmp_path, object_image, capsys, argv, match):
    """Bad --threshold, --min-area, a --target for a bottom-up method and an unknown method exit 2 with the option
    named."""
    path, _ = object_image
    assert main(["segment", str(path), "--out", str(tmp_path / "o"), *argv]) == 2
    assert match in capsys.readouterr().err


def test_crop_writes_ranked_candidates_and_windows(tmp_path, object_image):
    """`salience crop` writes ranked windows and crops that are exactly the window's pixels; bad or unfitting sizes
    fail."""
    path, _ = object_image
    out = tmp_path / "crops"
    assert main(["crop", str(path), "--aspect", "9:16", "--candidates", "2", "--method", "frequency-tuned",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "ball_crop-9x16.json").read_text())
    w1, w2 = doc["windows"]
    assert w1["rank"] == 1 and (w1["width"], w1["height"]) == (45, 80)
    assert w1["x0"] <= 70 and w1["x1"] >= 100 and w1["share"] >= w2["share"]
    best = np.asarray(Image.open(out / "ball_crop-9x16.png"))
    src = np.asarray(Image.open(path))
    assert np.array_equal(best, src[w1["y0"]:w1["y1"], w1["x0"]:w1["x1"]])
    assert (out / "ball_crop-9x16-2.png").exists()
    assert main(["crop", str(path), "--aspect", "60x40", "--out", str(out)]) == 0
    assert np.asarray(Image.open(out / "ball_crop-60x40.png")).shape == (40, 60, 3)
    assert main(["crop", str(path), "--aspect", "500x40", "--out", str(out)]) == 1  # does not fit this image
    assert main(["crop", str(path), "--aspect", "wide", "--out", str(out)]) == 2
    assert main(["crop", str(path), "--margin", "0.7", "--out", str(out)]) == 2


def _mask_folder(tmp_path, photos):
    root = tmp_path / "sod"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    masks = {}
    for name in ("coffee", "astronaut", "chelsea"):
        img = photos[name]
        gray = img.mean(axis=2)
        m = gray > np.quantile(gray, 0.6)
        _save(root / "images" / f"{name}.jpg", img)
        Image.fromarray(m.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
        masks[name] = m
    _save(root / "images" / "extra.png", photos["coffee"])  # no mask: skipped and reported
    return root, masks


def test_evaluate_masks_folder(tmp_path, photos, capsys):
    """`evaluate --dataset masks:DIR` gives per-image rows equal to the library's object metrics and reports missing
    masks."""
    root, masks = _mask_folder(tmp_path, photos)
    rows_path = tmp_path / "rows.csv"
    assert main(["evaluate", "--dataset", f"masks:{root}", "--method", "frequency-tuned,spectral-residual",
                 "--out", str(rows_path), "--markdown", "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert "| frequency-tuned |" in cap.out and "max_f" in cap.out
    assert "1 image(s) have no mask" in cap.err
    rows = list(csv.DictReader(rows_path.open()))
    assert len(rows) == 6 and {r["method"] for r in rows} == {"frequency-tuned", "spectral-residual"}
    # the rows are the metrics of each (map, mask) pair
    import salience

    r = next(r for r in rows if r["image"] == "coffee" and r["method"] == "spectral-residual")
    img = salience.load_image(root / "images" / "coffee.jpg")
    sal = salience.saliency_map(img, "spectral-residual")
    assert float(r["sm"]) == pytest.approx(metrics.s_measure(sal, masks["coffee"]), abs=1e-6)
    assert float(r["mae"]) == pytest.approx(metrics.mae(sal, masks["coffee"]), abs=1e-6)


def test_evaluate_masks_precomputed_maps_and_errors(tmp_path, photos, capsys):
    """Precomputed maps against masks score perfect maps as MAE 0 / max F 1; fixation metrics and bad folders exit 2."""
    root, masks = _mask_folder(tmp_path, photos)
    maps = tmp_path / "mymaps"
    maps.mkdir()
    for name, m in list(masks.items())[:2]:  # perfect maps for two of the three images
        Image.fromarray(m.astype(np.uint8) * 255).save(maps / f"{name}.png")
    assert main(["evaluate", "--dataset", f"masks:{root}", "--saliency-maps", str(maps), "--no-progress"]) == 1
    cap = capsys.readouterr()
    assert "1 of 3 image(s) have no map" in cap.err
    line = next(ln for ln in cap.out.splitlines() if ln.startswith("mymaps"))
    assert "0.0000" in line and "1.0000" in line  # MAE 0, max F 1
    assert main(["evaluate", "--dataset", f"masks:{root}", "--metrics", "nss", "--no-progress"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", f"masks:{tmp_path / 'nope'}", "--no-progress"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_demo_gallery_entries_of_the_applications(tmp_path, photos):
    """The demo's application entries (segment and crop) are written and the 9:16 crop has that shape."""
    from salience.tasks.demo import demo_applications

    small = {k: v[::2, ::2].copy() for k, v in photos.items()}
    entries = demo_applications(small, tmp_path)
    sections = {e["section"] for e in entries}
    assert {"Salient objects: salience.segment", "Smart crop: salience.crop"} <= sections
    assert all((tmp_path / e["path"]).stat().st_size > 0 for e in entries)
    crop_png = next(e for e in entries if e["title"] == "astronaut 9:16")
    h, w = np.asarray(Image.open(tmp_path / crop_png["path"])).shape[:2]
    assert h == small["astronaut"].shape[0] and abs(w / h - 9 / 16) < 0.02


def test_evaluate_masks_jobs_and_resume_give_the_same_numbers(tmp_path, photos, capsys, monkeypatch):
    """Threads (--jobs) and a resumed run after an interruption give the rows and data-set scores of one
    uninterrupted single-threaded run, bit for bit: pairs are added in image order and the journal keeps
    every float with repr."""
    import salience.tasks.sod_eval as sod

    root, _ = _mask_folder(tmp_path, photos)
    args = ["evaluate", "--dataset", f"masks:{root}", "--method", "frequency-tuned,spectral-residual",
            "--no-progress"]
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    assert main([*args, "--jobs", "1", "--out", str(one)]) == 0
    table_one = capsys.readouterr().out
    assert main([*args, "--jobs", "3", "--out", str(many)]) == 0
    assert capsys.readouterr().out == table_one and many.read_bytes() == one.read_bytes()
    assert not (tmp_path / "many.csv.partial.jsonl").exists()  # removed when the run ends

    real = sod._read_mask

    def crash_on_coffee(path):  # the images go in name order: astronaut, chelsea, coffee
        if path.stem == "coffee":
            raise KeyboardInterrupt
        return real(path)

    resumed = tmp_path / "resumed.csv"
    monkeypatch.setattr(sod, "_read_mask", crash_on_coffee)
    assert main([*args, "--jobs", "1", "--out", str(resumed)]) == 130  # Ctrl-C: the CLI's interrupted code
    journal = tmp_path / "resumed.csv.partial.jsonl"
    assert journal.exists() and not resumed.exists()
    journal.write_bytes(journal.read_bytes() + b'{"image": "cof')  # and a line cut off mid-write
    monkeypatch.setattr(sod, "_read_mask", real)
    assert main([*args, "--method", "frequency-tuned", "--out", str(resumed), "--resume", "--blur", "0.1"]) == 2
    assert "resume with the same options" in capsys.readouterr().err
    capsys.readouterr()
    assert main([*args, "--jobs", "2", "--out", str(resumed), "--resume"]) == 0
    cap = capsys.readouterr()
    assert "(4 taken from the interrupted run)" in cap.err  # astronaut and chelsea, two methods each
    assert cap.out == table_one and resumed.read_bytes() == one.read_bytes()
    assert main([*args, "--out", str(resumed), "--resume"]) == 2  # finished: nothing to resume
    assert "nothing to resume" in capsys.readouterr().err
