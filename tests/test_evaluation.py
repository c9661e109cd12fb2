"""The evaluation runner: baselines, confidence intervals, resuming, determinism across job counts."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience
import salience.evaluation as ev
from salience.datasets import FixationDataset, ImageFixations, load_csv
from salience.errors import DataError, InputError, OutputExistsError, UnknownMethodError

FAST = "centre-bias,chance,human"
FAST_METRICS = "auc_judd,sauc,nss,cc,kld,sim,ig"


def make_folder(root: Path, n_images: int = 4, size=(48, 36), n_subjects: int = 3, seed: int = 7) -> Path:
    """A small CSV data set: textured images, subjects fixating near a bright blob and the centre."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    w, h = size
    rows = []
    for i in range(n_images):
        img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
        cx, cy = rng.integers(8, w - 8), rng.integers(8, h - 8)
        img[cy - 3:cy + 3, cx - 3:cx + 3] = 255
        Image.fromarray(img).save(root / "images" / f"im{i:02d}.png")
        for s in range(n_subjects):
            for _ in range(4):
                if rng.random() < 0.6:
                    x, y = cx + rng.normal(0, 1.5), cy + rng.normal(0, 1.5)
                else:
                    x, y = w / 2 + rng.normal(0, 5), h / 2 + rng.normal(0, 5)
                rows.append([f"im{i:02d}.png", f"s{s}", f"{np.clip(x, 0, w - 1):.2f}", f"{np.clip(y, 0, h - 1):.2f}"])
    with open(root / "fixations.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["image", "subject", "x", "y"])
        wr.writerows(rows)
    return root


@pytest.fixture
def data(tmp_path):
    return load_csv(make_folder(tmp_path / "data"))


def metric_values(rows, metrics):
    return {(r["image"], r["method"]): tuple(r[k] for k in metrics) for r in rows}


# --------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------

def test_ci95_known_numbers():
    """ci95 gives the Student-t 95% interval computed by hand for small samples (and zero width for constant data)."""
    mean, lo, hi = ev.ci95([1.0, 2.0, 3.0])
    t975_2 = 4.302652729911275  # Student t, 2 degrees of freedom, 97.5th percentile
    assert mean == 2.0
    assert hi - mean == pytest.approx(t975_2 * 1.0 / math.sqrt(3), rel=1e-9)
    assert mean - lo == pytest.approx(hi - mean, rel=1e-12)
    mean, lo, hi = ev.ci95([0.5] * 10)
    assert (mean, lo, hi) == (0.5, 0.5, 0.5)
    # 10 values, sd = sqrt(110/12)... computed by hand: values 1..10, mean 5.5, sd 3.0276503540974917
    mean, lo, hi = ev.ci95(range(1, 11))
    t_975_9 = 2.262157162740992  # Student t, 97.5th percentile, 9 degrees of freedom
    assert mean == 5.5 and (hi - lo) / 2 == pytest.approx(t_975_9 * 3.0276503540974917 / math.sqrt(10), rel=1e-9)


def test_ci95_ignores_nan_and_handles_tiny_samples():
    """ci95 drops NaNs; one value gives a NaN interval, none gives all NaN."""
    assert ev.ci95([2.0, float("nan"), 4.0])[0] == 3.0
    m, lo, hi = ev.ci95([7.0])
    assert m == 7.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in ev.ci95([]))


def test_summarize_counts_undefined():
    """summarize averages the defined values and counts the undefined (NaN) ones separately."""
    rows = [{"method": "a", "nss": 1.0}, {"method": "a", "nss": float("nan")}, {"method": "a", "nss": 3.0},
            {"method": "b", "nss": float("nan")}]
    s = {x.method: x for x in ev.summarize(rows, ["a", "b"], ["nss"])}
    assert (s["a"].n, s["a"].n_undefined, s["a"].mean) == (2, 1, 2.0)
    assert (s["b"].n, s["b"].n_undefined) == (0, 1) and math.isnan(s["b"].mean)


