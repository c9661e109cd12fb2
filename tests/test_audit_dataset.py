"""``salience audit-dataset`` / :func:`salience.audit.dataset.audit_dataset`: the tables against a direct
computation from the maps the batch run wrote, resuming, the self-contained report, groups, boxes and
masks, plausibility against OSIE fixations, and clear errors for bad side inputs."""

from __future__ import annotations

import csv
import html.parser
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salience.errors import InputError, UnknownMethodError

pq = pytest.importorskip("pyarrow.parquet")

METHOD = "spectral-residual"  # bottom-up: no model, so the tests that need no class stay fast


def _photos(folder: Path, n: int = 12, size: tuple[int, int] = (96, 72)) -> list[Path]:
    """``n`` real photos (crops of scikit-image's photos, so their maps differ), ``size`` = (W, H)."""
    skdata = pytest.importorskip("skimage.data")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    srcs = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    for i in range(n):
        a = srcs[i % len(srcs)]
        h, w = a.shape[:2]
        s = 0.6 + 0.1 * (i // len(srcs))
        y0, x0 = int((h - h * s) * ((i * 37) % 10) / 10), int((w - w * s) * ((i * 53) % 10) / 10)
        crop = a[y0:y0 + int(h * s), x0:x0 + int(w * s)]
        p = folder / f"img{i:02d}.png"
        Image.fromarray(crop).resize(size).save(p)
        paths.append(p)
    return paths


def _levels(out: Path, method: str, image: str) -> np.ndarray:
    return np.asarray(Image.open(out / "maps" / method / f"{image}_{method}.png").convert("L"))


def _border_share_direct(e: np.ndarray, border: float) -> float:
    """The band by coordinates (pixel row/column index against the rounded band width), not by slicing."""
    h, w = e.shape
    by, bx = round(border * h), round(border * w)
    yy, xx = np.mgrid[0:h, 0:w]
    band = (yy < by) | (yy >= h - by) | (xx < bx) | (xx >= w - bx)
    return float(e[band].sum() / e.sum())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One audit of 12 photos with a bottom-up method, 2 groups and boxes; returns (audit, tmp folder)."""
    from salience.audit.dataset import audit_dataset

    root = tmp_path_factory.mktemp("audit")
    paths = _photos(root / "in")
    with open(root / "groups.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "group"])
        for i, p in enumerate(paths):
            w.writerow([p.name if i % 2 else p.stem, "even" if i % 2 == 0 else "odd"])
    with open(root / "boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x0", "y0", "x1", "y1"])
        for i, p in enumerate(paths):
            w.writerow([p.stem, 10 + i, 8, 60 + i, 50])
            if i == 0:
                w.writerow([p.stem, 0, 0, 5, 5])  # a second box of the first image: the union counts
    audit = audit_dataset([root / "in"], METHOD, root / "report", groups=root / "groups.csv",
                          boxes=root / "boxes.csv", min_spray=6, n_neighbors=4, n_examples=2)
    return audit, root


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_image_table_matches_a_direct_computation(run):
    """Border share from the PNG the batch run wrote, centre of mass from the float map (recomputed here
    with saliency_map), pointing game and energy from tasks.localisation; CSV and Parquet agree."""
    import salience
    from salience.io import load_image
    from salience.tasks.localisation import energy_pointing_game, pointing_game

    audit, root = run
    out = root / "report"
    csv_rows = _read(out / "images.csv")
    table = pq.read_table(out / "images.parquet").to_pylist()
    assert [r["image"] for r in csv_rows] == [r["image"] for r in table] == [f"img{i:02d}" for i in range(12)]
    assert list(csv_rows[0]) == list(table[0])
    for col in ("method", "pred_class", "com_x", "com_y", "border_share", "group", "pointing", "energy_pointing",
                "outside_share", "cluster"):
        assert col in table[0], col
    for r, c in zip(table, csv_rows):
        assert r["status"] == "ok" and r["method"] == METHOD and r["pred_class"] == -1
        e = _levels(out, METHOD, r["image"]).astype(np.float64) / 255.0
        assert r["border_share"] == pytest.approx(_border_share_direct(e, 0.1), abs=1e-12)
        assert float(c["border_share"]) == pytest.approx(r["border_share"], rel=1e-15)  # repr round-trips
        sal = salience.saliency_map(load_image(root / "in" / f"{r['image']}.png"), METHOD).astype(np.float64)
        m = sal - sal.min()
        h, w = m.shape
        assert r["com_x"] == pytest.approx(float((m.sum(0) * (np.arange(w) + 0.5) / w).sum() / m.sum()), abs=1e-5)
        assert r["com_y"] == pytest.approx(float((m.sum(1) * (np.arange(h) + 0.5) / h).sum() / m.sum()), abs=1e-5)
        i = int(r["image"][3:])
        box = [(10 + i, 8, 60 + i, 50)] + ([(0, 0, 5, 5)] if i == 0 else [])
        assert r["pointing"] == float(pointing_game(e, box))
        assert r["energy_pointing"] == pytest.approx(energy_pointing_game(e, box), abs=1e-12)
        assert r["outside_share"] == pytest.approx(1 - r["energy_pointing"], abs=1e-12)
    # img00 has two boxes: the score is the union's, more than the large box's alone
    e0 = _levels(out, METHOD, "img00").astype(np.float64) / 255.0
    assert e0[:5, :5].sum() > 0
    assert table[0]["energy_pointing"] > energy_pointing_game(e0, (10, 8, 60, 50))


def test_class_and_spray_tables_match_a_direct_computation(run):
    """The class row aggregates the image rows; SpRAy's labels and sizes are those of spray() on the
    32 x 32 area-averaged evidence maps; the mean map is the mean of the images' maps."""
    import cv2

    from salience.audit.spray import spray

    audit, root = run
    out = root / "report"
    images = pq.read_table(out / "images.parquet").to_pylist()
    (cls,) = pq.read_table(out / "classes.parquet").to_pylist()
    assert cls["n"] == 12 and cls["pred_name"] == "(all images)"
    cx = np.array([r["com_x"] for r in images])
    cy = np.array([r["com_y"] for r in images])
    assert cls["com_x_mean"] == pytest.approx(cx.mean(), abs=1e-12)
    assert cls["com_sd_x"] == pytest.approx(cx.std(ddof=1), abs=1e-12)
    assert cls["com_spread"] == pytest.approx(math.hypot(cx.std(ddof=1), cy.std(ddof=1)), abs=1e-12)
    assert cls["border_share"] == pytest.approx(np.mean([r["border_share"] for r in images]), abs=1e-12)
    assert cls["pointing"] == pytest.approx(np.mean([r["pointing"] for r in images]), abs=1e-12)
    evid = [_levels(out, METHOD, r["image"]).astype(np.float32) / 255.0 for r in images]
    small = np.stack([cv2.resize(e, (32, 32), interpolation=cv2.INTER_AREA) for e in evid])
    ref = spray(small, size=(32, 32), n_neighbors=4, max_clusters=10, seed=0)
    assert [r["cluster"] for r in images] == ref.labels.tolist()
    assert cls["n_clusters"] == ref.n_clusters
    clusters = pq.read_table(out / "clusters.parquet").to_pylist()
    assert [c["size"] for c in clusters] == ref.sizes.tolist()
    spectra = pq.read_table(out / "spectra.parquet").to_pylist()
    np.testing.assert_allclose([s["eigenvalue"] for s in spectra], ref.eigenvalues, atol=1e-9)
    big = np.stack([cv2.resize(e, (64, 64), interpolation=cv2.INTER_AREA) for e in evid]).astype(np.float64)
    np.testing.assert_allclose(audit.class_maps[(METHOD, -1)], big.mean(0), atol=1e-6)


def test_groups_every_score_and_the_worst_group(run):
    """Per group: n and the mean of every score over that group's image rows; the worst group of a
    lower-is-better score has the higher mean."""
    audit, root = run
    images = pq.read_table(root / "report" / "images.parquet").to_pylist()
    groups = {g["group"]: g for g in pq.read_table(root / "report" / "groups.parquet").to_pylist()}
    assert set(groups) == {"even", "odd"}
    for name, g in groups.items():
        mine = [r for r in images if r["group"] == name]
        assert g["n"] == len(mine) == 6
        for s in ("border_share", "com_x", "pointing", "energy_pointing", "outside_share"):
            assert g[s] == pytest.approx(np.mean([r[s] for r in mine]), abs=1e-12), s
    worst = {w["score"]: w for w in pq.read_table(root / "report" / "worst_groups.parquet").to_pylist()}
    assert set(worst) >= {"border_share", "energy_pointing", "outside_share"}
    b = worst["border_share"]
    assert groups[b["worst_group"]]["border_share"] >= groups[b["best_group"]]["border_share"]
    e = worst["energy_pointing"]
    assert groups[e["worst_group"]]["energy_pointing"] <= groups[e["best_group"]]["energy_pointing"]
    assert e["gap"] == pytest.approx(abs(groups["even"]["energy_pointing"] - groups["odd"]["energy_pointing"]))


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "data", "action") and v is not None:
                self.refs.append((tag, k, v))


