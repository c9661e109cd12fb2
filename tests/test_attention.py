"""Tests of winner-take-all with inhibition of return (salience.scanpath)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import salience
from salience.bottomup.attention import AttendedPoint, default_radius, scanpath
from salience.errors import InputError


def _smooth_map(seed: int, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    import cv2

    m = cv2.GaussianBlur(np.random.default_rng(seed).random(shape).astype(np.float32), (0, 0), 6.0)
    return (m - m.min()) / (m.max() - m.min())


@pytest.mark.parametrize("seed", range(5))
def test_first_point_is_the_maximum_and_ior_moves_the_second_outside_the_radius(seed):
    """The first attended location is the map's maximum; IOR puts the second outside the FOA radius."""
    m = _smooth_map(seed)
    pts = scanpath(m, n=2)
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    assert (pts[0].x, pts[0].y) == (x, y) and pts[0].value == pytest.approx(float(m.max()))
    assert pts[0].rank == 1 and pts[1].rank == 2
    radius = default_radius(*m.shape)
    assert math.hypot(pts[1].x - pts[0].x, pts[1].y - pts[0].y) > radius
    # and the second is the best location outside the first disc
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    outside = (yy - y) ** 2 + (xx - x) ** 2 > radius ** 2
    assert pts[1].value == pytest.approx(float(m[outside].max()))


@pytest.mark.parametrize("seed", range(3))
def test_attended_values_never_increase_and_points_keep_their_distance(seed):
    """Winner-take-all on a static map attends in order of decreasing saliency, each outside earlier FOAs."""
    m = _smooth_map(seed)
    pts = scanpath(m, n=8, radius=15)
    assert [p.rank for p in pts] == list(range(1, len(pts) + 1))
    assert all(a.value >= b.value for a, b in zip(pts, pts[1:]))
    for i, p in enumerate(pts):
        for q in pts[:i]:
            assert math.hypot(p.x - q.x, p.y - q.y) > 15


def test_default_radius_is_one_sixth_of_the_smaller_side():
    """The default FOA radius is min(H, W) / 6: a point at that distance or less is inhibited."""
    assert default_radius(480, 640) == 80.0
    m = np.zeros((60, 120), np.float32)  # default radius 10
    m[30, 30] = 1.0
    m[30, 40] = 0.9  # exactly 10 px away: inside the disc
    m[30, 41] = 0.8  # 11 px away: outside
    assert [(p.x, p.y) for p in scanpath(m, n=2)] == [(30, 30), (41, 30)]


def test_fewer_points_when_the_map_is_exhausted():
    """A map with one positive pixel yields one point; an all-zero map yields none (documented)."""
    m = np.zeros((40, 40))
    m[5, 7] = 2.0
    assert scanpath(m, n=5) == [AttendedPoint(7, 5, 2.0, 1)]
    assert scanpath(np.zeros((10, 10)), n=3) == []
    # every pixel inhibited after one shift with a huge radius
    assert len(scanpath(_smooth_map(1), n=4, radius=1000)) == 1


def test_image_shape_reports_image_pixels():
    """With image_shape, a coarse map's winner is reported at its cell centre in image pixels."""
    m = np.zeros((30, 40), np.float32)
    m[10, 20] = 1.0
    m[10, 35] = 0.5  # 15 map px = 240 image px away
    pts = scanpath(m, n=2, radius=100, image_shape=(480, 640, 3))
    assert (pts[0].x, pts[0].y) == (328, 168)  # (20.5 * 16 - 0.5, 10.5 * 16 - 0.5), rounded
    assert pts[1].x == round(35.5 * 16 - 0.5)
    # a radius in image pixels: 250 px covers the second peak
    assert len(scanpath(m, n=2, radius=250, image_shape=(480, 640))) == 1


def test_ties_are_broken_in_row_major_order_and_input_is_not_modified():
    """Equal maxima: the first in row-major order wins; the map passed in is left unchanged."""
    m = np.zeros((20, 20), np.float32)
    m[15, 2] = 1.0
    m[3, 18] = 1.0
    before = m.copy()
    pts = scanpath(m, n=2, radius=2)
    assert [(p.x, p.y) for p in pts] == [(18, 3), (2, 15)]
    np.testing.assert_array_equal(m, before)


def test_on_an_itti_map_of_a_photo(photos):
    """On an Itti-Koch map the first point is the global maximum; the API name is salience.scanpath."""
    s = salience.itti_koch(photos["astronaut"])
    pts = salience.scanpath(s, n=5)
    assert 1 <= len(pts) <= 5 and isinstance(pts[0], AttendedPoint)
    assert pts[0].value == pytest.approx(float(s.max()))
    x, y, value, rank = pts[0]
    assert s[y, x] == value and rank == 1


@pytest.mark.parametrize("kwargs, word", [
    ({"n": 0}, "n "), ({"n": 2.5}, "n "), ({"n": True}, "n "),
    ({"radius": -1}, "radius"), ({"radius": 0}, "radius"), ({"radius": float("nan")}, "radius"),
    ({"radius": "3"}, "radius"),
    ({"image_shape": (0, 10)}, "image_shape"), ({"image_shape": 5}, "image_shape"),
])
def test_bad_arguments_raise_input_error(kwargs, word):
    """Bad n, radius or image_shape raise InputError naming the argument."""
    with pytest.raises(InputError, match=word):
        scanpath(np.ones((10, 10)), **kwargs)


@pytest.mark.parametrize("bad", [np.ones((4, 4, 3)), np.array([[1.0, np.nan]]), np.zeros((0, 5)), "map"])
def test_bad_maps_raise_input_error(bad):
    """A map that is not a finite non-empty 2-D array raises InputError."""
    with pytest.raises(InputError):
        scanpath(bad)