def test_image_seed_is_stable_and_distinct():
    """The per-image seed is stable, differs by image and run, and its derivation is pinned."""
    assert ev.image_seed("1001", "chance") == ev.image_seed("1001", "chance")
    assert ev.image_seed("1001", "chance") != ev.image_seed("1002", "chance")
    assert ev.image_seed("1001", "chance", 1) != ev.image_seed("1001", "chance", 0)
    # pinned: a change of the derivation would silently change every published random result
    assert ev.image_seed("1001", "chance") == int.from_bytes(
        __import__("hashlib").sha256(b"0:1001:chance").digest()[:8], "little") >> 1


# --------------------------------------------------------------------------------------------------------
# method and metric lists
# --------------------------------------------------------------------------------------------------------

def test_resolve_methods_uses_the_registry():
    """Methods come from the registry, with the baselines' aliases; a typo gets a "did you mean"."""
    specs = ev.resolve_methods("bottom-up")
    assert [s.name for s in specs] == salience.registry.method_names("bottom-up")
    assert [s.label for s in ev.resolve_methods("baselines")] == ["centre-bias", "chance", "human"]
    assert [s.label for s in ev.resolve_methods("center,inter-observer,random")] == ["centre-bias", "human", "chance"]
    with pytest.raises(UnknownMethodError, match="did you mean"):
        ev.resolve_methods("itti-kosh")
    with pytest.raises(InputError, match="no method"):
        ev.resolve_methods("")


def test_resolve_methods_prior_labels():
    """A blur/centre-bias prior shows in the method's label, is not applied to the centre-bias map, and is range-
    checked."""
    specs = ev.resolve_methods("spectral-residual,centre-bias", blur=0.02, centre_bias=0.3)
    assert [s.label for s in specs] == ["spectral-residual[blur=0.02,cb=0.3]", "centre-bias"]
    assert specs[0].blur == 0.02 and specs[0].centre_bias == 0.3
    assert specs[1].blur == 0 and specs[1].centre_bias == 0  # the prior itself is not given a prior
    with pytest.raises(InputError, match="centre_bias"):
        ev.resolve_methods("itti", centre_bias=1.5)
    with pytest.raises(InputError, match="blur"):
        ev.resolve_methods("itti", blur=-1)


def test_resolve_metrics():
    """resolve_metrics resolves aliases into METRICS order and refuses unknown names."""
    from salience.metrics import METRICS

    assert ev.resolve_metrics("all") == tuple(METRICS)
    assert ev.resolve_metrics("nss,AUC-Judd") == ("auc_judd", "nss")  # in METRICS order
    with pytest.raises(InputError, match="unknown metric.*bogus"):
        ev.resolve_metrics("nss,bogus")


# --------------------------------------------------------------------------------------------------------
# the inter-observer ceiling
# --------------------------------------------------------------------------------------------------------

def test_human_ceiling_is_leave_one_subject_out():
    """Each subject is predicted by the blurred map of the others; the image's value is the subject mean."""
    from salience.metrics import evaluate

    P, Q = (10.0, 8.0), (30.0, 20.0)
    item = ImageFixations("a", None, (40, 30), x=np.array([P[0], P[0], Q[0]]), y=np.array([P[1], P[1], Q[1]]),
                          subject=np.array(["1", "2", "3"]))
    sigma = 3.0
    got = ev.human_ceiling(item, metrics=["auc_judd", "nss"], sigma=sigma)
    # by hand: subjects 1 and 2 are predicted by {P, Q}, subject 3 by {P}
    pq = item.density_map(sigma, points=np.array([P, Q]))
    p_only = item.density_map(sigma, points=np.array([P]))
    expect = []
    for pred, pt in ((pq, P), (pq, P), (p_only, Q)):
        expect.append(evaluate(pred, np.array([pt]), metrics=["auc_judd", "nss"], convention="mit"))
    for k in ("auc_judd", "nss"):
        assert got[k] == pytest.approx(np.mean([e[k] for e in expect]), rel=1e-12)
    # and subject 3's fixation is far from the others': the ceiling is lower than with all three together
    assert got["nss"] < ev.human_ceiling(
        ImageFixations("b", None, (40, 30), x=np.array([P[0]] * 3), y=np.array([P[1]] * 3),
                       subject=np.array(["1", "2", "3"])), metrics=["nss"], sigma=sigma)["nss"]


