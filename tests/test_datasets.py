"""Fixation data-set loaders: OSIE (real files), the generic CSV layout, folders of fixation maps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience.datasets as sd
from salience.datasets import shared_data_dir
from salience.errors import DataError

SHARED = shared_data_dir()  # $SALIENCE_SHARED_DATA, else <repo>/../shared/data
OSIE = SHARED / "osie"
REF = SHARED / "reference" / "mit-metrics"
needs_osie = pytest.mark.skipif(not (OSIE / "fixations.mat").is_file(), reason=f"OSIE data not found at {OSIE}")
needs_ref = pytest.mark.skipif(not (REF / "fixations" / "points.csv").is_file(),
                               reason=f"reference data not found at {REF}")


def _png(path: Path, w: int, h: int, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def _write_csv(path: Path, rows: list[list], header=("image", "subject", "x", "y")) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def osie():
    if not (OSIE / "fixations.mat").is_file():
        pytest.skip(f"OSIE data not found at {OSIE}")
    return sd.load_osie(OSIE)


# --------------------------------------------------------------------------------------------------------
# OSIE
# --------------------------------------------------------------------------------------------------------

@needs_osie
def test_osie_counts_and_sizes(osie):
    """OSIE loads 700 800x600 images with the README's 98,321 fixations, 15 subjects each, all on the pixel grid."""
    assert len(osie) == 700
    assert osie.n_fixations == 98321  # the README's total: scalar single-fixation subjects are counted
    assert osie.names[:3] == ["1001", "1002", "1003"]
    assert all(it.size == (800, 600) for it in osie)
    first = osie["1001"]
    assert first.subjects() == [str(s) for s in range(1, 16)]
    assert first.onset is None and first.duration is not None and len(first.duration) == len(first)
    assert osie.has_subjects
    # every point lies on the 0-based pixel grid of the image
    for it in osie.items[:50]:
        assert it.x.min() >= 0 and it.x.max() <= 799 and it.y.min() >= 0 and it.y.max() <= 599


@needs_osie
def test_osie_single_fixation_subjects_are_kept(osie):
    """A subject with one fixation comes back from loadmat as scalars; it must still count as one fixation."""
    singles = [(it.name, s) for it in osie for s in it.subjects() if len(it.points(s)) == 1]
    assert len(singles) == 6


