"""`salience explain`: top-5 lines, maps and overlays written atomically, one error line per bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
skdata = pytest.importorskip("skimage.data")
from PIL import Image  # noqa: E402

from salience.cli import main  # noqa: E402


def test_cli_explain(tmp_path, capsys) -> None:
    """Writes M.png + M_overlay.png at the image's size, prints the top-5, keeps files without --overwrite."""
    src = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()[::3, ::3]).save(src)
    out = tmp_path / "out"
    code = main(["explain", str(src), str(tmp_path / "missing.png"), "--method", "gradcam,gradient",
                 "--out", str(out)])
    text = capsys.readouterr()
    assert code == 1 and "missing.png" in text.err and "1 of 2" in text.err
    assert "top-5" in text.out and "cat" in text.out.split("top-5")[1].splitlines()[1].lower()
    for m in ("gradcam", "gradient"):
        gray = np.asarray(Image.open(out / f"cat_{m}.png"))
        assert gray.shape == skdata.chelsea()[::3, ::3].shape[:2]
        assert np.asarray(Image.open(out / f"cat_{m}_overlay.png")).shape[2] == 3
    assert main(["explain", str(src), "--out", str(out)]) == 1
    assert "exist already" in capsys.readouterr().err
    assert main(["explain", str(src), "--out", str(out), "--target", "no such class"]) == 2
    assert main(["explain", str(src), "--out", str(out), "--method", "itti"]) == 2


@pytest.mark.slow
def test_cli_explain_reports_ig_completeness(tmp_path, capsys) -> None:
    """Integrated Gradients from the CLI prints its completeness error and steps with the top-5."""
    import re

    src = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()[::3, ::3]).save(src)
    assert main(["explain", str(src), "--method", "ig", "--out", str(tmp_path / "out")]) == 0
    m = re.search(r"integrated-gradients: completeness error (\d+\.\d+)% of \|f\(x\) - f\(baseline\)\| "
                  r"at 50 steps", capsys.readouterr().out)
    assert m is not None and 0.0 <= float(m.group(1)) < 100.0


@pytest.mark.slow
def test_demo_explanations_batches_by_shape(tmp_path) -> None:
    """The demo's explanation part: one entry and one PNG at the photo's size per photo and method, the
    model's top-1 class in every caption; photos of different aspect go to separate batches."""
    from salience import demo as _demo

    assert _demo._demo_shape(300, 451, 224) == (224, 352) and _demo._demo_shape(512, 512, 224) == (224, 224)
    cat = skdata.chelsea()[::6, ::6].astype(np.float32) / 255.0  # 50 x 76
    cup = skdata.coffee()[::8, ::12].astype(np.float32) / 255.0  # 50 x 50
    photos = {"cat": cat, "cup": cup}
    entries = _demo.demo_explanations(photos, tmp_path, size=64)
    assert len(entries) == 2 * len(_demo.DEMO_METHODS)
    for e in entries:
        name = e["path"].split("/")[-1].split("_")[0]
        img = np.asarray(Image.open(tmp_path / e["path"]))
        assert img.shape == (*photos[name].shape[:2], 3), (e["path"], img.shape)
        assert "MobileNetV2 says" in e["section"] and e["title"] in e["path"]
    assert {e["title"] for e in entries} == set(_demo.DEMO_METHODS)
    assert any("completeness error" in e["caption"] for e in entries)