def test_human_ceiling_when_everyone_fixates_one_pixel():
    """All subjects on the same pixel: the others' map peaks exactly there, so AUC-Judd is 1."""
    item = ImageFixations("a", None, (40, 30), x=np.array([12.0, 12.0, 12.0, 12.0]),
                          y=np.array([9.0, 9.0, 9.0, 9.0]), subject=np.array(["1", "2", "3", "4"]))
    assert ev.human_ceiling(item, metrics=["auc_judd"], sigma=3.0)["auc_judd"] == pytest.approx(1.0, abs=1e-9)


def test_human_ceiling_needs_two_subjects():
    """The human ceiling is NaN when an image has only one subject (no one to leave out)."""
    item = ImageFixations("a", None, (40, 30), x=np.array([1.0, 2.0]), y=np.array([1.0, 2.0]),
                          subject=np.array(["1", "1"]))
    assert all(math.isnan(v) for v in ev.human_ceiling(item, metrics=["nss", "cc"]).values())


def test_human_baseline_needs_subjects(tmp_path):
    """The human baseline on data without subjects is a DataError, not a silent number."""
    item = ImageFixations("a", None, (8, 8), x=np.array([1.0]), y=np.array([1.0]), subject=np.array(["?"]))
    d = FixationDataset("maps", (item,))
    with pytest.raises(DataError, match="human.*subject"):
        ev.evaluate_dataset(d, "human", metrics="nss")


# --------------------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------------------

def test_evaluate_dataset_rows_and_table(data):
    """evaluate_dataset gives one finite row per image and method, IG 0 for the centre map, humans above chance, and a
    table."""
    res = ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0)
    assert res.methods == ["centre-bias", "chance", "human"]
    assert len(res.rows) == 4 * 3 and res.computed == 12 and res.resumed == 0
    assert [r["image"] for r in res.rows[:3]] == ["im00"] * 3
    for r in res.rows:
        assert r["convention"] == "mit" and r["fixation_sigma"] == "3" and r["n_fixations"] == 12
        for k in ev.resolve_metrics(FAST_METRICS):
            assert math.isfinite(r[k]), (r["method"], k)
    by = {(s.method, s.metric): s for s in res.summary}
    # IG is measured against the centre-bias map: the centre baseline scores exactly 0
    assert by[("centre-bias", "ig")].mean == 0.0
    # the blob-fixating subjects agree with each other far more than chance
    assert by[("human", "nss")].mean > by[("chance", "nss")].mean + 1.0
    text = res.table()
    assert "centre-bias" in text and "human" in text and "±" in text and "kld (lower better)" in text
    md = res.table(markdown=True)
    assert md.splitlines()[1].startswith("|---")


def test_chance_is_near_chance(data):
    """A uniform random map scores about 0.5 AUC and about 0 NSS / CC."""
    res = ev.evaluate_dataset(data, "chance", metrics="auc_judd,nss,cc", sigma=3.0)
    by = {s.metric: s for s in res.summary}
    assert abs(by["auc_judd"].mean - 0.5) < 0.15
    assert abs(by["nss"].mean) < 0.6 and abs(by["cc"].mean) < 0.15


def test_jobs_do_not_change_results(data):
    """Two worker processes give exactly the same scores as one."""
    metrics = ev.resolve_metrics(FAST_METRICS)
    one = ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0, jobs=1)
    two = ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0, jobs=2)
    a, b = metric_values(one.rows, metrics), metric_values(two.rows, metrics)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.array(a[key]), np.array(b[key]), err_msg=str(key))


