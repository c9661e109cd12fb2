"""The Ray engine of salience batch: the same maps and manifest rows as the local engine, and each resumes
the other.  One local Ray instance for the module (its start-up is slow on a loaded 2-core machine)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import salience.batch

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra (pip install 'salience[ray]')")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.slow  # Ray start-up alone is ~20 s here


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.floor(np.asarray(arr) * 255 + 0.5).astype(np.uint8)).save(path)


_SAME = ("key", "input", "rel", "method", "params", "model", "status", "png", "npy", "height", "width",
         "top_class", "top_name", "error")
_CLOSE = ("min", "max", "mean", "entropy", "com_x", "com_y", "top_prob")


def _compare(a_rows, b_rows, a_dir, b_dir, *, exact=True):
    """Same rows (statistics to float rounding) and, with ``exact``, byte-identical PNGs; without it
    (other images batched together), explanation maps agree to 2 grey levels."""
    assert [[r[c] for c in _SAME] for r in a_rows] == [[r[c] for c in _SAME] for r in b_rows]
    for ra, rb in zip(a_rows, b_rows):
        tol = 1e-6 if exact or ra["model"] is None else 1e-2
        for c in _CLOSE:
            assert (ra[c] is None) == (rb[c] is None)
            if ra[c] is not None:
                assert ra[c] == pytest.approx(rb[c], rel=tol, abs=1e-9), (c, ra["rel"], ra["method"])
        if ra["png"] and ra["status"] == "ok":
            a, b = (a_dir / ra["png"]).read_bytes(), (b_dir / rb["png"]).read_bytes()
            if exact or ra["model"] is None:
                assert a == b, ra["png"]
            else:
                import io

                d = np.abs(np.asarray(Image.open(io.BytesIO(a)), np.int16) - np.asarray(Image.open(io.BytesIO(b)), np.int16))
                assert d.max() <= 2, ra["png"]


def test_ray_matches_local_and_each_resumes_the_other(ray_local, tmp_path, photos):
    """The Ray engine writes the same bytes and rows as the local one, and each resumes a run the other stopped."""
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    full = tmp_path / "full"
    for i, n in enumerate(names):
        _write(full / f"s{i % 2}" / f"{n}.png", photos[n])
    methods = "spectral-residual,gradcam"
    # local, uninterrupted; 2 workers of 1 thread each, as the 2 Ray actors of 1 CPU (torch's CPU sums
    # depend on the thread count, so only runs with the same threads per worker give the same bytes)
    ref = salience.batch.run([full], methods, out=tmp_path / "ref", batch_size=2, workers=2)
    ref_rows = ref.to_pylist()
    assert {r["status"] for r in ref_rows} == {"ok"} and {r["engine"] for r in ref_rows} == {"local"}

    # a Ray run of the whole job into a fresh folder: the same bytes and rows
    s = salience.batch.RunSummary()
    got = salience.batch.run([full], methods, out=tmp_path / "ray", batch_size=2, engine="ray", workers=2,
                             summary=s).to_pylist()
    assert s.done == 8 and {r["engine"] for r in got} == {"ray"}
    _compare(ref_rows, got, tmp_path / "ref", tmp_path / "ray")

    # a local run stopped half-way (2 of 4 images), finished by Ray
    part = tmp_path / "part"
    out = tmp_path / "resumed"
    for i, n in enumerate(names[:2]):
        _write(part / f"s{i % 2}" / f"{n}.png", photos[n])
    salience.batch.run([part], methods, out=out, batch_size=2)
    for i, n in enumerate(names[2:], start=2):
        _write(part / f"s{i % 2}" / f"{n}.png", photos[n])
    s = salience.batch.RunSummary()
    rows = salience.batch.run([part], methods, out=out, batch_size=2, engine="ray", workers=2, summary=s).to_pylist()
    assert s.skipped == 4 and s.done == 4
    engines = {r["rel"]: r["engine"] for r in rows}
    assert engines == {"s0/astronaut": "local", "s1/coffee": "local", "s0/chelsea": "ray", "s1/rocket": "ray"}
    order = {r["rel"]: i for i, r in enumerate(ref_rows)}
    rows.sort(key=lambda r: (order[r["rel"]], r["method"] != "spectral-residual"))
    ref_sorted = sorted(ref_rows, key=lambda r: (order[r["rel"]], r["method"] != "spectral-residual"))
    for r in rows + ref_sorted:
        r["input"] = r["input"].replace(str(part), "<in>").replace(str(full), "<in>")
    _compare(ref_sorted, rows, tmp_path / "ref", out, exact=False)

    # and the other way round: a Ray run's jobs are skipped by a local run of the same job
    s = salience.batch.RunSummary()
    salience.batch.run([full], methods, out=tmp_path / "ray", batch_size=2, summary=s)
    assert s.skipped == 8 and s.done == 0