def test_report_is_self_contained(run):
    """Every picture is a data: URI, links are relative (to the tables), no script or style sheet is
    loaded, and no address of another host appears anywhere in the page."""
    audit, root = run
    page = (root / "report" / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    p = _Refs()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    imgs = [v for t, k, v in p.refs if t == "img"]
    assert len(imgs) >= 12 and all(v.startswith("data:image/png;base64,") for v in imgs)
    for t, k, v in p.refs:
        assert not v.startswith("//") and "://" not in v, (t, k, v[:60])
        if t == "a":
            assert (root / "report" / v).is_file(), v
    assert "SpRAy" in page and "(all images)" in page and "worst group" in page.lower()


def test_second_run_recomputes_nothing(run):
    """The same call again: every map was done (skipped, files untouched), and the tables are the same."""
    from salience.audit.dataset import audit_dataset

    audit, root = run
    maps = sorted((root / "report" / "maps" / METHOD).glob("*.png"))
    before = {p: p.stat().st_mtime_ns for p in maps}
    again = audit_dataset([root / "in"], METHOD, root / "report", groups=root / "groups.csv",
                          boxes=root / "boxes.csv", min_spray=6, n_neighbors=4, n_examples=2)
    assert again.batch[METHOD]["done"] == 0 and again.batch[METHOD]["skipped"] == 12
    assert {p: p.stat().st_mtime_ns for p in maps} == before
    for a, b in zip(again.tables["images"], audit.tables["images"], strict=True):
        assert a.keys() == b.keys()
        for k in a:  # the same files read the same way: the same numbers
            assert a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])), k