def test_limit_does_not_change_an_images_result(data):
    """sAUC's negatives come from all images of the data set, so --limit leaves each image's value alone."""
    full = ev.evaluate_dataset(data, "centre-bias,chance", metrics="sauc,auc_borji", sigma=3.0)
    part = ev.evaluate_dataset(data, "centre-bias,chance", metrics="sauc,auc_borji", sigma=3.0, limit=2)
    a = metric_values(full.rows, ("sauc", "auc_borji"))
    for key, vals in metric_values(part.rows, ("sauc", "auc_borji")).items():
        assert a[key] == vals


def test_resume_after_interruption_does_not_recompute(data, tmp_path, monkeypatch):
    """After an interruption, --resume keeps the finished rows and computes only the unfinished images."""
    out = tmp_path / "rows.csv"
    real = ev._evaluate_image
    calls: list[str] = []

    def interrupted(task):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(data[task[0]].name)
        return real(task)

    monkeypatch.setattr(ev, "_evaluate_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0, out=out)
    finished = ev.read_rows(out)
    assert {r["image"] for r in finished} == {"im00", "im01"} and len(finished) == 6
    before = out.read_text().splitlines()

    calls.clear()
    monkeypatch.setattr(ev, "_evaluate_image", lambda task: (calls.append(data[task[0]].name), real(task))[1])
    res = ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0, out=out, resume=True)
    assert calls == ["im02", "im03"]  # only the unfinished images
    assert res.resumed == 6 and res.computed == 6 and len(res.rows) == 12
    after = out.read_text().splitlines()
    assert after[: len(before)] == before  # finished rows kept byte for byte (their timings included)
    fresh = ev.evaluate_dataset(data, FAST, metrics=FAST_METRICS, sigma=3.0)
    metrics = ev.resolve_metrics(FAST_METRICS)
    a, b = metric_values(res.rows, metrics), metric_values(fresh.rows, metrics)
    assert a.keys() == b.keys()
    for key in a:  # the CSV keeps every float digit (repr), so resumed values equal fresh ones exactly
        np.testing.assert_array_equal(np.array(a[key]), np.array(b[key]), err_msg=str(key))


def test_resume_with_limit_then_more_images(data, tmp_path):
    """Resuming with a larger limit or a new method computes only the missing (image, method) pairs."""
    out = tmp_path / "rows.csv"
    ev.evaluate_dataset(data, "centre-bias,chance", metrics="nss", sigma=3.0, out=out, limit=1)
    res = ev.evaluate_dataset(data, "centre-bias,chance", metrics="nss", sigma=3.0, out=out, limit=3, resume=True)
    assert (res.resumed, res.computed, res.n_images) == (2, 4, 3)
    # a new method on the same images: only its pairs are computed
    res = ev.evaluate_dataset(data, "centre-bias,chance,human", metrics="nss", sigma=3.0, out=out, limit=3,
                              resume=True)
    assert (res.resumed, res.computed) == (6, 3)


def test_resume_drops_a_half_written_last_line(data, tmp_path):
    """A half-written last line (a crash mid-write) is dropped and recomputed on resume."""
    out = tmp_path / "rows.csv"
    ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=2)
    text = out.read_text()
    out.write_text(text + "im02,chance,mit,3,12,0.12")  # a write cut off by a crash
    res = ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=3, resume=True)
    assert (res.resumed, res.computed) == (2, 1)
    rows = ev.read_rows(out)
    assert [r["image"] for r in rows] == ["im00", "im01", "im02"]


def _drop_columns(path: Path, names: set[str]) -> None:
    """Rewrite a results CSV as an earlier release wrote it: without the columns ``names``."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, c in enumerate(rows[0]) if c not in names]
    path.write_text("".join(",".join(r[i] for i in keep) + "\n" for r in rows))


@pytest.mark.parametrize("missing", [{"sauc_others"}, {"sauc_others", "n_clipped"}])
def test_resume_a_file_of_an_earlier_release(data, tmp_path, missing):
    """Files written before the n_clipped / sauc_others columns existed still resume: the old rows are kept
    as they are and the new ones are written in the file's own columns, so every line matches its header."""
    out = tmp_path / "rows.csv"
    ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=2)
    _drop_columns(out, missing)
    before = out.read_text()
    res = ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=3, resume=True)
    assert (res.resumed, res.computed) == (2, 1)
    text = out.read_text()
    assert text.startswith(before)  # nothing the user had is changed
    lines = text.splitlines()
    assert len({line.count(",") for line in lines}) == 1 and not any(m in lines[0] for m in missing)
    assert [r["image"] for r in ev.read_rows(out)] == ["im00", "im01", "im02"]


