"""Explanation.show(): a matplotlib figure of Explanation.overlay(), drawn without a display (Agg)."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from salience.attribution import Explanation  # noqa: E402
from salience.errors import InputError  # noqa: E402


def _expl(targets: object = "default") -> Explanation:
    maps = torch.zeros(2, 4, 6)
    maps[1, 2, 3] = 1.0
    maps[0, 0, 0] = 1.0
    tg = torch.tensor([7, 2]) if targets == "default" else targets
    return Explanation(maps, tg, torch.tensor([0.25, -3.0]), "gradcam")  # type: ignore[arg-type]


def test_show_draws_the_overlay_and_opens_no_pyplot_window() -> None:
    e, img = _expl(), np.full((8, 12, 3), 0.5, np.float32)
    before = plt.get_fignums()
    fig = e.show(img, index=1, cmap="viridis", alpha=0.3)
    assert plt.get_fignums() == before  # not registered with pyplot: nothing shown or left open
    (ax,) = fig.axes
    (im,) = ax.get_images()
    assert np.array_equal(np.asarray(im.get_array()), e.overlay(img, index=1, cmap="viridis", alpha=0.3))
    assert ax.get_title() == "gradcam, class 2 (score -3)"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert Image.open(io.BytesIO(buf.getvalue())).size[0] > 0


def test_show_into_a_given_axes_and_without_targets() -> None:
    fig, (a, b) = plt.subplots(1, 2)
    try:
        img = np.zeros((4, 6, 3), np.float32)
        assert _expl(None).show(img, index=0, ax=b) is fig
        assert b.get_title() == "gradcam (score 0.25)" and not a.get_images() and len(b.get_images()) == 1
    finally:
        plt.close(fig)


@pytest.mark.parametrize("bad", [2, -3, 1.0, True])
def test_show_bad_index(bad: object) -> None:
    with pytest.raises(InputError, match="index"):
        _expl().show(np.zeros((4, 6, 3), np.float32), index=bad)  # type: ignore[arg-type]
