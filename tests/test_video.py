"""The dynamic Itti model, attention over time, streams and `salience video`, on clips the tests make.

Itti, Dhavale & Pighin (Proc. SPIE 5200, 2003): flicker and motion channels.  Every clip is synthetic
(numpy arrays, or a small MJPG .avi written with cv2.VideoWriter); nothing is downloaded.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import salience
from salience.bottomup.itti import itti_koch
from salience.errors import InputError, UnknownMethodError, VideoReadError
from salience.registry import BOTTOM_UP, methods
from salience.video.attention import Attention
from salience.video.dynamic import DynamicItti, DynamicParams

H, W = 120, 160


def bar_clip(n: int = 6, step: int = 3, x0: int = 50) -> list[np.ndarray]:
    """A white vertical bar (8 x 40 px) on mid grey, moving ``step`` px per frame (right if > 0)."""
    frames = []
    for k in range(n):
        f = np.full((H, W, 3), 0.5, np.float32)
        x = x0 + step * k
        f[40:80, x:x + 8] = 1.0
        frames.append(f)
    return frames


def disc(frame: np.ndarray, cx: float, cy: float, r: float, value) -> None:
    yy, xx = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
    frame[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


def run(model: DynamicItti, frames):
    return [model.step(f) for f in frames]


# ---- the dynamic model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("step, transpose, preferred, null, across", [
    (3, False, "0", "180", ("90", "270")),     # vertical bar moving right
    (-3, False, "180", "0", ("90", "270")),    # ... moving left
    (3, True, "270", "90", ("0", "180")),      # the clip transposed: a horizontal bar moving down
    (-3, True, "90", "270", ("0", "180")),     # ... moving up
])
def test_moving_bar_lights_its_direction_only(step, transpose, preferred, null, across):
    """A bar moving in each of four directions lights that Reichardt detector, not the opposite one, and where the bar
    is."""
    frames = bar_clip(step=step, x0=50 if step > 0 else 100)
    if transpose:
        frames = [np.ascontiguousarray(f.transpose(1, 0, 2)) for f in frames]
    res = run(DynamicItti(), frames)
    assert res[0].first and res[0].motion == {} and res[0].flicker is None
    for r in res[1:]:
        e = r.motion_energy
        assert e[preferred] > 0
        assert e[null] <= 0.01 * e[preferred], e  # below 1 % of the preferred direction
        assert float(r.motion[preferred].max()) > 0.05
        # motion across the bar's direction of travel: only its two ends respond, far weaker
        assert all(e[d] < 0.2 * e[preferred] for d in across), e
    # the detector responds where the bar is (scale-2 map: 4 px per cell)
    last = res[-1].motion[preferred]
    if transpose:
        last = last.T
    y, x = np.unravel_index(int(np.argmax(last)), last.shape)
    bar_x = (50 + 5 * step) if step > 0 else (100 + 5 * step)
    assert 40 <= 4 * y <= 80 and bar_x - 8 <= 4 * x <= bar_x + 16


def test_blinking_patch_lights_flicker_not_motion():
    """A blinking patch gives flicker where it blinks and exactly zero motion."""
    frames = []
    for k in range(6):
        f = np.full((H, W, 3), 0.5, np.float32)
        if k % 2 == 0:
            f[50:70, 90:110] = 1.0  # on, off, on, ...
        frames.append(f)
    res = run(DynamicItti(), frames)
    for r in res[1:]:
        assert r.flicker is not None and float(r.flicker.max()) > 0.1
        y, x = np.unravel_index(int(np.argmax(r.flicker)), r.flicker.shape)  # scale 2: 4 px per cell
        assert 44 <= 4 * y <= 76 and 84 <= 4 * x <= 116
        assert float(r.conspicuity["flicker"].max()) > 0
        assert all(v == 0.0 for v in r.motion_energy.values()), r.motion_energy
        assert all(float(m.max()) == 0.0 for m in r.motion.values())
        assert float(r.conspicuity["motion"].max()) == 0.0


def test_static_scene_has_zero_motion_and_flicker_and_the_static_map(photo):
    """A static scene has zero motion and flicker, and its map is the static Itti map."""
    model = DynamicItti()
    res = run(model, [photo] * 4)
    static = itti_koch(photo)
    for r in res:
        np.testing.assert_allclose(r.saliency, static, atol=1e-5)
    for r in res[1:]:
        assert float(r.flicker.max()) == 0.0
        assert all(v == 0.0 for v in r.motion_energy.values())
        assert float(r.conspicuity["flicker"].max()) == 0.0 and float(r.conspicuity["motion"].max()) == 0.0


def test_static_channels_are_the_static_models_bit_for_bit(photo):
    """The dynamic model's intensity, colour and orientation maps are the static model's, bit for bit, on
    every frame: flicker and motion run in OpenCV calls of their own (OpenCV's pyramid results differ in
    the last bit with the number of channels in a call, so sharing one would change the static maps)."""
    frames = [np.ascontiguousarray(np.roll(photo, 4 * k, axis=1)) for k in range(3)] + bar_clip(3)
    model = DynamicItti()
    for k, f in enumerate(frames):
        r = model.step(f)
        static = itti_koch(f, return_intermediates=True).conspicuity
        for name in ("intensity", "color", "orientation"):
            np.testing.assert_array_equal(r.conspicuity[name], static[name], err_msg=f"{name}, frame {k}")
        if k not in (0, 3):  # frame 3 changes size: a first frame again
            assert not r.first and {"flicker", "motion"} <= set(r.conspicuity)


def test_first_frame_is_the_static_model_and_reset_starts_over(photo):
    """The first frame is the static model; reset() or a frame of another size starts over."""
    model = DynamicItti()
    r0 = model.step(photo)
    assert r0.first and r0.flicker is None and r0.motion == {} and "motion" not in r0.conspicuity
    np.testing.assert_allclose(r0.saliency, itti_koch(photo), atol=1e-5)
    assert not model.step(photo).first
    model.reset()
    assert model.step(photo).first
    # a frame of another size starts over too, rather than failing
    assert model.step(np.ascontiguousarray(photo[:96])).first


def test_motion_raises_the_moving_object_against_a_static_twin():
    """Two identical squares, one moving: the dynamic map prefers the moving one, the static one cannot."""
    frames = []
    for k in range(5):
        f = np.full((H, W, 3), 0.5, np.float32)
        f[30:46, 20:36] = 1.0  # static
        f[80:96, 90 + 3 * k:106 + 3 * k] = 1.0  # moving right
        frames.append(f)
    last = run(DynamicItti(), frames)[-1].saliency
    moving = float(last[80:96, 90 + 12:106 + 12].max())
    still = float(last[30:46, 20:36].max())
    assert moving > 1.5 * still, (moving, still)


def test_weights_and_parameters_are_checked():
    """Channel weights and model parameters are checked; a zero motion weight leaves the channel out."""
    assert DynamicParams(weights={"motion": 2}).weights == (1.0, 1.0, 1.0, 1.0, 2.0)
    with pytest.raises(InputError, match="unknown channel"):
        DynamicParams(weights={"speed": 1})
    with pytest.raises(InputError, match="5 entries"):
        DynamicParams(weights=(1, 1, 1))
    with pytest.raises(InputError, match="motion_threshold"):
        DynamicItti(motion_threshold=-1)
    with pytest.raises(InputError, match="unknown Itti-Koch parameter"):
        DynamicItti(nonsense=1)
    with pytest.raises(InputError, match="frame"):
        DynamicItti().step(np.full((10, 10, 3), np.nan, np.float32))
    # a zero motion weight leaves the channel out entirely
    res = run(DynamicItti(weights={"motion": 0}), bar_clip(n=2))
    assert "motion" not in res[1].conspicuity and "flicker" in res[1].conspicuity


# ---- attention over time ----------------------------------------------------------------------------

def test_attention_tracks_a_moving_target():
    """A bright disc moves right then down at 3 px per frame past a static, dimmer distractor; the attended
    point follows it.  Measured: mean error 2.2 px, max 4.1 px (disc radius 7 px); asserted below 4 / 8."""
    frames, centres = [], []
    cx, cy = 30.0, 30.0
    for k in range(40):
        f = np.full((H, W, 3), 0.45, np.float32)
        f[85:100, 20:35] = 0.65  # static distractor
        if k < 25:
            cx += 3.0
        else:
            cy += 3.0
        disc(f, cx, cy, 7, (1.0, 1.0, 0.2))
        frames.append(f)
        centres.append((cx, cy))
    out = list(salience.stream(frames))
    err = [math.hypot(r.focus.x - c[0], r.focus.y - c[1]) for r, c in zip(out, centres)]
    mean, worst = float(np.mean(err[1:])), float(np.max(err[1:]))
    assert mean < 4.0 and worst < 8.0, (mean, worst)
    assert all(r.focus.fixation == 1 for r in out)  # the dimmer distractor never wins


def test_inhibition_of_return_visits_the_second_target_after_a_dwell():
    """Inhibition of return holds a target for min_dwell frames, then shifts to the other, and back."""
    frames = []
    for _ in range(40):
        f = np.full((H, W, 3), 0.5, np.float32)
        disc(f, 40, 40, 8, 1.0)  # A: white
        disc(f, 120, 80, 8, (1.0, 0.2, 0.2))  # B: red
        frames.append(f)
    dwell = 5
    out = list(salience.stream(frames, attention={"min_dwell": dwell}))
    foci = [r.focus for r in out]
    targets = [(40, 40), (120, 80)]
    at = [min(range(2), key=lambda i: math.hypot(f.x - targets[i][0], f.y - targets[i][1])) for f in foci]
    for f, i in zip(foci, at):
        assert math.hypot(f.x - targets[i][0], f.y - targets[i][1]) < 10  # always on one of the targets
    first_shift = next(k for k, f in enumerate(foci) if k > 0 and f.shifted)
    assert first_shift >= dwell  # held for at least min_dwell frames
    assert len(set(at[:first_shift])) == 1 and at[first_shift] != at[0]  # then the other target
    assert len(set(at)) == 2 and sum(f.shifted for f in foci) >= 3  # and back: gaze alternates


def test_attention_without_anything_salient_and_its_checks():
    """Attention on a blank map has no focus; bad parameters and maps are refused."""
    att = Attention()
    assert att.update(np.zeros((40, 60), np.float32)) is None
    with pytest.raises(InputError, match="min_dwell"):
        Attention(min_dwell=0)
    with pytest.raises(InputError, match="unknown attention parameter"):
        Attention(dwell=3)
    with pytest.raises(InputError, match="NaN"):
        att.update(np.full((4, 4), np.nan))
    with pytest.raises(InputError, match="image_shape"):
        att.update(np.ones((4, 4), np.float32), image_shape=5)


# ---- streams ------------------------------------------------------------------------------------------

def test_two_streams_side_by_side_match_separate_runs():
    """Two streams run side by side give exactly the maps of separate runs (no shared state)."""
    a, b = bar_clip(step=3), bar_clip(step=-3, x0=100)
    alone_a = [r.saliency for r in salience.stream(a)]
    alone_b = [r.saliency for r in salience.stream(b)]
    sa, sb = salience.stream(a), salience.stream(b)
    for ra, rb, ea, eb in zip(sa, sb, alone_a, alone_b):
        np.testing.assert_array_equal(ra.saliency, ea)
        np.testing.assert_array_equal(rb.saliency, eb)


@pytest.mark.parametrize("name", [m.name for m in methods(BOTTOM_UP)])
def test_every_bottom_up_method_runs_per_frame(name):
    """Every bottom-up method streams frame by frame with [0, 1] float32 maps, the same map for identical frames."""
    clip = np.zeros((3, 48, 64, 3), np.uint8)
    clip[:, 20:28, 30:38] = 255
    out = list(salience.stream(clip, name, attention=False))
    assert [r.index for r in out] == [0, 1, 2]
    for r in out:
        assert r.saliency.shape == (48, 64) and r.saliency.dtype == np.float32 and r.focus is None
        assert np.isfinite(r.saliency).all() and r.saliency.min() >= 0 and r.saliency.max() <= 1
    # per-frame methods hold no state: every frame of a static clip gets the same map
    np.testing.assert_allclose(out[0].saliency, out[2].saliency, atol=1e-6)


def test_stream_arguments_are_checked():
    """stream() refuses unknown or explanation methods, max_frames 0, bad frames and sources; fps sets the times."""
    with pytest.raises(UnknownMethodError):
        salience.stream(bar_clip(2), "no-such-method")
    with pytest.raises(InputError, match="explains a model"):
        salience.stream(bar_clip(2), "gradcam")
    with pytest.raises(InputError, match="max_frames"):
        salience.stream(bar_clip(2), max_frames=0)
    with pytest.raises(InputError, match="frame 1"):
        list(salience.stream([bar_clip(1)[0], np.full((H, W, 3), 2.0, np.float32)]))
    with pytest.raises(InputError, match="source"):
        salience.stream(3.5)
    r = list(salience.stream(bar_clip(6), max_frames=2, fps=10))
    assert [x.index for x in r] == [0, 1] and r[1].time == pytest.approx(0.1)


def write_avi(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert w.isOpened()
    for f in frames:
        w.write(cv2.cvtColor(np.floor(f * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
    w.release()
    return path


def test_stream_reads_a_video_file(tmp_path):
    """A video file streams its frames, times and decoded BGR pixels, and the bar's motion is found."""
    path = write_avi(tmp_path / "bar.avi", bar_clip(n=8, step=3))
    out = list(salience.stream(path))
    assert len(out) == 8 and out[0].frame.shape == (H, W, 3)
    assert out[2].time == pytest.approx(2 / 25.0)
    # the decoded frames look like what was written (MJPG is lossy)
    assert np.abs(out[3].frame - bar_clip(n=8, step=3)[3]).mean() < 0.02
    assert out[-1].detail.motion_energy["0"] > 100 * out[-1].detail.motion_energy["180"]
    # the decoded uint8 BGR frame comes along (for drawing and writing), the same pixels as .frame
    assert out[0].bgr.dtype == np.uint8 and out[0].bgr.shape == (H, W, 3)
    np.testing.assert_allclose(out[0].bgr[:, :, ::-1] / 255.0, out[0].frame, atol=1e-6)
    assert next(iter(salience.stream(bar_clip(n=1)))).bgr is None


