"""gScoreCAM (Chen, Li, Biaz, Bui, Nguyen, ACCV 2022): Score-CAM on the ``k`` channels with the largest gradient.

Score-CAM needs one masked forward pass per activation channel of the layer (3072 for CLIP RN50x16's last
block).  gScoreCAM ranks the channels of each image by their spatially averaged gradient of the target score
(the Grad-CAM weight, signed, largest first), keeps the top ``k`` and runs Score-CAM's masked passes on those
only; the other channels get weight 0.  Cost: one forward and backward pass to the layer plus ``k`` masked
forward passes per image (``batch_size`` of them per call).  With ``k`` at least the channel count the map is
Score-CAM's.  The mechanism is :func:`salience.attribution.perturbation.score_weighted_cam`, shared with
:func:`~salience.attribution.scorecam`.

>>> import torch
>>> from salience.attribution import gscorecam
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
>>> e = gscorecam(net, torch.rand(2, 3, 16, 16), target=[0, 2], k=3)
>>> tuple(e.maps.shape), e.layer, e.extras["channels"], tuple(e.extras["channel_index"].shape)
((2, 16, 16), '1', 3, (2, 3))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Explanation, check_positive_int, check_unknown
from .perturbation import score_weighted_cam

__all__ = ["gscorecam", "DEFAULT_K"]

#: the default number of channels: the authors' implementation's default (``topk=300``), about 10% of the
#: channels of CLIP's ResNet towers (their README: "the top 10% most sensitive (highest-gradient) channels")
DEFAULT_K = 300


def gscorecam(model: Any, images: Any, target: Any = None, layer: Any = None, *, k: int = DEFAULT_K,
              batch_size: int = 32, reshape: Callable | None = None, probabilities: bool = True,
              progress: Callable[[int, int], None] | None = None, **params: Any) -> Explanation:
    """gScoreCAM (Chen et al., ACCV 2022): Score-CAM restricted to each image's ``k`` highest-gradient channels.

    Parameters
    ----------
    model: an ``nn.Module`` or a :class:`~salience.attribution.models.LoadedModel` (a CLIP image tower:
        :class:`salience.attribution.vlm.ImageTower`).
    images: float tensor ``(B, C, H, W)`` in the model's preprocessing (not modified).
    target: as for :func:`~salience.attribution.scorecam`: ``None`` (top-1), class indices, ``"top-k"`` or a
        callable on the output returning ``(B,)`` scores, e.g.
        :func:`salience.targets.text_image_similarity` for CLIP.
    layer: dotted module name or module (``None``: the last spatial layer).
    k: positive int, the number of channels per image that get a masked forward pass (default 300, the
        default of the authors' implementation).  ``k`` larger than the
        layer's channel count uses every channel (then the map equals Score-CAM's).
    batch_size: masked images per forward pass (memory bound).
    probabilities: channel weights are softmax probabilities of the target class (``False``: raw scores;
        callable targets: their value, as in Score-CAM).
    progress: called as ``progress(done, total)`` (masked forward passes) after each pass.

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]``; ``extras``: ``cam`` (low-resolution map),
    ``weights`` ``(B, K)`` (0 for the channels left out), ``channels`` (the count used per image) and
    ``channel_index`` ``(B, channels)`` (which, ascending).

    Raises
    ------
    InputError: ``k`` or ``batch_size`` not a positive integer.
    ZeroGradientError: an image's gradient at the layer is zero everywhere (no ranking), or no kept
        channel's mask changes its score.

    Notes
    -----
    The authors' code fills the left-out channels' scores with 0 before a softmax over all channels, so
    they keep a small equal weight; here (as in the paper's description) they are left out: weight 0.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import gscorecam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    >>> e = gscorecam(net, torch.rand(1, 3, 16, 16), target=1, k=2)
    >>> int((e.extras["weights"] != 0).sum()) <= 2, bool(e.maps.max() == 1)
    (True, True)
    """
    check_unknown("gscorecam", params)
    k = check_positive_int("k", k)
    return score_weighted_cam("gscorecam", model, images, target, layer, batch_size=batch_size, reshape=reshape,
                              probabilities=probabilities, channels=k, rank="gradient", progress=progress)
