"""``salience evaluate``: table, rows, resume, exit codes and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from salience.cli import main
from salience.datasets import shared_data_dir
from salience.evaluation import read_rows
from test_evaluation import make_folder

SHARED = shared_data_dir()  # $SALIENCE_SHARED_DATA, else <repo>/../shared/data
OSIE = SHARED / "osie"


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "data", n_images=3)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_prints_table_and_writes_rows(folder, tmp_path, capsys):
    """`salience evaluate` prints the summary table and writes one row per (image, method) with the asked metrics."""
    out = tmp_path / "r.csv"
    code, stdout, stderr = run(capsys, "evaluate", "--dataset", f"csv:{folder}", "--method", "centre-bias,chance",
                               "--metrics", "nss,cc", "--sigma", "3", "--out", str(out), "--jobs", "1",
                               "--no-progress")
    assert code == 0, stderr
    assert "centre-bias" in stdout and "chance" in stdout and "±" in stdout and "3 image(s)" in stdout
    rows = read_rows(out)
    assert len(rows) == 6 and set(rows[0]) >= {"image", "method", "nss", "cc", "seconds"}
    assert "6 (image, method) pair(s) computed" in stderr


def test_evaluate_resume_via_cli(folder, tmp_path, capsys):
    """--resume computes only the missing pairs; rerunning without it into the same file is one error line naming
    --resume."""
    out = tmp_path / "r.csv"
    args = ["evaluate", "--dataset", f"csv:{folder}", "--method", "chance", "--metrics", "nss", "--sigma", "3",
            "--out", str(out), "--no-progress", "--jobs", "2"]
    assert run(capsys, *args, "--limit", "2")[0] == 0
    code, stdout, stderr = run(capsys, *args, "--resume")
    assert code == 0
    assert "1 (image, method) pair(s) computed, 2 taken from" in stderr
    code, _, stderr = run(capsys, *args)
    assert code == 1 and stderr.count("\n") == 1 and "--resume" in stderr and stderr.startswith("salience: error:")


def test_evaluate_markdown(folder, capsys):
    """--markdown prints a Markdown table."""
    code, stdout, _ = run(capsys, "evaluate", "--dataset", f"csv:{folder}", "--method", "chance", "--metrics", "nss",
                          "--sigma", "3", "--markdown", "--no-progress", "--jobs", "1")
    assert code == 0 and "| method | n | nss |" in stdout


def test_evaluate_precomputed_maps_with_missing_ones(folder, tmp_path, capsys):
    """--saliency-maps scores precomputed maps and reports the images without a map (exit 1)."""
    maps = tmp_path / "model"
    maps.mkdir()
    for stem in ("im00", "im01"):
        np.save(maps / f"{stem}.npy", np.random.default_rng(0).random((36, 48)))
    code, stdout, stderr = run(capsys, "evaluate", "--dataset", f"csv:{folder}", "--saliency-maps", str(maps),
                               "--metrics", "nss", "--sigma", "3", "--no-progress", "--jobs", "1")
    assert code == 1
    assert "maps:model" in stdout
    assert "maps:model: 1 of 3 image(s) have no map (first: im02)" in stderr


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mit300"], "unknown data set 'mit300'"),
    (["--dataset", "csv:/nonexistent/x.csv"], "does not exist"),
    (["--method", "itti-kosh"], "unknown method 'itti-kosh'"),
    (["--metrics", "nss,bogus"], "unknown metric 'bogus'"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--resume"], "resume needs the output file"),
    (["--centre-bias", "3"], "centre_bias is a mixing weight"),
    (["--sigma-deg", "1"], "needs pixels_per_degree"),
    (["--dataset", "maps:{folder}"], "no fixation maps"),
])
def test_evaluate_bad_input_is_one_line_exit_2(folder, capsys, argv, message):
    """Each kind of bad argument gives one error line that says what is wrong, and exit 2."""
    base = {"--dataset": f"csv:{folder}", "--method": "chance", "--metrics": "nss"}
    extra = []
    i = 0
    while i < len(argv):
        key = argv[i]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            base[key] = argv[i + 1].replace("{folder}", str(folder))
            i += 2
        else:
            extra.append(key)
            i += 1
    args = ["evaluate", "--no-progress", "--jobs", "1"] + [x for kv in base.items() for x in kv] + extra
    code, _, stderr = run(capsys, *args)
    assert code == 2, stderr
    assert stderr.startswith("salience: error:") and stderr.count("\n") == 1 and message in stderr, stderr
    assert "Traceback" not in stderr


def test_evaluate_osie_missing_data_dir(tmp_path, capsys):
    """--dataset osie with a folder lacking the data is one error line and exit 2."""
    code, _, stderr = run(capsys, "evaluate", "--dataset", "osie", "--data-dir", str(tmp_path), "--method", "chance")
    assert code == 2 and "no OSIE data" in stderr and stderr.count("\n") == 1


@pytest.mark.skipif(not (OSIE / "fixations.mat").is_file(), reason=f"OSIE data not found at {OSIE}")
def test_evaluate_osie_two_images(capsys):
    """On two OSIE images the centre-bias map beats chance on AUC-Judd (> 0.6)."""
    code, stdout, stderr = run(capsys, "evaluate", "--dataset", "osie", "--data-dir", str(OSIE), "--limit", "2",
                               "--method", "centre-bias,chance", "--metrics", "auc_judd,nss", "--no-progress",
                               "--jobs", "1")
    assert code == 0, stderr
    assert "osie: 2 image(s)" in stdout
    line = next(ln for ln in stdout.splitlines() if ln.startswith("centre-bias"))
    assert float(line.split()[2]) > 0.6  # centre bias beats chance on OSIE's first images (AUC-Judd)
