"""`salience explain` usage (issue 17, item 26): --layer for pixel methods, class names, --method all,
--param, --fast, usage errors once before the model loads, readable pixel-method PNGs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
skdata = pytest.importorskip("skimage.data")
from PIL import Image  # noqa: E402

from salience.cli import main  # noqa: E402


@pytest.fixture()
def cat(tmp_path):
    src = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()[::3, ::3]).save(src)
    return src


def test_layer_is_ignored_for_pixel_methods_with_a_note(tmp_path, cat, capsys) -> None:
    """--layer applies to CAM methods; for a pixel method it is ignored with one note."""
    out = tmp_path / "out"
    code = main(["explain", str(cat), "--method", "gradcam,gradient", "--layer", "features.14", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("ignored for gradient") == 1
    assert (out / "cat_gradcam.png").exists() and (out / "cat_gradient.png").exists()


def test_ambiguous_class_name_lists_candidates_once(tmp_path, cat, capsys) -> None:
    """An ambiguous --target class name is one usage error listing the candidates; a unique one is explained."""
    code = main(["explain", str(cat), str(tmp_path / "b.png"), "--target", "cat", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("ambiguous") == 1 and "tiger cat" in err and "Egyptian cat" in err
    assert "catamaran" not in err.split("ambiguous")[0]
    assert main(["explain", str(cat), "--target", "egyptian", "--out", str(tmp_path / "o")]) == 0
    assert "explained: Egyptian cat" in capsys.readouterr().out


@pytest.mark.parametrize("argv,words", [
    (["--param", "bogus=1"], "not a parameter of gradcam"),
    (["--param", "noequals"], "KEY=VALUE"),
    (["--method", "gradient", "--param", "rise.n=3"], "not in --method"),
    (["--target", "top0"], "not understood"),
])
def test_usage_errors_before_the_model_loads(tmp_path, cat, capsys, argv, words) -> None:
    """The model name is bogus: a usage error that is reported must have been found before loading."""
    code = main(["explain", str(cat), str(cat), "--model", "no_such_model", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count(words) == 1 and "no_such_model" not in err, err


def test_unknown_layer_fails_once(tmp_path, cat, capsys) -> None:
    """An unknown --layer fails once for the run, not once per image."""
    code = main(["explain", str(cat), str(cat), "--layer", "features.99", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("no layer named") == 1


def test_param_reaches_the_method(tmp_path, cat, capsys) -> None:
    """--param KEY=VALUE reaches the method (a bad value is the method's own error); scoped and unscoped."""
    args = ["explain", str(cat), "--method", "smoothgrad", "--out", str(tmp_path / "o")]
    assert main([*args, "--param", "base=nosuch"]) == 1
    assert "smoothgrad base must be one of" in capsys.readouterr().err
    assert main([*args, "--param", "smoothgrad.n=1", "--param", "base=guided-backprop",
                 "--param", "activations=guide"]) == 0


def test_pixel_method_png_is_readable(tmp_path, cat) -> None:
    """A gradient map PNG is clipped at its 99.5th percentile (not nearly black); .npy keeps the map."""
    out = tmp_path / "o"
    assert main(["explain", str(cat), "--method", "gradient", "--npy", "--out", str(out)]) == 0
    png = np.asarray(Image.open(out / "cat_gradient.png")).astype(float)
    raw = np.load(out / "cat_gradient.npy")
    assert (png == 255).mean() >= 0.004  # the top 0.5% saturate
    assert png.mean() / 255 > 2 * raw.mean() / raw.max()  # brighter than the plain stretch


@pytest.mark.slow
def test_method_all_with_params(tmp_path, cat, capsys) -> None:
    """--method all with --fast and --param runs every registered explanation method and writes its map."""
    out = tmp_path / "o"
    code = main(["explain", str(cat), "--method", "all", "--fast", "--out", str(out),
                 "--param", "rise.n=16", "--param", "scorecam.max_channels=4", "--param", "gscorecam.k=4",
                 "--param", "occlusion.window=112",
                 "--param", "occlusion.stride=112", "--param", "smoothgrad.n=2",
                 "--param", "integrated-gradients.steps=2", "--param", "n_samples=4",
                 "--param", "n_segments=4"])
    assert code == 0, capsys.readouterr().err
    from salience.registry import get_method, method_names

    for m in method_names("explanation"):  # the default CNN: every row but those that need self-attention
        fits = get_method(m).model_kind is None
        assert (out / f"cat_{m}.png").exists() == fits, m