def test_unreadable_videos_give_clear_errors(tmp_path):
    """Missing, corrupt, folder and camera sources give VideoReadErrors that say which."""
    with pytest.raises(VideoReadError, match="does not exist"):
        salience.stream(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoReadError, match="could not be opened"):
        salience.stream(bad)
    with pytest.raises(VideoReadError, match="folder"):
        salience.stream(tmp_path)
    with pytest.raises(VideoReadError, match="camera 99 could not be opened"):  # no such camera here
        salience.stream(99)
    with pytest.raises(InputError, match="camera index"):
        salience.stream(-1)


# ---- the command --------------------------------------------------------------------------------------

def _frames_of(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_cli_video_writes_overlay_map_and_points(tmp_path, capsys):
    """`salience video` writes the overlay, map video and points CSV, and keeps existing outputs unless --overwrite."""
    from salience.cli import main

    clip = write_avi(tmp_path / "clip.avi", bar_clip(n=10, step=3))
    out, mapv, pts = tmp_path / "o.mp4", tmp_path / "m.avi", tmp_path / "p.csv"
    code = main(["video", str(clip), "--out", str(out), "--map-video", str(mapv), "--points", str(pts), "-q"])
    assert code == 0
    assert _frames_of(out) == 10 and _frames_of(mapv) == 10
    rows = list(csv.DictReader(pts.open()))
    assert len(rows) == 10 and rows[0]["shifted"] == "1" and rows[0]["fixation"] == "1"
    assert all(0 <= int(r["x"]) < W and 0 <= int(r["y"]) < H for r in rows)
    assert "10 frames" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "m.avi", "o.mp4", "p.csv"]
    # existing outputs are kept unless --overwrite
    before = out.read_bytes()
    assert main(["video", str(clip), "--out", str(out), "-q"]) != 0
    assert out.read_bytes() == before
    assert main(["video", str(clip), "--out", str(out), "-q", "--overwrite", "--method", "spectral-residual"]) == 0


