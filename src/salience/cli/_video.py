"""``salience video``: saliency on a video file or camera, written as an overlay video, a map video and the
attended points per frame."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, OutputExistsError

EXAMPLES = """\
examples:
  salience video clip.mp4 --out clip_attention.mp4                     # dynamic Itti, focus and its path
  salience video clip.mp4 --out o.mp4 --map-video map.mp4 --points points.csv
  salience video clip.avi --method spectral-residual --out sr.avi      # any bottom-up method, per frame
  salience video 0 --max-frames 300 --out webcam.mp4                   # camera 0, 10 s at 30 frames/s

outputs:
  OUT          the frames with the saliency heatmap, the attended point (circle: the focus of attention)
               and its recent path (--trail frames); codec by extension: .mp4/.mov/.m4v mp4v, .avi/.mkv MJPG
  MAP.mp4      the saliency map of every frame, grey (--map-video)
  points.csv   frame,time,x,y,value,fixation,dwell,shifted per frame (--points)

Outputs are written to temporary files and renamed at the end: an interrupted or failed run leaves no
partial file under the final names.  Existing files are kept unless --overwrite.
exit status: 0 done, 2 bad usage or an unreadable video (the message says which), 3 outputs cannot be
  written (full disk, read-only folder, a file in the way), 130 interrupted, 143 terminated.
"""


def add_parser(sub):
    p = sub.add_parser(
        "video",
        help="saliency and attention on a video file or camera",
        description="Compute a saliency map per frame (default: the dynamic Itti model with flicker and "
                    "motion, Itti, Dhavale & Pighin 2003; or any bottom-up method) and follow the focus of "
                    "attention (winner-take-all with inhibition of return).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="INPUT", help="video file, or a camera index (0, 1, ...)")
    p.add_argument("--method", "-m", default="itti-dynamic",
                   help="itti-dynamic (default) or a bottom-up method name (see `salience methods`)")
    p.add_argument("--out", "-o", required=True, metavar="OUT.mp4", help="overlay video to write")
    p.add_argument("--map-video", metavar="MAP.mp4", default=None, help="also write the map video")
    p.add_argument("--points", metavar="points.csv", default=None, help="also write the attended point per frame")
    p.add_argument("--trail", type=int, default=30, metavar="N", help="frames of path drawn (default 30)")
    p.add_argument("--cmap", default="jet", help="colormap of the overlay (default jet)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the heatmap, 0..1 (default 0.5)")
    p.add_argument("--min-dwell", type=int, default=None, metavar="FRAMES",
                   help="frames a focus is held at least (default 6)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the outputs (default: the input's, else 30)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def _check(args) -> None:
    from ..viz import COLORMAPS

    if not 0.0 <= args.alpha <= 1.0:
        raise InputError(f"--alpha must lie in [0, 1], got {args.alpha}")
    if args.cmap.lower() not in COLORMAPS:
        raise InputError(f"unknown --cmap {args.cmap!r}; choose one of {', '.join(COLORMAPS)}")
    if args.trail < 0:
        raise InputError(f"--trail must be >= 0, got {args.trail}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    outs = [Path(x) for x in (args.out, args.map_video, args.points) if x]
    if len({o.resolve() for o in outs}) != len(outs):
        raise InputError("--out, --map-video and --points must name different files")
    if Path(args.input).exists() and any(o.resolve() == Path(args.input).resolve() for o in outs):
        raise InputError("an output would overwrite the input video; choose another name")
    if not args.overwrite:
        for o in outs:
            if o.exists():
                raise OutputExistsError(f"{o} exists already; pass --overwrite to replace it")


def run(args) -> int:
    from ..video.render import write_video

    _check(args)
    source = int(args.input) if args.input.isdigit() and not Path(args.input).exists() else args.input
    attention = {"min_dwell": args.min_dwell} if args.min_dwell is not None else True
    done = write_video(source, args.out, method=args.method, map_video=args.map_video, points=args.points,
                       trail=args.trail, cmap=args.cmap, alpha=args.alpha, attention=attention, fps=args.fps,
                       max_frames=args.max_frames, overwrite=args.overwrite, progress=not args.quiet)
    print(f"salience video: {done.frames} frames in {done.seconds:.1f} s ({done.fps:.1f} frames/s); wrote "
          + ", ".join(str(p) for p in done.paths))
    return 0
