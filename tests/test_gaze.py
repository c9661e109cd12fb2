"""The learned fixation model (salience.gaze, registry method deepgaze-mnv2): weights, density, training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import salience
from salience.errors import DataError, ModelError
from salience.registry import BOTTOM_UP, get_method

torch = pytest.importorskip("torch")
gaze = pytest.importorskip("salience.gaze")
from salience.gaze import model as gm
from salience.gaze import training as gt

REPO = Path(__file__).resolve().parents[1]


def _logsumexp(a: np.ndarray) -> float:
    a = a.astype(np.float64)
    m = float(a.max())
    return m + float(np.log(np.exp(a - m).sum()))


# ---- the shipped weights ---------------------------------------------------------------------------------

def test_shipped_weights_match_their_sha256_and_load():
    """The shipped readout weights are small, match their SHA-256, load, and the model is cached."""
    path = gm.packaged_weights()
    assert path.is_file() and path.stat().st_size < 200_000  # the readout only, not the backbone
    assert gm._sha256(path) == gm.WEIGHTS_SHA256
    model = gm.load_fixation_model()
    n = sum(p.numel() for p in model.readout.parameters())
    assert 1_000 < n < 50_000
    assert model is gm.load_fixation_model()  # cached


def test_a_changed_weights_file_is_refused(tmp_path):
    """A weights file with one flipped byte is refused by its SHA-256."""
    bad = tmp_path / "w.pt"
    data = bytearray(gm.packaged_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        gm.load_readout(bad, sha256=gm.WEIGHTS_SHA256)


def test_weights_are_read_without_unpickling_code(tmp_path):
    """Weights files are read tensors-only (no code unpickled), and foreign files are refused."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": "salience-gaze-readout", "state_dict": {}, "obj": _Unsafe()}, str(evil))
    with pytest.raises(ModelError, match="tensors-only"):
        gm.load_readout(evil)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, str(other))
    with pytest.raises(ModelError, match="not a salience fixation-model file"):
        gm.load_readout(other)


class _Unsafe:
    pass


# ---- the output is a density -----------------------------------------------------------------------------

def test_output_is_a_density_and_batches_agree_with_single_images(photos):
    """The model's output sums to 1 over the pixels, depends on the content, and batches equal single images."""
    rotated = np.ascontiguousarray(np.rot90(photos["astronaut"]))
    imgs = [photos["astronaut"], photos["coffee"], rotated]  # two sizes: one batch of two, one of one
    logd = gaze.fixation_log_density(imgs, batch_size=2)
    assert [d.shape for d in logd] == [im.shape[:2] for im in imgs]
    for d in logd:
        assert d.dtype == np.float32 and np.all(np.isfinite(d))
        assert abs(_logsumexp(d)) < 1e-4  # exp(log density) sums to 1 over the pixels
    np.testing.assert_array_equal(gaze.fixation_log_density(imgs[1]), logd[1])  # alone = in a batch, bit for bit
    # not a fixed prior: the photo and the photo turned by 90 degrees (same size) get different densities
    assert float(np.abs(logd[0] - logd[2]).max()) > 0.5
    m = gaze.fixation_map(imgs[0])
    assert m.dtype == np.float32 and float(m.max()) == 1.0 and float(m.min()) >= 0.0
    np.testing.assert_allclose(m / m.sum(dtype=np.float64), np.exp(logd[0].astype(np.float64)), rtol=1e-3, atol=1e-9)


_THREADS_SCRIPT = r"""
import hashlib, sys, threading
import numpy as np, torch
from salience.gaze import fixation_log_density
rng = np.random.default_rng(0)
images = [rng.random(s, dtype=np.float32) for s in [(480, 640, 3), (333, 500, 3), (1000, 90, 3)]]
def digest(im):
    return hashlib.sha256(np.ascontiguousarray(fixation_log_density(im)).tobytes()).hexdigest()[:16]
twin = rng.random((480, 640, 3), dtype=np.float32)
rows = []
for n in (1, 2, 3, 4):
    torch.set_num_threads(n)
    batch = fixation_log_density([twin, images[0], twin], batch_size=3)  # one batch of three
    rows.append(" ".join(digest(im) for im in images) + f" {torch.get_num_threads()}")
    rows.append(hashlib.sha256(np.ascontiguousarray(batch[1]).tobytes()).hexdigest()[:16])
torch.set_num_threads(2)
out = {}
def work(k):
    out[k] = digest(images[k % len(images)])
ths = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ths]
[t.join() for t in ths]
rows.append(" ".join(out[k] for k in range(len(images))) + " " + str(out[3] == out[0]))
print("\n".join(rows))
"""