def test_cli_video_bad_inputs(tmp_path, capsys):
    """`salience video` refuses bad input, extension, method and output path with exit 2/3 and leaves nothing half-
    written."""
    from salience.cli import main

    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 500)
    assert main(["video", str(bad), "--out", str(tmp_path / "o.mp4")]) == 2
    assert "could not be opened" in capsys.readouterr().err
    clip = write_avi(tmp_path / "clip.avi", bar_clip(n=3))
    assert main(["video", str(clip), "--out", str(tmp_path / "o.gif")]) == 2
    assert "unsupported video extension" in capsys.readouterr().err
    assert main(["video", str(clip), "--out", str(tmp_path / "o.mp4"), "--method", "gradcam"]) == 2
    capsys.readouterr()
    (tmp_path / "file").write_text("x")
    assert main(["video", str(clip), "--out", str(tmp_path / "file" / "o.mp4"), "-q"]) == 3
    assert "is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "file").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.avi", "clip.avi"]  # nothing half-written


def test_write_video_refuses_frames_of_another_size(tmp_path):
    """write_video refuses a frame of another size and writes nothing; a good clip gives its frame count."""
    from salience.video import write_video

    frames = bar_clip(n=3) + [np.zeros((60, 80, 3), np.float32)]
    with pytest.raises(InputError, match="frame 3 is 80 x 60 but the video is 160 x 120"):
        write_video(frames, tmp_path / "o.mp4", points=tmp_path / "p.csv")
    assert list(tmp_path.iterdir()) == []
    done = write_video(bar_clip(n=3), tmp_path / "o.avi", attention=False)
    assert done.frames == 3 and done.paths == (tmp_path / "o.avi",) and _frames_of(tmp_path / "o.avi") == 3