def test_resume_refuses_to_mix_shuffled_auc_negatives(data, tmp_path):
    """sAUC rows record how many other images gave the negatives; a resume with another count, or over a
    file that did not record it, is refused rather than mixing two definitions in one file."""
    out = tmp_path / "rows.csv"
    ev.evaluate_dataset(data, "chance", metrics="sauc", sigma=3.0, out=out, limit=1, sauc_others=2)
    assert {r["sauc_others"] for r in ev.read_rows(out)} == {"2"}
    res = ev.evaluate_dataset(data, "chance", metrics="sauc", sigma=3.0, out=out, limit=2, sauc_others=2,
                              resume=True)
    assert (res.resumed, res.computed) == (1, 1)
    with pytest.raises(DataError, match="--sauc-others 2"):
        ev.evaluate_dataset(data, "chance", metrics="sauc", sigma=3.0, out=out, resume=True, sauc_others=3)
    _drop_columns(out, {"sauc_others"})
    with pytest.raises(DataError, match="did not record"):
        ev.evaluate_dataset(data, "chance", metrics="sauc", sigma=3.0, out=out, resume=True, sauc_others=2)


def test_output_guards(data, tmp_path):
    """An existing output is kept unless --resume/--overwrite, and a resume with other columns, convention or sigma is
    refused."""
    out = tmp_path / "rows.csv"
    ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=1)
    with pytest.raises(OutputExistsError, match="--resume.*--overwrite"):
        ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=1)
    with pytest.raises(DataError, match="columns"):
        ev.evaluate_dataset(data, "chance", metrics="nss,cc", sigma=3.0, out=out, resume=True)
    with pytest.raises(DataError, match="convention"):
        ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, resume=True, convention="tuebingen")
    with pytest.raises(DataError, match="sigma"):
        ev.evaluate_dataset(data, "chance", metrics="nss", sigma=4.0, out=out, resume=True)
    with pytest.raises(InputError, match="--out"):
        ev.evaluate_dataset(data, "chance", metrics="nss", resume=True)
    res = ev.evaluate_dataset(data, "chance", metrics="nss", sigma=3.0, out=out, limit=2, overwrite=True)
    assert res.computed == 2 and len(ev.read_rows(out)) == 2


def test_parquet_output_and_resume(data, tmp_path):
    """Parquet output works and resumes, leaving no partial CSV behind, with float columns."""
    pytest.importorskip("pyarrow")
    out = tmp_path / "rows.parquet"
    ev.evaluate_dataset(data, "centre-bias,chance", metrics="nss,cc", sigma=3.0, out=out, limit=2)
    assert out.exists() and not (tmp_path / "rows.parquet.partial.csv").exists()
    res = ev.evaluate_dataset(data, "centre-bias,chance", metrics="nss,cc", sigma=3.0, out=out, resume=True)
    assert (res.resumed, res.computed) == (4, 4)
    rows = ev.read_rows(out)
    assert len(rows) == 8 and {r["method"] for r in rows} == {"centre-bias", "chance"}
    assert all(isinstance(r["nss"], float) for r in rows)