def test_masks_give_the_scores_boxes_give(tmp_path, run):
    """A mask folder drawn from the same boxes scores the same; a mask of another size is refused with
    a message naming both sizes (after the maps exist: they are kept)."""
    from salience.audit.dataset import audit_dataset

    audit, root = run
    mdir = tmp_path / "masks"
    mdir.mkdir()
    for i in range(12):
        m = np.zeros((72, 96), np.uint8)
        m[8:50, 10 + i:60 + i] = 255
        if i == 0:
            m[0:5, 0:5] = 255
        Image.fromarray(m).save(mdir / f"img{i:02d}.png")
    got = audit_dataset([root / "in"], METHOD, root / "report", masks=f"masks:{mdir}", spray=False, report=False)
    by_box = {r["image"]: r for r in audit.tables["images"]}
    for r in got.tables["images"]:
        for s in ("pointing", "energy_pointing", "outside_share"):
            assert r[s] == pytest.approx(by_box[r["image"]][s], abs=1e-12), (r["image"], s)
    assert got.batch[METHOD]["done"] == 0
    Image.fromarray(np.zeros((70, 96), np.uint8)).save(mdir / "img03.png")
    with pytest.raises(InputError, match=r"96 x 70 .*96 x 72"):
        audit_dataset([root / "in"], METHOD, root / "report", masks=f"masks:{mdir}", spray=False, report=False)


def test_bad_side_inputs_are_refused_before_any_map(tmp_path):
    """Missing CSV columns, non-numeric boxes, masks and boxes together, a missing mask folder and an
    unknown method: a clear error, and no map computed."""
    from salience.audit.dataset import audit_dataset

    _photos(tmp_path / "in", n=2)
    out = tmp_path / "report"
    (tmp_path / "g.csv").write_text("file,group\na.png,x\n")
    with pytest.raises(InputError, match="no column image"):
        audit_dataset([tmp_path / "in"], METHOD, out, groups=tmp_path / "g.csv")
    (tmp_path / "b.csv").write_text("image,x0,y0,x1\nimg00,1,2,3\n")
    with pytest.raises(InputError, match="no column y1"):
        audit_dataset([tmp_path / "in"], METHOD, out, boxes=tmp_path / "b.csv")
    (tmp_path / "b2.csv").write_text("image,x0,y0,x1,y1\nimg00,1,2,three,4\n")
    with pytest.raises(InputError, match="line 2: x0, y0, x1, y1 must be numbers"):
        audit_dataset([tmp_path / "in"], METHOD, out, boxes=tmp_path / "b2.csv")
    with pytest.raises(InputError, match="masks or boxes, not both"):
        audit_dataset([tmp_path / "in"], METHOD, out, boxes=tmp_path / "b2.csv", masks="masks:x")
    with pytest.raises(InputError, match="no such folder"):
        audit_dataset([tmp_path / "in"], METHOD, out, masks=f"masks:{tmp_path / 'nope'}")
    with pytest.raises(UnknownMethodError):
        audit_dataset([tmp_path / "in"], "no-such-method", out)
    assert not out.exists()


