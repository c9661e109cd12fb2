"""Agreement of salience.metrics with the official MIT code (Octave) and pysaliency on real OSIE data.

Reads ``<shared>/reference/mit-metrics`` (README there: conventions and tolerances).  Skips only when that
folder is absent.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience.metrics as M
from salience.datasets import shared_data_dir
from salience.metrics._resize import imresize_bicubic, zoom_bilinear

_ROOT = shared_data_dir()  # $SALIENCE_SHARED_DATA, else <repo>/../shared/data
REF = _ROOT / "reference" / "mit-metrics"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"reference fixture folder {REF} is absent")

STEMS = [str(i) for i in range(1001, 1013)]
KINDS = ["gauss", "lumblur", "random", "constant", "lumblur_small"]
CROPS = {
    "top_left": np.s_[0:40, 0:40],
    "centre": np.s_[280:320, 380:420],
    "bottom_right": np.s_[560:600, 760:800],
}


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.float64)


@cache
def mit_ref() -> dict:
    return json.loads((REF / "mit_reference.json").read_text())


@cache
def py_ref() -> dict:
    return json.loads((REF / "pysaliency_reference.json").read_text())["results"]


@cache
def fix_map(stem: str) -> np.ndarray:
    return _png(REF / "fixations" / f"{stem}.png")


@cache
def other_map(stem: str) -> np.ndarray:
    return _png(REF / "shuffled_other" / f"{stem}.png")


@cache
def smap(kind: str, stem: str) -> np.ndarray:
    return _png(REF / "maps" / kind / f"{stem}.png") / 255.0


@cache
def continuous(stem: str) -> np.ndarray:
    return M.fixation_density_map(fix_map(stem))


@cache
def points() -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    with open(REF / "fixations" / "points.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["image"].split(".")[0], []).append((float(row["x0"]), float(row["y0"])))
    return {k: np.array(v) for k, v in out.items()}


def _close(x: float, ref: float | None, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        return math.isnan(x)
    return abs(x - ref) <= rtol * abs(ref) + atol


# ------------------------------------------------------------------------------------------- inputs


def test_points_round_like_matlab_and_rebuild_the_binary_maps():
    """Points rounded with MATLAB's half-away-from-zero rule give exactly the fixture's binary maps."""
    pts = points()
    for stem in STEMS:
        built = M.fixation_map_from_points(pts[stem], (600, 800))
        np.testing.assert_array_equal(built, fix_map(stem))


def test_continuous_map_matches_octave_run_antonioGaussian():
    """fixation_density_map reproduces run_antonioGaussian(F, 25) to 1e-15 (full maps, crops, checks)."""
    crops = np.load(REF / "checks" / "continuous_crops.npz")
    checks = mit_ref()["input_checks"]
    for stem in STEMS:
        g = continuous(stem)
        for name, sl in CROPS.items():
            assert np.max(np.abs(g[sl] - crops[f"{stem}_{name}"])) <= 1e-15
        c = checks[stem]["continuous_map"]
        vals = g.ravel()[np.flatnonzero(fix_map(stem))]
        assert np.max(np.abs(vals - np.array(c["values_at_fixated_pixels_rowmajor"]))) <= 1e-15
        assert abs(g.sum() - c["sum"]) <= 1e-9 * c["sum"]
        assert abs(g.max() - c["max"]) <= 1e-15
        assert list(np.unravel_index(np.argmax(g), g.shape)) == c["argmax_row_col_0based"]
    for stem in ("1001", "1002"):
        assert np.max(np.abs(continuous(stem) - np.load(REF / "continuous" / f"{stem}.npy"))) <= 1e-15


def test_imresize_matches_octave_bit_for_bit():
    """The bicubic imresize port equals Octave's output on the crops (<= 1e-12; in fact exactly)."""
    crops = np.load(REF / "checks" / "resize_crops.npz")
    worst = 0.0
    for stem in STEMS:
        big = imresize_bicubic(smap("lumblur_small", stem), (600, 800))
        for name, sl in CROPS.items():
            worst = max(worst, float(np.max(np.abs(big[sl] - crops[f"{stem}_{name}"]))))
    assert worst <= 1e-12


