"""Shared fixtures: small real photos, and the location of ../shared/data.

Keep these generic; add fixtures with targeted edits.  Photos are made in code from the images that ship
with scikit-image and matplotlib (nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shrink(rgb_u8: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb_u8.shape[:2]
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(rgb_u8, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.astype(np.float32) / np.float32(255.0))


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos as float32 (H, W, 3) RGB in [0, 1], longest side 128 px: astronaut, coffee, chelsea,
    rocket (scikit-image) and grace_hopper (matplotlib, when its sample data is installed)."""
    skdata = pytest.importorskip("skimage.data", reason="the test photos come with scikit-image (test extra)")
    out = {name: _shrink(getattr(skdata, name)(), 128) for name in ("astronaut", "coffee", "chelsea", "rocket")}
    try:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = _shrink(np.asarray(Image.open(fh).convert("RGB")), 128)
    except Exception:
        pass
    for arr in out.values():
        arr.setflags(write=False)  # shared across tests: nobody may modify them
    return out


@pytest.fixture(scope="session")
def photo(photos) -> np.ndarray:
    """One real photo (skimage astronaut), float32 (128, 128, 3) RGB in [0, 1], read-only."""
    return photos["astronaut"]


@pytest.fixture()
def photo_file(tmp_path, photos) -> Path:
    """The astronaut photo written as a PNG file in the test's tmp_path."""
    from PIL import Image

    path = tmp_path / "astronaut.png"
    Image.fromarray(np.floor(photos["astronaut"] * 255 + 0.5).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder: $SALIENCE_SHARED_DATA, else <repo>/../shared/data.  Skips (with the reason)
    only when that folder does not exist; CI has it."""
    from salience.datasets import shared_data_dir

    path = shared_data_dir().resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (set SALIENCE_SHARED_DATA to its location)")
    return path