def test_cli_reports_bad_input_on_one_line(tmp_path, capsys):
    """Exit status 2 and one line naming the missing column; a good run prints the summary line."""
    from salience.cli import main

    _photos(tmp_path / "in", n=3)
    (tmp_path / "g.csv").write_text("image\nimg00\n")
    assert main(["audit-dataset", str(tmp_path / "in"), "--method", METHOD, "--groups", str(tmp_path / "g.csv"),
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no column group" in err[0], err
    assert main(["audit-dataset", str(tmp_path / "in"), "--method", METHOD, "--out", str(tmp_path / "r"),
                 "--no-spray"]) == 0
    assert "3 map(s) computed now" in capsys.readouterr().out
    assert (tmp_path / "r" / "index.html").is_file() and (tmp_path / "r" / "classes.csv").is_file()
    # a corrupt image fails alone: exit status 1, its row says why, the class counts the others
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["audit-dataset", str(tmp_path / "in"), "--method", METHOD, "--out", str(tmp_path / "r"),
                 "--no-spray"]) == 1
    cap = capsys.readouterr()
    assert "broken.png" in cap.err and "0 map(s) computed now, 3 done before, 1 failed" in cap.out
    rows = {r["image"]: r for r in _read(tmp_path / "r" / "images.csv")}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    assert [c["n"] for c in _read(tmp_path / "r" / "classes.csv")] == ["3"]


@pytest.mark.slow
def test_gradcam_audit_records_the_predicted_class(tmp_path):
    """With Grad-CAM on the default model each image's class is the model's top-1 class (computed here
    directly), and the classes table counts the images per predicted class."""
    pytest.importorskip("torch")
    import torch

    import salience
    from salience.audit.dataset import audit_dataset
    from salience.io import load_image

    paths = _photos(tmp_path / "in", n=5, size=(128, 96))
    audit = audit_dataset([tmp_path / "in"], "gradcam", tmp_path / "r", min_spray=3, n_neighbors=2,
                          device="cpu")
    lm = salience.load_model()
    rows = {r["image"]: r for r in audit.tables["images"]}
    for p in paths:
        x = lm.preprocess(load_image(p), crop=False)
        with torch.no_grad():
            want = int(lm.model(x).argmax(1)[0])
        assert rows[p.stem]["pred_class"] == want
    counts: dict[int, int] = {}
    for r in rows.values():
        counts[r["pred_class"]] = counts.get(r["pred_class"], 0) + 1
    assert {c["pred_class"]: c["n"] for c in audit.tables["classes"]} == counts
    assert all(0 <= r["pred_prob"] <= 1 for r in rows.values())


@pytest.mark.slow
def test_fixations_score_the_maps_beside_the_fixation_model_and_centre_bias(shared_data, tmp_path):
    """Four OSIE images: each map's NSS and CC equal the metrics computed here on the map file and the
    image's fixations; the learned model and the centre bias are scored on the same images; a second run
    computes no score again."""
    pytest.importorskip("torch")
    from salience.audit.dataset import audit_dataset
    from salience.datasets import load_dataset, load_saliency_map
    from salience.metrics import cc, nss

    osie = shared_data / "osie"
    ds = load_dataset("osie", osie)
    items = list(ds)[:4]
    inputs = [str(it.image_path) for it in items]
    out = tmp_path / "r"
    audit = audit_dataset(inputs, METHOD, out, fixations="osie", data_dir=osie, fixation_metrics="nss,cc",
                          spray=False)
    fx = audit.tables["fixations"]
    assert {(r["method"], r["metric"]) for r in fx} == {(m, k) for m in (METHOD, "deepgaze-mnv2", "centre-bias")
                                                        for k in ("nss", "cc")}
    assert all(r["n"] == 4 for r in fx)
    rows = {r["image"]: r for r in audit.tables["images"]}
    for it in items:
        m = load_saliency_map(out / "maps" / METHOD / f"{it.name}_{METHOD}.png", shape=it.shape)
        assert rows[it.name]["fix_nss"] == pytest.approx(nss(m, it.points()), abs=1e-9)
        assert rows[it.name]["fix_cc"] == pytest.approx(cc(m, it.density_map()), abs=1e-9)  # the MIT blur
    mean = {r["method"]: r["mean"] for r in fx if r["metric"] == "nss"}
    assert mean[METHOD] == pytest.approx(np.mean([rows[it.name]["fix_nss"] for it in items]), abs=1e-12)
    assert mean["deepgaze-mnv2"] > mean["centre-bias"] - 1.0  # both real numbers, both scored
    page = (out / "index.html").read_text()
    assert "deepgaze-mnv2" in page and "centre bias" in page
    again = audit_dataset(inputs, METHOD, out, fixations="osie", data_dir=osie, fixation_metrics="nss,cc",
                          spray=False)
    assert again.options["fixation_computed"] == 0 and again.batch[METHOD]["done"] == 0
    view = sorted(p.name for p in (out / "fixations" / "maps" / METHOD).iterdir())
    assert view == sorted(f"{it.name}.png" for it in items)  # exactly this run's maps, by image name
    # another setting of the method: its own maps (tagged files) and its own label, nothing resumed
    other = audit_dataset(inputs, METHOD, out, params={METHOD: {"width": 32}}, fixations="osie", data_dir=osie,
                          fixation_metrics="nss,cc", spray=False, report=False)
    assert other.batch[METHOD]["done"] == 4 and other.options["fixation_computed"] == 4  # the new label only
    tagged = [p for p in (out / "fixations" / "maps").iterdir() if p.name.startswith(f"{METHOD}@")]
    assert len(tagged) == 1


def test_docs_name_the_command():
    """The command is registered (``salience --help`` lists it)."""
    from salience.cli import COMMANDS, build_parser

    assert "audit-dataset" in COMMANDS
    assert "audit-dataset" in build_parser().format_help()
    assert os.path.isfile(Path(__file__).resolve().parents[1] / "docs" / "audit.md")


def _synthetic_audit(tmp_path: Path, corner: bool):
    """A DatasetAudit of 20 maps of one class, 6 of them (with ``corner``) with their evidence in the
    top-left corner and the others in the middle; SpRAy run on them as the audit runs it."""
    import cv2

    from salience.audit.dataset import DatasetAudit, border_area, border_share
    from salience.audit.spray import spray

    rng = np.random.default_rng(0)
    rows, small = [], {}
    (tmp_path / "img").mkdir()
    for i in range(20):
        e = rng.random((60, 80)) * 0.05
        if corner and i < 6:
            e[:10, :12] += 1.0
        else:
            e[20:40, 30:50] += 1.0
        p = tmp_path / "img" / f"s{i:02d}.png"
        Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(p)
        rows.append({"method": "m", "image": p.stem, "input": str(p), "status": "ok", "error": None,
                     "pred_class": 3, "pred_name": "three", "pred_prob": 0.9, "com_x": 0.5, "com_y": 0.5,
                     "com_dev": 0.0, "border_share": border_share(e), "border_area": border_area(e.shape)})
        small[("m", p.stem)] = cv2.resize(e.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    res = spray(np.stack([small[("m", r["image"])] for r in rows]), n_neighbors=5, seed=0)
    for r, lab in zip(rows, res.labels.tolist()):
        r["cluster"] = lab
    cls = {"method": "m", "pred_class": 3, "pred_name": "three", "n": 20, "com_x_mean": 0.5, "com_y_mean": 0.5,
           "com_sd_x": 0.0, "com_sd_y": 0.0, "com_spread": 0.0, "border_share": 0.2, "n_clusters": res.n_clusters}
    audit = DatasetAudit(out=tmp_path, methods=["m"], model="test")
    audit.tables = {"images": rows, "classes": [cls]}
    audit.class_maps[("m", 3)] = np.mean([cv2.resize(v, (64, 64)) for v in small.values()], axis=0)
    audit.spray[("m", 3)] = res
    audit.members[("m", 3)] = [r["image"] for r in rows]
    audit.small = small
    audit.options = {"inputs": [str(tmp_path / "img")], "n_examples": 1}
    return audit, res


@pytest.mark.parametrize("corner", [True, False])
def test_report_names_a_cluster_whose_evidence_sits_near_the_border(tmp_path, corner):
    """The sentence a user looks for: six maps with their evidence in a corner form SpRAy's second cluster
    and the report calls it a candidate shortcut; without them there is no such sentence."""
    from salience.audit.report import write_report

    audit, res = _synthetic_audit(tmp_path, corner)
    page = write_report(audit, tmp_path / "index.html").read_text(encoding="utf-8")
    said = "a candidate shortcut" in page
    assert said == corner
    if corner:
        assert res.n_clusters == 2 and sorted(res.members(1).tolist()) == list(range(6))
        assert "Cluster 1 (6 of 20 images) puts" in page
