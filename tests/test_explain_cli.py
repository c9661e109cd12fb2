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