def test_map_is_bit_identical_at_any_torch_thread_count():
    """The density is byte-identical at 1-4 torch threads, in a batch and alone, and with four Python threads.

    (oneDNN split the 1 x 1 convolutions' sums by the thread count: up to 1e-6 apart before the fix.)
    The caller's thread count is left as it was.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    singles = [r.rsplit(" ", 1) for r in lines[0:8:2]] + [lines[8].rsplit(" ", 1)]
    batched = lines[1:8:2]
    # the caller's count is restored after each map; Python threads 0 and 3 computed the same image
    assert [r[1] for r in singles] == ["1", "2", "3", "4", "True"]
    assert len({r[0] for r in singles}) == 1, singles
    # the 640 x 480 image as the middle of a batch of three equals it alone, at every thread count
    assert set(batched) == {singles[0][0].split()[0]}, (batched, singles[0])


# ---- registry, API and CLI -------------------------------------------------------------------------------

def test_registry_api_and_cli_pick_it_up(photo, tmp_path, capsys):
    """deepgaze-mnv2 is a registry row the API, `salience methods` and train-fixations pick up."""
    m = get_method("deepgaze-mnv2")
    assert m.kind == BOTTOM_UP and get_method("deepgaze") is m
    out = salience.saliency_map(photo, "deepgaze-mnv2")
    np.testing.assert_allclose(out, gaze.fixation_map(photo), atol=1e-6)
    from salience.cli import main

    assert main(["methods"]) == 0
    assert "deepgaze-mnv2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train-fixations", "--help"])
    assert "--dataset" in capsys.readouterr().out


def test_without_torch_it_is_listed_and_says_how_to_install():
    """Without torch the method is still listed and says how to install the extra."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import salience\n"
        "from salience.registry import get_method\n"
        "m = get_method('deepgaze-mnv2'); print('listed', m.kind)\n"
        "try:\n"
        "    salience.saliency_map(__import__('numpy').zeros((8, 8, 3), 'float32'), 'deepgaze-mnv2')\n"
        "except salience.MissingDependencyError as e:\n"
        "    print('error', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert "listed bottom-up" in res.stdout, res.stderr
    assert "pip install 'salience[torch]'" in res.stdout, res.stderr


# ---- the split and training ------------------------------------------------------------------------------

def test_the_osie_split_file_follows_the_documented_rule():
    """The shipped OSIE split is 500/100/100 disjoint names and is what split_names computes."""
    fixed = gt.osie_split()
    assert [len(fixed[k]) for k in ("train", "val", "test")] == [500, 100, 100]
    assert not (set(fixed["test"]) & (set(fixed["train"]) | set(fixed["val"])))
    names = [str(i) for i in range(1001, 1701)]  # OSIE's 700 image names
    assert sorted(fixed["train"] + fixed["val"] + fixed["test"]) == names
    assert gt.split_names(names) == fixed
    assert gt.split_names(names, split_seed=1) != fixed
    with pytest.raises(DataError):
        gt.split_names(["a", "b"])


def test_a_tiny_training_run_reduces_the_training_loss(shared_data, tmp_path):
    """Five OSIE images at a low backbone resolution: the CLI trains, writes weights and a report, and the
    training loss falls; the weights load and predict."""
    if not (shared_data / "osie" / "fixations.mat").is_file():
        pytest.skip("OSIE is not in the shared data folder")
    from salience.cli import main

    out = tmp_path / "w.pt"
    code = main(["train-fixations", "--dataset", "osie", "--data-dir", str(shared_data / "osie"), "--limit", "7",
                 "--epochs", "4", "--batch-size", "2", "--lr", "0.05", "--long-side", "96",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), "--threads", "1"])
    assert code == 0
    report = json.loads((tmp_path / "w.pt.json").read_text())
    hist = [h["train_loss_bits"] for h in report["history"][1:]]
    assert len(hist) == 4 and hist[-1] < hist[0], hist
    assert report["n_images"] == {"train": 5, "val": 1, "test": 1}
    assert report["weights"]["sha256"] == gm._sha256(out)
    d = gaze.fixation_log_density(np.full((30, 40, 3), 0.5, np.float32), weights=out)
    assert abs(_logsumexp(d)) < 1e-4


@pytest.mark.slow
def test_shipped_weights_beat_centre_bias_on_held_out_osie_images(shared_data):
    """On 12 OSIE test images (never seen in training or in choosing the epoch), the learned model scores
    above the centre-bias baseline on AUC-Judd, NSS and information gain."""
    if not (shared_data / "osie" / "fixations.mat").is_file():
        pytest.skip("OSIE is not in the shared data folder")
    from salience.datasets import load_osie
    from salience.metrics import evaluate

    ds = load_osie(shared_data / "osie")
    names = gt.osie_split()["test"][:12]
    ours, centre = [], []
    for name in names:
        img = ds.load_image(name)
        pts = ds[name].points()
        ours.append(evaluate(salience.saliency_map(img, "deepgaze-mnv2"), pts, metrics="auc_judd,nss,ig", rng=0))
        centre.append(evaluate(salience.saliency_map(img, "centre-bias"), pts, metrics="auc_judd,nss,ig", rng=0))
    for k in ("auc_judd", "nss", "ig"):
        a = float(np.mean([r[k] for r in ours]))
        b = float(np.mean([r[k] for r in centre]))
        assert a > b, (k, a, b)
