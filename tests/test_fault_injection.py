"""Faults from outside the program: full disk, read-only or unwritable folder, --out through a file, stdout
closed or full, FIFOs and devices as inputs, SIGTERM and SIGKILL mid-run, hostile decoders, memory.

The CLI promise: one line per failed input and the others still run; a fault that affects every later
output stops the run with one message (exit 3); never a traceback; nothing half-written is left.  Disk
faults are injected at the write call (``os.write`` in salience.io), which works for any user; the real
thing (a full / read-only tmpfs) also runs where the test may create a private mount namespace.
Subprocess tests are bounded by timeouts and kill what they started.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salience
from salience import io as sio
from salience.cli import main
from salience.errors import ImageReadError, ImageTooLargeError, InputError, ModelError, OutputError

SRC = str(Path(salience.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
CLI = [sys.executable, "-m", "salience"]


@pytest.fixture()
def images(tmp_path, photos):
    paths = []
    for i, name in enumerate(("coffee", "chelsea", "rocket", "astronaut")):
        p = tmp_path / f"{i}_{name}.png"
        Image.fromarray(np.floor(photos[name][:48, :64] * 255 + 0.5).astype(np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# ---- output side: --out through a file, full disk, read-only, no permission -----------------------------

@pytest.mark.parametrize("sub", ["", "sub"])
def test_out_is_a_file_stops_with_one_message(tmp_path, images, capsys, sub):
    """--out naming a file (or a path through one) stops the run with exit 3 and one message, and leaves the file alone.
    """
    f = tmp_path / "f"
    f.write_text("mine")
    code = main(["map", *images, "--method", "centre-bias", "--out", str(f / sub if sub else f)])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" not in err
    assert sum("is a file, not a folder" in line for line in err.splitlines()) == 1
    assert "stopped: 0 of 4 input(s) done" in err
    assert f.read_text() == "mine"


def test_demo_out_is_a_file_is_one_line(tmp_path, capsys):
    """The demo's --out naming a file is one error line and exit 3, and the file is kept."""
    f = tmp_path / "f"
    f.write_text("mine")
    assert main(["demo", "--out", str(f)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a file stands where a folder is needed" in err
    assert f.read_text() == "mine"


@pytest.mark.parametrize("code_, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                          (errno.EACCES, "no permission"), (errno.EDQUOT, "no space left")])
def test_disk_fault_at_the_write_stops_the_run_with_one_message(tmp_path, images, capsys, monkeypatch,
                                                                code_, words):
    """A full, read-only or forbidden disk mid-run stops at once with one message, exit 3 and no temporary file left."""
    out = tmp_path / "out"
    real_write = os.write
    calls = []

    def failing_write(fd, data):
        calls.append(fd)
        if len(calls) >= 2:  # the first file is written, the disk fills up during the second
            raise OSError(code_, os.strerror(code_))
        return real_write(fd, data)

    monkeypatch.setattr(sio.os, "write", failing_write)
    code = main(["map", *images, "--method", "centre-bias,frequency-tuned", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback" not in err
    assert sum(words in line for line in err.splitlines()) == 1, err
    assert "stopped: 0 of 4 input(s) done, 4 not done" in err
    assert len(calls) == 2  # nothing more was attempted after the fault
    assert _leftovers(out) == []  # the temporary file of the failed write was removed
    assert [p.name for p in out.iterdir()] == ["0_coffee_centre-bias.png"]  # the finished file is whole
    assert Image.open(out / "0_coffee_centre-bias.png").size == (64, 48)


def test_fault_in_the_folder_creation_is_mapped(tmp_path, images, capsys, monkeypatch):
    """A failure to create the output folder is one "read-only" error line and exit 3, not a traceback."""
    def no_mkdir(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", no_mkdir)
    assert main(["map", *images, "--method", "centre-bias", "--out", str(tmp_path / "new")]) == 3
    err = capsys.readouterr().err
    assert "read-only" in err and err.count("salience: error:") == 1 and "Traceback" not in err


def test_a_per_input_output_fault_fails_that_input_only(tmp_path, images, capsys):
    """A fault that concerns one output (a folder in its way) fails that input only; the others are written."""
    out = tmp_path / "out"
    (out / "1_chelsea_centre-bias.png").mkdir(parents=True)  # a folder where a file should go
    code = main(["map", *images, "--method", "centre-bias", "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 1
    assert "1 of 4 input(s) failed" in err and "a folder of that name is in the way" in err
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "0_coffee_centre-bias.png", "2_rocket_centre-bias.png", "3_astronaut_centre-bias.png"]


def _private_mount(tmp_path: Path, options: str) -> list[str] | None:
    """A command prefix running in its own mount namespace with a tmpfs at tmp_path/'mnt', or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs '{mnt}'"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs '{mnt}' && exec \"$@\"", "sh"]


@pytest.mark.slow  # two subprocess runs; the injected faults above cover the same code in the fast suite
@pytest.mark.parametrize("options, words", [("size=12k", "no space left"), ("ro,size=64k", "read-only")])
def test_real_full_or_read_only_tmpfs(tmp_path, images, options, words):
    """On a real full or read-only tmpfs the run ends with exit 3 and one message, as the injected faults promise."""
    prefix = _private_mount(tmp_path, options)
    if prefix is None:
        pytest.skip("cannot create a private tmpfs here (no unshare / user namespaces); the injected "
                    "faults above cover the same code")
    out = tmp_path / "mnt" / "out"
    r = subprocess.run(prefix + CLI + ["map", *images, "--method", "centre-bias,frequency-tuned", "--npy",
                                       "--out", str(out)], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert sum(words in line for line in r.stderr.splitlines()) == 1, r.stderr


# ---- stdout: broken pipe, full device -----------------------------------------------------------------

def test_broken_pipe_keeps_going_and_does_not_pass_for_an_early_success(tmp_path, images):
    """A closed stdout (`| head -1`) does not stop the run: every map is written and the broken pipe is reported."""
    out = tmp_path / "out"
    many = images * 3
    with subprocess.Popen(CLI + ["map", *many, "--method", "centre-bias", "--out", str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) as proc:
        try:
            first = proc.stdout.readline()
            proc.stdout.close()  # what `| head -1` does
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert first.startswith(b"/") or b"wrote" in first
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    assert len(list(out.glob("*.png"))) == len(many)  # every input was processed
    assert b"broken pipe" in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is Linux-only")
def test_stdout_on_a_full_device_is_one_line_and_exit_3(tmp_path, images):
    """stdout on /dev/full gives one error line and exit 3, while the maps themselves are still written."""
    out = tmp_path / "out"
    with open("/dev/full", "w") as full:
        r = subprocess.run(CLI + ["map", *images, "--method", "centre-bias", "--out", str(out)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert r.stderr.count("cannot write to standard output") == 1
    assert len(list(out.glob("*.png"))) == 4  # the maps themselves were written


# ---- inputs that are not regular files -----------------------------------------------------------------

def test_fifo_and_devices_are_refused_without_blocking(tmp_path, images):
    """A FIFO or a device given as an image is refused with one line instead of blocking; the real image is processed.
    """
    fifo = tmp_path / "p.jpg"
    os.mkfifo(fifo)
    r = subprocess.run(CLI + ["map", str(fifo), "/dev/zero", images[0], "--method", "centre-bias",
                              "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode == 1
    lines = _error_lines(r.stderr)
    assert any("p.jpg" in line and "FIFO" in line for line in lines)
    assert any("/dev/zero" in line and "character device" in line for line in lines)
    assert all(line.startswith("salience: ") for line in lines), r.stderr
    assert (tmp_path / "out" / "0_coffee_centre-bias.png").is_file()


def test_file_objects_are_read_only_up_to_the_limit():
    """An endless file object is read only up to the byte limit of max_pixels, then refused as too large."""
    class Endless:
        name = "endless"
        asked = []

        def read(self, n=-1):
            self.asked.append(n)
            return b"\x89PNG" + b"\0" * (n - 4 if n and n > 4 else 1 << 20)

    with pytest.raises(ImageTooLargeError, match="more than"):
        salience.load_image(Endless(), max_pixels=1000)
    assert Endless.asked == [sio.BYTES_PER_PIXEL_LIMIT * 1000 + sio.BYTES_ALLOWANCE + 1]


def test_oversized_regular_file_is_refused_from_its_size(tmp_path):
    """A file larger than max_pixels can need is refused from its size, before reading it."""
    p = tmp_path / "big.png"
    with open(p, "wb") as fh:
        fh.truncate(sio.BYTES_PER_PIXEL_LIMIT * 100 + sio.BYTES_ALLOWANCE + 1)  # sparse: no disk used
    with pytest.raises(ImageTooLargeError, match="bytes"):
        salience.load_image(p, max_pixels=100)


def test_symlink_loop_and_dangling_link_are_named(tmp_path):
    """A symbolic-link loop and a dangling link are refused with messages that say which."""
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    with pytest.raises(ImageReadError, match="loops"):
        salience.load_image(loop)
    dangling = tmp_path / "d.png"
    os.symlink(tmp_path / "gone.png", dangling)
    with pytest.raises(ImageReadError, match="symbolic link to .*does not exist"):
        salience.load_image(dangling)


# ---- signals: SIGTERM like Ctrl-C; SIGKILL leaves a temporary file the next run removes ----------------

def _start(cmd, **kw):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, **kw)


def _wait_for(pred, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_sigterm_mid_run_ends_like_ctrl_c(tmp_path, images):
    """SIGTERM mid-run exits 143 with one line, removes temporary files and leaves only complete PNGs."""
    out = tmp_path / "out"
    many = [str(tmp_path / f"copy{i}.png") for i in range(40)]
    for p in many:
        shutil.copy(images[0], p)
    proc = _start(CLI + ["map", *many, "--method", "itti", "--out", str(out)])
    try:
        assert _wait_for(lambda: out.is_dir() and any(out.glob("*.png")) or proc.poll() is not None)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 143, err
    assert b"terminated (SIGTERM)" in err and b"Traceback" not in err
    assert _leftovers(out) == []
    for p in out.glob("*.png"):  # every file there is complete
        Image.open(p).load()


WRITER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from salience import io as sio
real_fsync = os.fsync
def slow_fsync(fd):
    print("writing", flush=True); time.sleep(60)
sio.os.fsync = slow_fsync
sio.atomic_write_bytes(sys.argv[2], b"x" * 1000)
"""


def test_sigkill_leaves_a_temp_file_that_the_next_run_removes(tmp_path, images):
    """A temp file left by SIGKILL is removed by the next run into that folder; unrelated temp-like files are kept."""
    out = tmp_path / "out"
    target = out / "0_coffee_centre-bias.png"
    proc = _start([sys.executable, "-c", WRITER, SRC, str(target)])
    try:
        assert proc.stdout.readline().strip() == b"writing"
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _leftovers(out)
    assert len(left) == 1 and left[0].endswith(sio.TEMP_SUFFIX)
    # an older version's temporary file of the same target, and one of an unrelated name (kept)
    (out / ".0_coffee_centre-bias.png.abcd1234.tmp").write_bytes(b"old")
    (out / ".notes.txt.abcd1234.tmp").write_bytes(b"not ours")
    sio._SCANNED.clear()  # a new run (this process stands in for it)
    assert main(["map", images[0], "--method", "centre-bias", "--out", str(out)]) == 0
    assert _leftovers(out) == [".notes.txt.abcd1234.tmp"]
    assert target.is_file()


def test_a_temp_file_of_a_live_writer_is_not_taken_for_stale(tmp_path, images):
    """The temporary file of a writer that is still running is not removed as stale."""
    out = tmp_path / "out"
    target = out / "0_coffee_centre-bias.png"
    proc = _start([sys.executable, "-c", WRITER, SRC, str(target)])
    try:
        assert proc.stdout.readline().strip() == b"writing"
        sio._SCANNED.clear()
        assert main(["map", images[1], "--method", "centre-bias", "--out", str(out)]) == 0
        assert len([n for n in _leftovers(out) if n.endswith(sio.TEMP_SUFFIX)]) == 1  # still there
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_create_without_overwrite_never_replaces_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    """A file that appears while we write is not replaced without overwrite; our temp file is removed."""
    target = tmp_path / "m.png"
    real_fsync = os.fsync

    def racing_fsync(fd):
        real_fsync(fd)
        target.write_bytes(b"the other run's file")

    monkeypatch.setattr(sio.os, "fsync", racing_fsync)
    with pytest.raises(salience.OutputExistsError, match="appeared while writing"):
        sio.atomic_write_bytes(target, b"ours")
    assert target.read_bytes() == b"the other run's file"
    assert _leftovers(tmp_path) == []


# ---- hostile decoders, unexpected exceptions, memory ---------------------------------------------------

@pytest.mark.parametrize("exc", [RuntimeError("Failed to decode frame"), TypeError("unsupported operand"),
                                 MemoryError()])
def test_decoder_exceptions_become_one_line(tmp_path, images, capsys, monkeypatch, exc):
    """Any exception from the image decoder fails that input with one line, and the next input is processed."""
    from PIL import ImageFile

    real_load = ImageFile.ImageFile.load

    def hostile(self):
        if getattr(self, "filename", "") == "" and self.size == (64, 48) and hostile.armed:
            hostile.armed = False
            raise exc
        return real_load(self)

    hostile.armed = True
    monkeypatch.setattr(ImageFile.ImageFile, "load", hostile)
    code = main(["map", *images[:2], "--method", "centre-bias", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "1 of 2 input(s) failed" in err
    assert (tmp_path / "out" / "1_chelsea_centre-bias.png").is_file()


def test_an_unexpected_exception_fails_one_input_with_one_line(tmp_path, images, capsys, monkeypatch):
    """A bug in a method fails one input with one line naming the exception and SALIENCE_DEBUG=1; the run goes on."""
    from salience.bottomup import baselines

    real = baselines.centre_bias
    calls = []

    def buggy(img, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("division by zero")
        return real(img, **kw)

    monkeypatch.setattr(baselines, "centre_bias", buggy)
    monkeypatch.delenv("SALIENCE_DEBUG", raising=False)
    code = main(["map", *images[:2], "--method", "centre-bias", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "unexpected ZeroDivisionError: division by zero" in err and "SALIENCE_DEBUG=1" in err
    assert len(calls) == 2


def test_one_bit_bomb_under_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    """A tiny 1-bit PNG of 110 megapixels is refused from its memory need before it is decoded."""
    p = tmp_path / "bomb.png"
    Image.new("1", (11000, 10000), 0).save(p, optimize=True)  # 110 megapixels in a few KB
    assert p.stat().st_size < 100_000
    monkeypatch.setenv("SALIENCE_MEMORY_LIMIT", "2G")
    with pytest.raises(ImageTooLargeError, match=r"needs about 4\.1 GiB of memory, but only 2\.0 GiB"):
        salience.load_image(p)


def test_method_memory_is_checked_before_the_method_runs(monkeypatch, photo):
    """A method's memory need is checked against SALIENCE_MEMORY_LIMIT before it runs; a bad limit value is an
    InputError."""
    monkeypatch.setenv("SALIENCE_MEMORY_LIMIT", "100K")
    with pytest.raises(ImageTooLargeError, match="itti on a 128 x 128 image needs about"):
        salience.saliency_map(photo, "itti")
    monkeypatch.setenv("SALIENCE_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="SALIENCE_MEMORY_LIMIT"):
        salience.saliency_map(photo, "itti")


@pytest.mark.parametrize("method", ["spectral-residual", "image-signature"])
def test_elongated_image_needs_no_blur_operators(method):
    # The blur used to be two (n, n) operator matrices (37.3 GiB for a 1 x 100000 image, refused up
    # front); it is now a separable filter whose memory is that of the working copy, so the image works.
    """A 1 x 100000 or 100:1 image works with the spectral methods (separable blur, no n x n operators)."""
    tall = np.random.default_rng(0).random((100_000, 1, 3), dtype=np.float32)
    assert salience.saliency_map(tall, method).shape == (100_000, 1)
    strip = np.random.default_rng(0).random((20, 2000, 3), dtype=np.float32)  # 100:1 still works
    assert salience.saliency_map(strip, method).shape == (20, 2000)


@pytest.mark.slow  # imports torch (10-16 s on the loaded 2-core VM when it is the first test to do so)
def test_explanation_input_of_an_elongated_image_is_refused():
    """The model preprocessing refuses images beyond a 16:1 aspect ratio and keeps a wide but allowed one's shape."""
    from salience.attribution.models import make_preprocess

    pre = make_preprocess((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    wide = np.zeros((1, 100_000, 3), np.float32)
    for crop in (False, True):
        with pytest.raises(ImageTooLargeError, match="aspect ratio of at most 16:1"):
            pre(wide, crop=crop)
    assert tuple(pre(np.zeros((50, 800, 3), np.float32), crop=False).shape) == (1, 3, 224, 3584)


# ---- the smaller items -------------------------------------------------------------------------------

def test_grey_alpha_png_composites_like_rgba(tmp_path, capsys):
    """A grey+alpha (LA) PNG loads like the same RGBA image and maps without error."""
    p = tmp_path / "la.png"
    Image.new("LA", (40, 30), (100, 128)).save(p)
    rgba = salience.load_image(Image.new("RGBA", (40, 30), (100, 100, 100, 128)))
    np.testing.assert_allclose(salience.load_image(p), rgba, atol=1e-6)
    assert main(["map", str(p), "--method", "centre-bias", "--out", str(tmp_path / "o")]) == 0


@pytest.mark.parametrize("bad", ["10", -1, 0, True, 2.5, [10]])
def test_load_image_validates_max_pixels(photo_file, bad):
    """max_pixels must be a positive whole number or None; strings, bools, floats and lists are refused."""
    with pytest.raises(InputError, match="max_pixels"):
        salience.load_image(photo_file, max_pixels=bad)


def test_max_pixels_negative_is_a_usage_error_before_anything_runs(capsys):
    """A negative --max-pixels is a usage error (exit 2) in map, explain and audit before anything runs."""
    for cmd in ("map", "explain", "audit"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "x.png", "--max-pixels", "-5"])
        assert exc.value.code == 2
        assert "--max-pixels: must be >= 0" in capsys.readouterr().err


def test_warnings_are_one_line_each_never_glued_to_error_lines(tmp_path, images):
    """Decoder warnings and errors come out as whole "salience: " lines, never glued together or with a progress bar."""
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(Path(images[0]).read_bytes()[:300])
    import io as _io

    buf = _io.BytesIO()  # an LZW TIFF with damaged strip data: libtiff prints on fd 2 while decoding it
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        buf, "TIFF", compression="tiff_lzw")
    data = bytearray(buf.getvalue())
    data[1000:1040] = b"\xff" * 40
    tif = tmp_path / "damaged.tif"
    tif.write_bytes(bytes(data))
    r = subprocess.run(CLI + ["map", images[0], str(corrupt), str(tif), images[1], "--method", "centre-bias",
                              "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                       env={**ENV, "PYTHONWARNINGS": "always"})
    assert r.returncode == 1
    assert all(line.startswith("salience: ") for line in _error_lines(r.stderr)), r.stderr
    assert "\r" not in r.stderr  # no progress bar when stderr is not a terminal
    assert "2 of 4 input(s) failed" in r.stderr


@pytest.mark.slow  # imports torch and builds three SqueezeNets
def test_weights_files_give_one_line_errors(tmp_path):
    """Empty, mismatched and NaN weights files are ModelErrors with one-line messages that say what is wrong."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        salience.load_model("squeezenet1_1", weights=empty)
    other = tmp_path / "ten.pth"
    torch.save(torchvision.models.squeezenet1_1(num_classes=10).state_dict(), other)
    with pytest.raises(ModelError, match=r"classifier.1.weight: \(10, 512, 1, 1\) in the file, \(1000, 512"
                       ) as e:
        salience.load_model("squeezenet1_1", weights=other)
    assert "\n" not in str(e.value)
    sd = torchvision.models.squeezenet1_1().state_dict()
    sd["features.0.weight"][0, 0, 0, 0] = float("nan")
    nan = tmp_path / "nan.pth"
    torch.save(sd, nan)
    with pytest.raises(ModelError, match="NaN or infinite"):
        salience.load_model("squeezenet1_1", weights=nan)


def test_explain_checks_npy_outputs_before_writing_anything(tmp_path, photo_file, capsys):
    """explain refuses an existing .npy output before writing anything, and leaves it unchanged."""
    pytest.importorskip("torch")
    out = tmp_path / "out"
    out.mkdir()
    (out / "astronaut_gradcam.npy").write_bytes(b"mine")
    code = main(["explain", str(photo_file), "--npy", "--out", str(out)])
    assert code == 1
    assert "astronaut_gradcam.npy" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_gradcam.npy"]
    assert (out / "astronaut_gradcam.npy").read_bytes() == b"mine"


def test_output_error_is_an_oserror_and_a_salience_error():
    """output_error gives an OutputError that is an OSError and a SalienceError, fatal for a full disk only."""
    e = sio.output_error(OSError(errno.ENOSPC, "No space left on device"), "/x/y.png")
    assert isinstance(e, OutputError) and isinstance(e, OSError) and isinstance(e, salience.SalienceError)
    assert e.fatal and e.errno == errno.ENOSPC and "no space left" in str(e)
    assert not sio.output_error(OSError(errno.ENAMETOOLONG, "File name too long"), "/x/y.png").fatal


def test_concurrent_overwrite_runs_into_one_folder_take_turns(tmp_path, images):
    """Two --overwrite runs into one folder take turns (the second waits and writes nothing meanwhile)."""
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # stands in for another --overwrite run into the same folder
    proc = _start(CLI + ["map", images[0], "--method", "centre-bias", "--out", str(out), "--overwrite"])
    try:
        line = proc.stderr.readline()
        assert b"waiting for another `--overwrite` run" in line
        time.sleep(0.5)
        assert proc.poll() is None and not any(out.iterdir())  # it waits, and writes nothing meanwhile
        os.close(fd)  # the other run ends
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0
    assert (out / "0_coffee_centre-bias.png").is_file()
    # without --overwrite nothing is replaced, so no turn is needed
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = subprocess.run(CLI + ["map", images[1], "--method", "centre-bias", "--out", str(out)],
                           capture_output=True, timeout=60, env=ENV)
        assert r.returncode == 0 and b"waiting" not in r.stderr
    finally:
        os.close(fd)