def test_emd_downsampling_matches_octave():
    """imresize(G, 1/32) and imresize(S, [19 25]) inside EMD.m agree with Octave to 1e-12."""
    ds = np.load(REF / "checks" / "emd_downsampled.npz")
    for stem in STEMS:
        assert np.max(np.abs(imresize_bicubic(continuous(stem), 1 / 32) - ds[f"{stem}_fixationMap"])) <= 1e-12
        for kind in KINDS:
            assert np.max(np.abs(imresize_bicubic(smap(kind, stem), (19, 25)) - ds[f"{stem}_{kind}"])) <= 1e-12


# ------------------------------------------------------------------------------ MIT deterministic

_DET = {
    "AUC_Judd_jitter0": lambda s, st: M.auc_judd(s, fix_map(st), jitter=False),
    "NSS": lambda s, st: M.nss(s, fix_map(st)),
    "CC": lambda s, st: M.cc(s, continuous(st)),
    "KLdiv": lambda s, st: M.kld(s, continuous(st)),
    "similarity": lambda s, st: M.sim(s, continuous(st)),
    "InfoGain": lambda s, st: M.information_gain(s, fix_map(st), smap("gauss", st)),
}


@pytest.mark.parametrize("kind", KINDS)
def test_mit_deterministic_metrics_match_octave(kind):
    """AUC-Judd (no jitter), NSS, CC, KLdiv, SIM, InfoGain equal Octave's within 1e-6 rel + 1e-9 (NaN=NaN)."""
    res = mit_ref()["results"]
    for stem in STEMS:
        s = smap(kind, stem)
        for key, fn in _DET.items():
            ref = res[stem][kind][key]["value"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.DegenerateInputWarning)
                got = fn(s, stem)
            if kind == "constant" and key == "NSS":  # Octave's +0.99999896 is a round-off artefact
                assert math.isnan(got) or abs(abs(got) - 0.99999896) < 1e-6
                continue
            if kind == "constant" and key == "CC":  # Octave returns ~1e-14 noise
                assert math.isnan(got) or abs(got) < 1e-12
                continue
            assert _close(got, ref), (stem, kind, key, got, ref)


def test_constant_map_nan_where_the_official_code_gives_nan():
    """A constant map gives NaN (with a DegenerateInputWarning) for AUC, SIM, InfoGain, as Octave does."""
    s = smap("constant", "1001")
    with pytest.warns(M.DegenerateInputWarning):
        assert math.isnan(M.auc_judd(s, fix_map("1001"), jitter=False))
    with pytest.warns(M.DegenerateInputWarning):
        assert math.isnan(M.sim(s, continuous("1001")))
    with pytest.warns(M.DegenerateInputWarning):
        assert math.isnan(M.information_gain(s, fix_map("1001"), smap("gauss", "1001")))


@pytest.mark.slow
def test_mit_emd_matches_fastemd():
    """EMD equals FastEMD's value (Octave) within rtol 1e-4 for all 60 cases (in practice ~1e-15)."""
    res = mit_ref()["results"]
    worst = 0.0
    for stem in STEMS:
        for kind in KINDS:
            ref = res[stem][kind]["EMD"]["value"]
            got = M.emd(smap(kind, stem), continuous(stem))
            worst = max(worst, abs(got - ref) / ref)
    assert worst <= 1e-4


def test_mit_emd_one_image_all_kinds():
    """Fast subset of the EMD check: image 1002 (it has the negative-bin case of the constant map)."""
    res = mit_ref()["results"]
    for kind in KINDS:
        ref = res["1002"][kind]["EMD"]["value"]
        assert abs(M.emd(smap(kind, "1002"), continuous("1002")) - ref) <= 1e-4 * ref


# ---------------------------------------------------------------------------------- MIT random


