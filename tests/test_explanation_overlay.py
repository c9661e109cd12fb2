"""Explanation.overlay(): a thin method over salience.viz.overlay."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from salience.attribution import Explanation  # noqa: E402
from salience.errors import InputError  # noqa: E402
from salience.viz import overlay  # noqa: E402


def _expl() -> Explanation:
    maps = torch.zeros(2, 4, 6)
    maps[1, 2, 3] = 1.0
    maps[0, 0, 0] = 1.0
    return Explanation(maps, torch.tensor([0, 1]), torch.zeros(2), "gradcam")


def test_overlay_is_viz_overlay_of_the_chosen_map() -> None:
    e, img = _expl(), np.full((4, 6, 3), 0.5, np.float32)
    got = e.overlay(img, index=1, cmap="viridis", alpha=0.3)
    assert got.dtype == np.uint8 and got.shape == (4, 6, 3)
    assert np.array_equal(got, overlay(img, e.maps[1].numpy(), "viridis", 0.3))
    assert not np.array_equal(got, e.overlay(img, index=0, cmap="viridis", alpha=0.3))


def test_overlay_resizes_to_the_photo_unless_told_not_to() -> None:
    e, big = _expl(), np.zeros((8, 12, 3), np.uint8)
    assert e.overlay(big).shape == (8, 12, 3)
    assert np.array_equal(e.overlay(big), overlay(big, e.maps[0].numpy(), resize=True))
    with pytest.raises(InputError):
        e.overlay(big, resize=False)


@pytest.mark.parametrize("bad", [2, -3, 1.0, True, "0"])
def test_overlay_bad_index(bad: object) -> None:
    with pytest.raises(InputError, match="index"):
        _expl().overlay(np.zeros((4, 6, 3), np.float32), index=bad)  # type: ignore[arg-type]