@needs_osie
@needs_ref
def test_osie_points_match_reference_csv(osie):
    """OSIE points, durations and subjects equal the reference CSV exported from the original .mat file."""
    with open(REF / "fixations" / "points.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    for stem in ("1001", "1006"):
        rows = [r for r in ref if r["image"] == stem]
        item = osie[stem]
        np.testing.assert_allclose(item.x, [float(r["x0"]) for r in rows], atol=1e-9)
        np.testing.assert_allclose(item.y, [float(r["y0"]) for r in rows], atol=1e-9)
        np.testing.assert_allclose(item.duration, [float(r["duration_ms"]) for r in rows])
        assert item.subject.tolist() == [str(int(r["subject"]) + 1) for r in rows]


@needs_osie
@needs_ref
@pytest.mark.parametrize("stem", ["1001", "1004", "1006", "1012"])
def test_osie_binary_map_matches_mit_rounding(osie, stem):
    """The binary map uses MATLAB's round (halves away from zero), as the MIT benchmark's maps do."""
    ref = np.asarray(Image.open(REF / "fixations" / f"{stem}.png")) > 0
    np.testing.assert_array_equal(osie[stem].binary_map(), ref)


@needs_osie
def test_osie_located_by_env_var(monkeypatch):
    """SALIENCE_SHARED_DATA, the OSIE folder itself or the folder holding it all locate the data."""
    monkeypatch.setenv("SALIENCE_SHARED_DATA", str(SHARED))
    assert sd.osie_dir() == SHARED / "osie"
    assert sd.osie_dir(OSIE) == OSIE  # the OSIE folder itself
    assert sd.osie_dir(SHARED) == SHARED / "osie"  # or the folder holding it


def test_osie_missing_folder_is_a_data_error(tmp_path, monkeypatch):
    """Missing OSIE data is a DataError that names SALIENCE_SHARED_DATA, the way to point at it."""
    monkeypatch.setenv("SALIENCE_SHARED_DATA", str(tmp_path))
    with pytest.raises(DataError, match="no OSIE data.*SALIENCE_SHARED_DATA"):
        sd.load_osie()


def test_osie_corrupt_mat_is_a_data_error(tmp_path):
    """A corrupt fixations.mat is a DataError ("cannot read"), not a scipy traceback."""
    (tmp_path / "stimuli").mkdir()
    (tmp_path / "fixations.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="cannot read"):
        sd.load_osie(tmp_path)


def test_osie_layout_written_in_test(tmp_path):
    """The OSIE reader on a two-image file made here: 1-based -> 0-based, scalar subjects, sorting."""
    import scipy.io

    _png(tmp_path / "stimuli" / "b.jpg", 10, 8)
    _png(tmp_path / "stimuli" / "a.jpg", 10, 8)
    subj = np.zeros((2,), dtype=[("fix_x", object), ("fix_y", object), ("fix_duration", object)])
    subj[0] = (np.array([1.0, 10.0]), np.array([1.0, 8.0]), np.array([100.0, 200.0]))
    subj[1] = (np.array([5.5]), np.array([2.0]), np.array([300.0]))
    rec = np.zeros((2,), dtype=[("img", object), ("subjects", object)])
    rec[0] = ("b.jpg", subj)
    rec[1] = ("a.jpg", subj)
    scipy.io.savemat(tmp_path / "fixations.mat", {"fixations": rec})
    d = sd.load_osie(tmp_path)
    assert d.names == ["a", "b"]
    it = d["a"]
    assert it.points().tolist() == [[0.0, 0.0], [9.0, 7.0], [4.5, 1.0]]
    assert it.subject.tolist() == ["1", "1", "2"]
    assert it.duration.tolist() == [100.0, 200.0, 300.0]
    assert it.size == (10, 8)


def test_osie_entry_naming_a_missing_image(tmp_path):
    """A fixation record naming an image that is not there is a DataError that names the file."""
    import scipy.io

    (tmp_path / "stimuli").mkdir()
    subj = np.zeros((1,), dtype=[("fix_x", object), ("fix_y", object), ("fix_duration", object)])
    subj[0] = (np.array([1.0]), np.array([1.0]), np.array([1.0]))
    rec = np.zeros((1,), dtype=[("img", object), ("subjects", object)])
    rec[0] = ("nothere.jpg", subj)
    scipy.io.savemat(tmp_path / "fixations.mat", {"fixations": rec})
    with pytest.raises(DataError, match="nothere.jpg"):
        sd.load_osie(tmp_path)


# --------------------------------------------------------------------------------------------------------
# generic CSV layout
# --------------------------------------------------------------------------------------------------------

@pytest.fixture
def csv_folder(tmp_path):
    _png(tmp_path / "images" / "cat.png", 20, 10)
    _png(tmp_path / "images" / "dog.jpg", 16, 12)
    _write_csv(tmp_path / "fixations.csv", [
        ["dog.jpg", "s1", 3, 4, 0, 250],
        ["cat", "s1", 0, 0, 0, 120],
        ["cat", "s2", 19, 9, 10, 80.5],
        ["cat.png", "s2", 7.25, 3.5, 100, 90],
    ], header=("image", "subject", "x", "y", "onset", "duration"))
    return tmp_path


def test_csv_folder_loads(csv_folder):
    """A CSV folder loads names, sizes, points, subjects, onsets, durations and images exactly, with the MATLAB rounding
    of points."""
    d = sd.load_csv(csv_folder)
    assert d.names == ["cat", "dog"]
    cat = d["cat"]
    assert cat.size == (20, 10) and cat.shape == (10, 20)
    assert cat.points().tolist() == [[0.0, 0.0], [19.0, 9.0], [7.25, 3.5]]
    assert cat.subject.tolist() == ["s1", "s2", "s2"]
    assert cat.onset.tolist() == [0.0, 10.0, 100.0]
    assert cat.duration.tolist() == [120.0, 80.5, 90.0]
    assert cat.subjects() == ["s1", "s2"]
    assert cat.points("s2").tolist() == [[19.0, 9.0], [7.25, 3.5]]
    assert cat.points(exclude="s2").tolist() == [[0.0, 0.0]]
    bm = cat.binary_map()
    assert bm.shape == (10, 20) and bm.dtype == bool
    assert bm[0, 0] and bm[9, 19] and bm[4, 7]  # 7.25 -> 7, 3.5 -> 4 (halves go up)
    assert int(bm.sum()) == 3
    img = d.load_image("dog")
    assert img.shape == (12, 16, 3) and img.dtype == np.float32


def test_csv_file_path_and_images_next_to_it(tmp_path):
    """A CSV file path finds the images beside it; the optional time columns are None when absent."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "eye.csv", [["a.png", "1", 1, 2]])
    d = sd.load_csv(p)
    assert d.name == "eye" and d.names == ["a"]
    assert d["a"].onset is None and d["a"].duration is None


def test_csv_explicit_image_folder(tmp_path):
    """images= points the CSV at another image folder; a missing one is a DataError."""
    _png(tmp_path / "pics" / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", 1, 2]])
    assert sd.load_csv(p, images=tmp_path / "pics").names == ["a"]
    with pytest.raises(DataError, match="does not exist"):
        sd.load_csv(p, images=tmp_path / "nope")


def test_csv_missing_columns(tmp_path):
    """A header without a required column is a DataError naming the line and the column."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", 1, 2]], header=("image", "x", "y"))
    with pytest.raises(DataError, match="line 1: missing column.*subject"):
        sd.load_csv(p)