@pytest.mark.parametrize(
    "key, fn",
    [
        ("AUC_Judd_jitter1", lambda s, st, r: M.auc_judd(s, fix_map(st), rng=r)),
        ("AUC_Borji", lambda s, st, r: M.auc_borji(s, fix_map(st), rng=r)),
        ("AUC_shuffled", lambda s, st, r: M.sauc(s, fix_map(st), other_map(st), rng=r)),
    ],
)
def test_mit_random_metrics_within_the_octave_spread(key, fn):
    """One run per case lies within 4 std + 1e-6 of the mean of Octave's 20 repeats (NaN where Octave NaN)."""
    res = mit_ref()["results"]
    for stem in STEMS:
        for kind in KINDS:
            ref = res[stem][kind][key]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.DegenerateInputWarning)
                got = fn(smap(kind, stem), stem, int(stem) * 10 + KINDS.index(kind))
            if ref["mean"] is None:
                assert math.isnan(got), (stem, kind, key)
                continue
            assert abs(got - ref["mean"]) <= 4 * ref["std"] + 1e-6, (stem, kind, key, got, ref["mean"], ref["std"])


# --------------------------------------------------------------------------------- pysaliency

T = "tuebingen"
_PY = {
    "AUC_Judd_jitter0": lambda s, st: M.auc_judd(s, fix_map(st), jitter=False, convention=T),
    "AUC_Judd_jitter1": lambda s, st: M.auc_judd(s, fix_map(st), rng=42, convention=T),
    "AUC_uniform": lambda s, st: M.auc_borji(s, fix_map(st), convention=T),
    "sAUC_otherMap": lambda s, st: M.sauc(s, fix_map(st), other_map(st), convention=T),
    "NSS": lambda s, st: M.nss(s, fix_map(st), convention=T),
    "CC": lambda s, st: M.cc(s, continuous(st), convention=T),
    "SIM": lambda s, st: M.sim(s, continuous(st), convention=T),
    "KLDiv_MIT_settings": lambda s, st: M.kld(s, continuous(st), convention=T),
    "InfoGain": lambda s, st: M.information_gain(s, fix_map(st), smap("gauss", st), convention=T),
    "allfix_NSS": lambda s, st: M.nss(s, _counts(st), convention=T),
    "allfix_AUC_Judd_jitter0": lambda s, st: M.auc_judd(s, _counts(st), jitter=False, convention=T),
    "allfix_InfoGain": lambda s, st: M.information_gain(s, _counts(st), smap("gauss", st), convention=T),
}


@cache
def _counts(stem: str) -> np.ndarray:
    return M.fixation_map_from_points(points()[stem], (600, 800), counts=True)


@pytest.mark.parametrize("kind", KINDS)
def test_tuebingen_matches_pysaliency(kind):
    """convention='tuebingen' equals pysaliency 0.2.22 within 1e-9 rel (same float64 formulas; -inf = -inf).

    The tolerance is tighter than the MIT one: both sides evaluate the same expressions in float64, so only
    summation order differs (observed <= 6e-13, CC); lumblur_small goes through the same bilinear zoom.
    """
    res = py_ref()
    for stem in STEMS:
        s = smap(kind, stem)
        for key, fn in _PY.items():
            ref = res[stem][kind][key]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.DegenerateInputWarning)
                got = fn(s, stem)
            if isinstance(ref, str):  # '-inf' / 'inf'
                assert got == float(ref), (stem, kind, key, got, ref)
            else:
                assert _close(got, ref, rtol=1e-9, atol=1e-12), (stem, kind, key, got, ref)


def test_tuebingen_resize_is_scipy_zoom_bilinear():
    """pysaliency's resize (zoom order 1, mode nearest) is what tuebingen uses for maps of another size."""
    s = smap("lumblur_small", "1001")
    z = zoom_bilinear(s, (600, 800))
    assert z.shape == (600, 800)
    got = M.nss(s, fix_map("1001"), convention=T)
    assert abs(got - M.nss(z, fix_map("1001"), convention=T)) == 0.0