def test_cli_video_interrupted_leaves_no_partial_file(tmp_path, monkeypatch):
    """Ctrl-C during `salience video` exits 130 and leaves no partial output file."""
    from salience.cli import main
    from salience.video import render

    clip = write_avi(tmp_path / "clip.avi", bar_clip(n=8))
    real = render.VideoWriter.write
    calls = {"n": 0}

    def write(self, frame):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        real(self, frame)

    monkeypatch.setattr(render.VideoWriter, "write", write)
    assert main(["video", str(clip), "--out", str(tmp_path / "o.mp4"), "--points", str(tmp_path / "p.csv"),
                 "-q"]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


def test_demo_video_writes_the_clip_the_videos_and_a_contact_sheet(tmp_path, photo):
    """demo_video writes the clip, the attention and map videos and the contact sheet it describes."""
    from PIL import Image

    from salience.video.demo import demo_video

    section = demo_video(photo, tmp_path, n=8, size=(96, 64))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["video_attention.mp4", "video_clip.avi", "video_contact_sheet.png", "video_map.mp4"]
    assert _frames_of(tmp_path / "video_attention.mp4") == 8
    assert Image.open(tmp_path / "video_contact_sheet.png").size == (4 * 96, 2 * 64)
    assert section["figures"][0]["images"] == ["video_contact_sheet.png"]