def test_csv_unknown_image_names_the_line(tmp_path):
    """A row naming an unknown image is a DataError with its line number."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", 1, 2], ["b.png", "1", 1, 2]])
    with pytest.raises(DataError, match=r"line 3: unknown image 'b.png'"):
        sd.load_csv(p)


@pytest.mark.parametrize("x, y, outside", [(8, 2, "error"), (-1, 2, "error"), (2, 7.5, "error"), (2, -0.6, "error"),
                                           (8.6, 2, "clip"), (-1.6, 2, "clip"), (2, 9, "clip")])
def test_csv_out_of_bounds_names_the_line(tmp_path, x, y, outside):
    """Points beyond the border (any distance with outside='error', over one pixel by default) name the line."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", 1, 2], ["a", "1", 3, 3], ["a", "2", x, y]])
    with pytest.raises(DataError, match=r"line 4: point .* outside image a.png \(8 x 8\).*0-based"):
        sd.load_csv(p, outside=outside)


def test_csv_points_on_the_edge_pixel_are_in_bounds(tmp_path):
    """Points on the last pixel and on the outer half-pixel edges are in bounds."""
    _png(tmp_path / "a.png", 8, 6)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", 7, 5], ["a", "1", -0.5, -0.5], ["a", "1", 7.49, 5.49]])
    assert sd.load_csv(p)["a"].binary_map()[5, 7]


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf"])
def test_csv_non_numeric_value(tmp_path, bad):
    """Empty, non-numeric, NaN and infinite coordinates are DataErrors naming the line and column."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", bad, 2]])
    with pytest.raises(DataError, match="line 2: column x"):
        sd.load_csv(p)


def test_csv_negative_duration(tmp_path):
    """A negative duration is a DataError naming the line."""
    _png(tmp_path / "a.png", 8, 8)
    p = _write_csv(tmp_path / "f.csv", [["a", "1", 1, 2, -5]], header=("image", "subject", "x", "y", "duration"))
    with pytest.raises(DataError, match="line 2: negative duration"):
        sd.load_csv(p)


def test_csv_short_row(tmp_path):
    """A row with too few fields is a DataError naming the line and the field count."""
    _png(tmp_path / "a.png", 8, 8)
    p = tmp_path / "f.csv"
    p.write_text("image,subject,x,y\na,1,2\n")
    with pytest.raises(DataError, match="line 2: 3 field"):
        sd.load_csv(p)


def test_csv_empty_and_header_only(tmp_path):
    """An empty CSV and one with only a header are DataErrors that say which."""
    p = tmp_path / "f.csv"
    p.write_text("")
    with pytest.raises(DataError, match="is empty"):
        sd.load_csv(p)
    p.write_text("image,subject,x,y\n")
    with pytest.raises(DataError, match="no fixation rows"):
        sd.load_csv(p)


def test_csv_folder_without_or_with_many_csvs(tmp_path):
    """A folder with no CSV or several is refused (the choice is not guessed); a missing file too."""
    with pytest.raises(DataError, match="no CSV file"):
        sd.load_csv(tmp_path)
    (tmp_path / "a.csv").write_text("image,subject,x,y\n")
    (tmp_path / "b.csv").write_text("image,subject,x,y\n")
    with pytest.raises(DataError, match="several CSV files"):
        sd.load_csv(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        sd.load_csv(tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------------------------
# folders of fixation maps
# --------------------------------------------------------------------------------------------------------

def _binary_png(path: Path, shape, points) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros(shape, np.uint8)
    for r, c in points:
        m[r, c] = 255
    Image.fromarray(m).save(path)


def test_map_folder_plain_layout(tmp_path):
    """The plain map-folder layout gives points from binary maps and the stored density map, not a blur."""
    _png(tmp_path / "images" / "x.jpg", 12, 10)
    _png(tmp_path / "images" / "y.png", 12, 10)
    _binary_png(tmp_path / "fixations" / "x.png", (10, 12), [(1, 2), (5, 6)])
    _binary_png(tmp_path / "fixations" / "y.png", (10, 12), [(9, 11)])
    dens = np.linspace(0, 1, 120).reshape(10, 12)
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "x.npy", dens)
    d = sd.load_map_folder(tmp_path)
    assert d.names == ["x", "y"]
    assert d["x"].points().tolist() == [[2.0, 1.0], [6.0, 5.0]]
    assert d["y"].points().tolist() == [[11.0, 9.0]]
    assert not d.has_subjects
    np.testing.assert_array_equal(d["x"].density_map(), dens)  # the stored ground truth, not a blur
    assert d["y"].density_path is None


def test_map_folder_mit1003_layout(tmp_path):
    """The MIT1003 layout (ALLSTIMULI, *_fixPts, *_fixMap) is read."""
    _png(tmp_path / "ALLSTIMULI" / "i1.jpeg", 12, 10)
    _binary_png(tmp_path / "ALLFIXATIONMAPS" / "i1_fixPts.png", (10, 12), [(3, 4)])
    Image.fromarray(np.full((10, 12), 50, np.uint8)).save(tmp_path / "ALLFIXATIONMAPS" / "i1_fixMap.png")
    d = sd.load_map_folder(tmp_path)
    assert d["i1"].points().tolist() == [[4.0, 3.0]]
    np.testing.assert_allclose(d["i1"].density_map(), 50 / 255)


def test_map_folder_jpeg_noise_is_not_a_fixation(tmp_path):
    """Faint compression noise in a fixation map is not read as fixations."""
    _png(tmp_path / "images" / "x.png", 12, 10)
    (tmp_path / "fixations").mkdir()
    m = np.zeros((10, 12), np.uint8)
    m[4, 4] = 255
    m[0, 0] = 3  # compression noise
    Image.fromarray(m).save(tmp_path / "fixations" / "x.png")
    assert sd.load_map_folder(tmp_path)["x"].points().tolist() == [[4.0, 4.0]]


def test_map_folder_errors(tmp_path):
    """Map-folder problems (no folder, no images, no or missing or mis-sized maps) are DataErrors that name them."""
    with pytest.raises(DataError, match="not a folder"):
        sd.load_map_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no image folder"):
        sd.load_map_folder(tmp_path)
    _png(tmp_path / "images" / "x.png", 12, 10)
    _png(tmp_path / "images" / "z.png", 12, 10)
    with pytest.raises(DataError, match="no fixation maps"):
        sd.load_map_folder(tmp_path)
    _binary_png(tmp_path / "fixations" / "x.png", (10, 12), [(1, 1)])
    with pytest.raises(DataError, match="1 image.*no binary fixation map.*z"):
        sd.load_map_folder(tmp_path)
    _binary_png(tmp_path / "fixations" / "z.png", (9, 12), [(1, 1)])
    with pytest.raises(DataError, match="is 12 x 9, its image is 12 x 10"):
        sd.load_map_folder(tmp_path)


# --------------------------------------------------------------------------------------------------------
# maps made elsewhere, blur units, specs
# --------------------------------------------------------------------------------------------------------

def test_load_saliency_map_formats(tmp_path):
    """8- and 16-bit PNGs and .npy maps load scaled to [0, 1] (resized on request); bad maps are DataErrors."""
    Image.fromarray(np.array([[0, 255], [51, 102]], np.uint8)).save(tmp_path / "a.png")
    np.testing.assert_allclose(sd.load_saliency_map(tmp_path / "a.png"), [[0, 1], [0.2, 0.4]])
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "b.png")
    np.testing.assert_allclose(sd.load_saliency_map(tmp_path / "b.png"), [[0, 1]])
    np.save(tmp_path / "c.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    out = sd.load_saliency_map(tmp_path / "c.npy", shape=(4, 6))
    assert out.shape == (4, 6) and out.dtype == np.float64
    np.save(tmp_path / "d.npy", np.zeros((2, 3, 3)))
    with pytest.raises(DataError, match="2-D"):
        sd.load_saliency_map(tmp_path / "d.npy")
    np.save(tmp_path / "e.npy", np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match="NaN"):
        sd.load_saliency_map(tmp_path / "e.npy")
    (tmp_path / "f.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read map"):
        sd.load_saliency_map(tmp_path / "f.png")


def test_find_saliency_maps(tmp_path):
    """find_saliency_maps prefers .npy over .png, ignores other files and lists the missing names."""
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    found, missing = sd.find_saliency_maps(tmp_path, ["a", "b", "c"])
    assert found["a"].suffix == ".npy" and found["b"].name == "b.png"
    assert missing == ["c"]
    with pytest.raises(DataError, match="does not exist"):
        sd.find_saliency_maps(tmp_path / "none", ["a"])


def test_blur_units():
    """blur_sigma takes pixels or degrees with pixels_per_degree (not both), and refuses non-positive values."""
    assert sd.blur_sigma(None) is None
    assert sd.blur_sigma(5) == 5.0
    assert sd.blur_sigma(sigma_deg=1.5, pixels_per_degree=30) == 45.0
    with pytest.raises(DataError, match="needs pixels_per_degree"):
        sd.blur_sigma(sigma_deg=1.0)
    with pytest.raises(DataError, match="not both"):
        sd.blur_sigma(3, sigma_deg=1.0, pixels_per_degree=10)
    for bad in (0, -1, float("nan")):
        with pytest.raises(DataError):
            sd.blur_sigma(bad)


def test_density_map_in_degrees_equals_pixels():
    """A blur in degrees equals the same blur in pixels exactly, and the blur is really applied."""
    item = sd.ImageFixations("a", None, (40, 30), x=np.array([10.0, 30.0]), y=np.array([5.0, 20.0]),
                             subject=np.array(["1", "2"]))
    a = item.density_map(sigma_deg=0.5, pixels_per_degree=8)
    b = item.density_map(4.0)
    assert a.shape == (30, 40)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, item.density_map(8.0))  # the blur is applied


def test_load_dataset_specs(tmp_path, csv_folder):
    """load_dataset reads csv: specs (also relative to data_dir) and refuses unknown or empty specs."""
    assert sd.load_dataset(f"csv:{csv_folder}").names == ["cat", "dog"]
    assert sd.load_dataset("csv:fixations.csv", data_dir=csv_folder).names == ["cat", "dog"]
    for bad in ("", "mit300", "csv:", "maps"):
        with pytest.raises(DataError, match="osie|data set"):
            sd.load_dataset(bad)


def test_subset_and_lookup(csv_folder):
    """subset() by count or names works; a zero count and an unknown name are DataErrors."""
    d = sd.load_csv(csv_folder)
    assert d.subset(1).names == ["cat"]
    assert d.subset(names=["dog"]).names == ["dog"]
    with pytest.raises(DataError):
        d.subset(0)
    with pytest.raises(DataError, match="no image named"):
        d["bird"]


@needs_osie
@needs_ref
def test_osie_default_density_map_is_the_mit_blur(osie):
    """Without a sigma, the ground truth is the benchmark's run_antonioGaussian(F, 25) of the binary map."""
    ref = np.load(REF / "continuous" / "1001.npy")
    np.testing.assert_allclose(osie["1001"].density_map(), ref, rtol=0, atol=1e-15)