def test_precomputed_maps_folder(data, tmp_path):
    """Maps made elsewhere are matched by stem; a folder holding the centre-bias maps scores as centre-bias."""
    from salience.bottomup.baselines import centre_bias

    folder = tmp_path / "mymodel"
    folder.mkdir()
    for it in data.items[:3]:  # im03 has no map
        np.save(folder / f"{it.name}.npy", centre_bias(np.zeros((*it.shape, 3), np.float32)))
    res = ev.evaluate_dataset(data, "centre-bias", metrics="auc_judd,nss,cc", sigma=3.0, saliency_maps=[folder])
    assert res.methods == ["centre-bias", "maps:mymodel"]
    assert res.missing == {"maps:mymodel": ["im03"]}
    vals = metric_values(res.rows, ("auc_judd", "nss", "cc"))
    for it in data.items[:3]:
        mine, ref = vals[(it.name, "maps:mymodel")], vals[(it.name, "centre-bias")]
        assert mine[1:] == pytest.approx(ref[1:], rel=1e-6)  # NSS, CC: deterministic
        assert mine[0] == pytest.approx(ref[0], abs=0.02)  # AUC-Judd: MIT's jitter breaks ties at random
    assert (("im03", "maps:mymodel")) not in vals


def test_bad_arguments(data):
    """A bad convention, jobs, sigma or data set type is an InputError naming it."""
    with pytest.raises(InputError, match="convention"):
        ev.evaluate_dataset(data, "chance", convention="matlab")
    with pytest.raises(InputError, match="jobs"):
        ev.evaluate_dataset(data, "chance", jobs=0)
    with pytest.raises(InputError, match="sigma"):
        ev.evaluate_dataset(data, "chance", sigma=-2)
    with pytest.raises(InputError, match="FixationDataset"):
        ev.evaluate_dataset([1, 2], "chance")


# --------------------------------------------------------------------------------------------------------
# the optional centre-bias prior and blur of salience.saliency_map
# --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(3)
    img = rng.random((60, 80, 3)).astype(np.float32) * 0.3
    img[10:20, 60:72] = 1.0
    return img


def test_prior_defaults_change_nothing(photo):
    """blur=0 and centre_bias=0 give exactly the map without a prior."""
    a = salience.saliency_map(photo, "centre-bias")
    b = salience.saliency_map(photo, "centre-bias", blur=0.0, centre_bias=0.0)
    np.testing.assert_array_equal(a, b)


def test_centre_bias_weight_interpolates(photo):
    """centre_bias=w is the (1 - w) / w mix of the map and the centre map, in [0, 1]."""
    plain = salience.saliency_map(photo, "spectral-residual").astype(np.float64)
    centre = salience.saliency_map(photo, "centre-bias").astype(np.float64)
    full = salience.saliency_map(photo, "spectral-residual", centre_bias=1.0)
    np.testing.assert_allclose(full, centre, atol=1e-6)
    half = salience.saliency_map(photo, "spectral-residual", centre_bias=0.25)
    np.testing.assert_allclose(half, 0.75 * plain + 0.25 * centre, atol=1e-6)
    assert half.dtype == np.float32 and half.min() >= 0 and half.max() <= 1


def test_blur_smooths_and_keeps_the_range(photo):
    """blur is the documented Gaussian of sigma blur x width (reflecting), then min-max to [0, 1]."""
    plain = salience.saliency_map(photo, "spectral-residual")
    blurred = salience.saliency_map(photo, "spectral-residual", blur=0.05)
    assert blurred.shape == plain.shape and blurred.dtype == np.float32
    assert blurred.min() == 0.0 and blurred.max() == pytest.approx(1.0)
    # the documented definition: a Gaussian of sigma blur x width (reflecting borders), then min-max
    from scipy.ndimage import gaussian_filter

    ref = gaussian_filter(plain.astype(np.float64), 0.05 * 80, mode="reflect")
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    np.testing.assert_allclose(blurred, ref, atol=1e-5)
    assert not np.allclose(blurred, plain, atol=1e-2)


def test_prior_argument_errors(photo):
    """Out-of-range priors and a prior on an explanation method are InputErrors."""
    with pytest.raises(InputError, match="centre_bias"):
        salience.saliency_map(photo, "spectral-residual", centre_bias=2.0)
    with pytest.raises(InputError, match="blur"):
        salience.saliency_map(photo, "spectral-residual", blur=float("nan"))
    with pytest.raises(InputError, match="bottom-up methods only"):
        salience.saliency_map(photo, "gradcam", blur=0.02)
