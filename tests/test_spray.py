"""Spectral Relevance Analysis (salience.audit.spray): clusters of synthetic maps with a known structure."""

from __future__ import annotations

import numpy as np
import pytest

from salience.audit import SprayResult, spray
from salience.errors import InputError


def _families(n_a: int = 30, n_b: int = 18, side: int = 48, noise: float = 0.3, seed: int = 1):
    """Maps of two families: a Gaussian blob near the top-left corner, or near the bottom-right, each blob
    jittered in place and width, plus uniform noise; shuffled.  Returns (maps, family 0/1 per map)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(float)
    fam = np.array([0] * n_a + [1] * n_b)
    rng.shuffle(fam)
    maps = []
    for f in fam:
        cy, cx = (side * 0.2, side * 0.2) if f == 0 else (side * 0.8, side * 0.8)
        cy, cx = cy + rng.normal(0, 2), cx + rng.normal(0, 2)
        s = side * rng.uniform(0.06, 0.12)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        maps.append(blob + noise * rng.random((side, side)))
    return np.stack(maps), fam


def _corner_share(mean_map: np.ndarray, corner: str) -> float:
    h, w = mean_map.shape
    q = mean_map[: h // 2, : w // 2] if corner == "tl" else mean_map[h // 2:, w // 2:]
    return float(q.sum() / mean_map.sum())


def test_two_families_give_two_clusters_with_the_right_mean_maps():
    maps, fam = _families()
    r = spray(maps)
    assert isinstance(r, SprayResult)
    assert r.n_clusters == 2
    assert r.sizes.tolist() == [30, 18]  # numbered by size, the largest first
    assert r.labels.dtype == np.int64 and r.labels.shape == (48,)
    np.testing.assert_array_equal(r.labels, fam)  # family 0 has 30 maps, so it is cluster 0
    np.testing.assert_array_equal(r.members(1), np.flatnonzero(fam == 1))
    assert r.mean_maps.shape == (2, 32, 32) and r.mean_maps.dtype == np.float64 and r.size == (32, 32)
    # each mean map is a distribution of evidence (maps normalised to sum 1) ...
    np.testing.assert_allclose(r.mean_maps.sum(axis=(1, 2)), 1.0, rtol=1e-9)
    # ... that sits in its family's corner (uniform noise alone would put 0.25 in each quadrant)
    assert _corner_share(r.mean_maps[0], "tl") > 0.4 > _corner_share(r.mean_maps[0], "br")
    assert _corner_share(r.mean_maps[1], "br") > 0.4 > _corner_share(r.mean_maps[1], "tl")


def test_the_eigengap_picks_two_and_the_spectrum_is_reported():
    maps, _ = _families(seed=2)
    r = spray(maps, max_clusters=8)
    assert r.eigenvalues.shape == (9,) and r.eigengaps.shape == (8,)
    assert np.all(np.diff(r.eigenvalues) >= -1e-12)  # ascending
    np.testing.assert_allclose(r.eigengaps, np.diff(r.eigenvalues))
    assert abs(r.eigenvalues[0]) < 1e-8  # the Laplacian's constant direction
    assert int(np.argmax(r.eigengaps)) + 1 == 2 == r.n_clusters
    # two nearly disconnected groups: the second eigenvalue is near 0, the third is not
    assert r.eigenvalues[1] < 0.05 < r.eigenvalues[2]


def test_three_families_and_a_given_number_of_clusters():
    maps, fam = _families(n_a=20, n_b=20, seed=3)
    rng = np.random.default_rng(3)
    extra = np.zeros((12, 48, 48))
    extra[:, 20:28, 20:28] = 1.0  # a third family in the centre
    maps3 = np.concatenate([maps, extra + 0.3 * rng.random(extra.shape)])
    r = spray(maps3)
    assert r.n_clusters == 3 and sorted(r.sizes.tolist()) == [12, 20, 20]
    assert len(set(r.labels[40:].tolist())) == 1  # the centre family is one cluster
    forced = spray(maps3, n_clusters=2)
    assert forced.n_clusters == 2 and forced.sizes.sum() == 52 and forced.mean_maps.shape == (2, 32, 32)


def test_deterministic_under_the_seed():
    maps, _ = _families(noise=0.8, seed=4)  # noisier: k-means starts matter more
    a, b = spray(maps, n_clusters=4, seed=7), spray(maps, n_clusters=4, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.mean_maps, b.mean_maps)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


def test_invariant_to_the_scale_of_each_map_and_to_its_size():
    maps, _ = _families(seed=5)
    r = spray(maps)
    scales = np.random.default_rng(5).uniform(1e-3, 1e3, size=len(maps))
    scaled = spray(maps * scales[:, None, None])
    np.testing.assert_array_equal(scaled.labels, r.labels)
    np.testing.assert_allclose(scaled.mean_maps, r.mean_maps, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(scaled.eigenvalues, r.eigenvalues, atol=1e-9)
    # a signed map is judged by its magnitude: negating maps changes nothing
    np.testing.assert_array_equal(spray(-maps).labels, r.labels)


def test_maps_of_different_sizes_in_a_list():
    maps, fam = _families(seed=6)
    import cv2

    mixed = [cv2.resize(m, (48 + 16 * (i % 3), 40 + 8 * (i % 2)), interpolation=cv2.INTER_LINEAR)
             for i, m in enumerate(maps)]
    r = spray(mixed, size=(16, 16))
    assert r.size == (16, 16) and r.mean_maps.shape == (2, 16, 16)
    np.testing.assert_array_equal(r.labels, fam)


def test_noise_without_structure_is_one_cluster():
    """Maps of pure noise form one connected graph: the largest gap is the first, so one cluster."""
    rng = np.random.default_rng(8)
    r = spray(rng.random((60, 32, 32)))
    assert r.n_clusters == 1 and int(np.argmax(r.eigengaps)) == 0
    assert r.sizes.tolist() == [60] and (r.labels == 0).all() and r.members(0).tolist() == list(range(60))


def test_bad_input_is_refused_clearly():
    good = np.random.default_rng(0).random((5, 8, 8))
    with pytest.raises(InputError, match="at least 2 maps"):
        spray(good[:1])
    with pytest.raises(InputError, match="at least 2 maps"):
        spray([])
    bad = good.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(InputError, match="map 3 contains NaN"):
        spray(bad)
    with pytest.raises(InputError, match=r"\(N, H, W\)"):
        spray(good[0])
    with pytest.raises(InputError, match="map 1 must be a non-empty 2-D"):
        spray([good[0], good[1, 0]])
    with pytest.raises(InputError, match="real numbers"):
        spray([good[0], np.array([["a", "b"]])])
    with pytest.raises(InputError, match="n_clusters must be <= the number of maps"):
        spray(good, n_clusters=6)
    with pytest.raises(InputError, match="size"):
        spray(good, size=(0, 8))
    with pytest.raises(InputError, match="n_neighbors"):
        spray(good, n_neighbors=0)
    r = spray(good, n_clusters=2)
    with pytest.raises(InputError, match="n_clusters = 2"):
        r.members(2)
    assert good.flags.writeable and np.isfinite(good).all()  # not modified


def test_zero_maps_are_kept_as_no_evidence():
    maps, _ = _families(n_a=10, n_b=10, seed=9)
    maps[[0, 5]] = 0.0
    r = spray(maps)
    assert np.isfinite(r.mean_maps).all() and r.sizes.sum() == 20


def test_the_sparse_solver_agrees_with_the_dense_one(monkeypatch):
    """Above DENSE_LIMIT maps SpRAy uses eigsh, which alone would find a repeated eigenvalue 0 (separate
    groups) only once; decomposing each connected component on its own keeps every group."""
    import sys

    module = sys.modules["salience.audit.spray"]  # the package's name `spray` is the function
    maps, fam = _families(n_a=40, n_b=30, seed=10)
    rng = np.random.default_rng(10)
    extra = np.zeros((25, 48, 48))
    extra[:, 20:28, 20:28] = 1.0
    maps3 = np.concatenate([maps, extra + 0.3 * rng.random(extra.shape)])
    dense = spray(maps3)
    monkeypatch.setattr(module, "DENSE_LIMIT", 8)
    sparse = spray(maps3)
    assert dense.n_clusters == sparse.n_clusters == 3
    np.testing.assert_array_equal(sparse.labels, dense.labels)
    np.testing.assert_allclose(sparse.eigenvalues, dense.eigenvalues, atol=1e-7)
    # one connected graph (maps of pure noise): Lanczos and the dense solver give the same spectrum
    noisy = np.random.default_rng(11).random((70, 32, 32))
    monkeypatch.setattr(module, "DENSE_LIMIT", 10_000)
    d = spray(noisy)
    monkeypatch.setattr(module, "DENSE_LIMIT", 8)
    s = spray(noisy)
    assert d.eigenvalues[1] > 0.1  # connected: 0 is a simple eigenvalue
    np.testing.assert_allclose(s.eigenvalues, d.eigenvalues, atol=1e-7)
    np.testing.assert_array_equal(s.labels, d.labels)
