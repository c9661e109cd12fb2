"""Video and real time: the dynamic Itti model, attention over time, and streams of frames.

- :class:`DynamicItti` (:mod:`salience.video.dynamic`): the static Itti model plus flicker and motion
  (Itti, Dhavale & Pighin, Proc. SPIE 5200, 2003), one frame after another.
- :class:`Attention` (:mod:`salience.video.attention`): winner-take-all with inhibition of return that
  builds while a target is held and decays over frames.
- :func:`stream` (:mod:`salience.video.stream`, also ``salience.stream``): maps and attended points per
  frame of a video file, a camera, an array or any iterable of frames.
- :func:`write_video` (:mod:`salience.video.render`): what ``salience video`` runs.

``docs/video.md`` has the account.
"""

from .attention import Attention, AttentionParams, Focus
from .dynamic import DynamicItti, DynamicParams, DynamicResult
from .render import VideoSummary, write_video
from .stream import FrameResult, Stream, stream

__all__ = [
    "Attention",
    "AttentionParams",
    "DynamicItti",
    "DynamicParams",
    "DynamicResult",
    "Focus",
    "FrameResult",
    "Stream",
    "VideoSummary",
    "stream",
    "write_video",
]
