"""Model explanations: where a PyTorch image model looked for its decision.

One verb for every method, with the same arguments::

    explain(model, images, method="gradcam", target=None, layer=None, **params) -> Explanation

``images`` is a float ``(B, C, H, W)`` tensor in the model's own preprocessing; the result's ``maps`` is
a float32 ``(B, H, W)`` tensor at the input size, with ``targets`` (class indices) and ``scores``.
Methods are the ``"explanation"`` rows of :func:`salience.methods` (gradient, input-x-gradient,
guided-backprop, deconvnet, deeplift, lrp (and lrp-epsilon/-gamma/-alphabeta/-zplus), gradcam, guided-gradcam,
gradcam-pp, hirescam, layercam, eigencam, eigen-gradcam,
xgradcam, ablationcam, fullgrad, scorecam, gscorecam, smoothgrad,
integrated-gradients, occlusion, rise, gradient-shap, kernel-shap, lime, feature-ablation, and for vision
transformers attention-rollout and attention-relevance); docs/explain.md says what each computes.

Needs the torch extra: ``pip install 'salience[torch]'``.

Note on the name: ``salience.explain`` (the attribute of the top-level package) is the *function*; the
subpackage is ``sys.modules["salience.attribution"]`` and is imported with ``from salience.attribution import
gradcam`` or ``importlib.import_module("salience.attribution")`` (see docs/design.md).

>>> import torch
>>> from salience.attribution import explain
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
>>> e = explain(net, torch.rand(2, 3, 32, 32), method="gradcam", target=[0, 2])
>>> tuple(e.maps.shape), e.targets.tolist(), e.layer
((2, 32, 32), [0, 2], '1')
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in an environment without torch
    from ..errors import MissingDependencyError

    raise MissingDependencyError(
        "salience.attribution (model explanations) needs PyTorch (the torch extra), which is not installed; "
        "install it with: pip install 'salience[torch]'"
    ) from _exc

from typing import Any

import numpy as np

from ..errors import InputError
from ..registry import EXPLANATION, Method, get_method
from ._base import (
    Explanation,
    Target,
    View,
    check_images,
    gaussian_blur,
    select_scores,
    target_scores,
    unwrap_model,
    upsample,
)
from ._hooks import resolve_layer
from .cam import gradcam, gradcam_pp, guided_gradcam, hirescam, layercam
from .cam_variants import ablationcam, eigen_gradcam, eigencam, xgradcam
from .fullgrad import fullgrad
from .gradients import gradient, guided_backprop, input_x_gradient, integrated_gradients, smoothgrad
from .gscorecam import gscorecam
from .lrp import lrp, lrp_alphabeta, lrp_epsilon, lrp_gamma, lrp_zplus
from .models import LoadedModel, load_model
from .perturbation import occlusion, rise, scorecam
from .propagation import deconvnet, deeplift
from .shapley import feature_ablation, feature_mask, gradient_shap, kernel_shap, lime
from .transformer import attention_relevance, attention_rollout, transformer_attribution

__all__ = [
    "explain",
    "method_layer",
    "Explanation",
    "View",
    "load_model",
    "LoadedModel",
    "image_saliency_map",
    "upsample",
    "Target",
    "resolve_layer",
    "check_images",
    "select_scores",
    "target_scores",
    "unwrap_model",
    "gaussian_blur",
    "gradient",
    "input_x_gradient",
    "guided_backprop",
    "smoothgrad",
    "integrated_gradients",
    "gradcam",
    "gradcam_pp",
    "hirescam",
    "layercam",
    "guided_gradcam",
    "eigencam",
    "eigen_gradcam",
    "xgradcam",
    "ablationcam",
    "fullgrad",
    "deconvnet",
    "deeplift",
    "lrp",
    "lrp_epsilon",
    "lrp_gamma",
    "lrp_alphabeta",
    "lrp_zplus",
    "scorecam",
    "gscorecam",
    "occlusion",
    "rise",
    "attention_rollout",
    "attention_relevance",
    "transformer_attribution",
    "gradient_shap",
    "kernel_shap",
    "lime",
    "feature_ablation",
    "feature_mask",
]


def explain(model: Any, images: Any, method: str = "gradcam", target: Any = None, layer: Any = None,
            **params: Any) -> Explanation:
    """Explain a model's output on a batch of images with any registered explanation method.

    Parameters
    ----------
    model: an ``nn.Module`` (any PyTorch image model) or a :class:`LoadedModel`.
    images: float tensor ``(B, C, H, W)`` in the model's preprocessing; never modified.
    method: a registry name or alias (``"gradcam"``, ``"guided-backprop"``, ``"ig"``, ...).
    target: ``None`` (the top class), a class index (``3``, ``np.int64(3)``, ``3.0``), one index per
        image (list/tensor of length B), ``"top-k"``/``"topk:k"`` (the k-th most likely class), a class
        name or one per image (for a :class:`LoadedModel`: exact or a unique whole-word match, see
        :meth:`LoadedModel.class_index`), or a callable ``f(output) -> (B,)`` scores (embeddings,
        similarity, a region of a segmentation, a detection score).
    layer: for the methods whose registry row ``takes_layer`` (CAM methods, Score-CAM), a dotted module
        name (``"features.18"``) or a module; ``None``: the model's ``target_layer`` when it is a
        :class:`LoadedModel` that names one, else the last layer with a spatial output.  Every other method
        explains input pixels and refuses a layer.
    **params: the method's parameters (see each function).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)``; ``targets``; ``scores``; ``method``; ``layer``; extras.

    Raises
    ------
    UnknownMethodError, InputError (bad images, targets length != batch), ModelError (unknown layer,
    target out of range, unknown or ambiguous class name, under ``torch.inference_mode()``),
    ZeroGradientError (the score does not depend on the input: every method raises it).  Hooks, flags
    and modes of the model are restored in every case.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import explain
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = explain(net, torch.rand(2, 3, 16, 16), "gradient", target=1)
    >>> tuple(e.maps.shape), e.method, e.targets.tolist()
    ((2, 16, 16), 'gradient', [1, 1])
    """
    m = get_method(method)
    if m.kind != EXPLANATION:
        raise InputError(
            f"method {m.name!r} is bottom-up (computed from the pixels alone), not a model explanation; "
            "use salience.saliency_map(image, method) for it"
        )
    result = m.load()(model, images, target=class_names_to_indices(model, target),
                      layer=method_layer(m, model, layer), **params)
    view = getattr(images, "salience_view", None)  # set by LoadedModel.preprocess: where the input lay on the photo
    if isinstance(view, View) and isinstance(result, Explanation) and "view" not in result.extras:
        result.extras["view"] = view
    return result


def method_layer(method: Any, model: Any, layer: Any = None) -> Any:
    """The layer :func:`explain` hands to ``method``: the one place that chooses it.

    For a method whose registry row ``takes_layer``: ``layer`` if given, else the model's
    ``target_layer`` (a :class:`LoadedModel` names one), else ``None`` (the method picks the last
    spatial layer).  For every other method ``None``, and a ``layer`` given for it is refused.

    Parameters
    ----------
    method: a registry name or :class:`~salience.registry.Method` row.
    model: the model (``nn.Module`` or :class:`LoadedModel`).
    layer: the caller's layer, or ``None``.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import method_layer
    >>> method_layer("gradcam", torch.nn.Identity(), "features.3"), method_layer("gradient", None)
    ('features.3', None)
    """
    m = method if isinstance(method, Method) else get_method(method)
    if not m.takes_layer:
        if layer is not None:
            raise InputError(f"method {m.name!r} explains input pixels and takes no layer; pass layer=None")
        return None
    if layer is None and isinstance(model, LoadedModel):
        layer = model.target_layer
    return layer


def class_names_to_indices(model: Any, target: Any) -> Any:
    """A class name (or a list of them) as class indices, for a :class:`LoadedModel` with class names;
    ``"top-k"`` and every other target form are returned unchanged."""
    if not isinstance(model, LoadedModel) or not model.class_names:
        return target

    def is_name(t: Any) -> bool:
        if not isinstance(t, str):
            return False
        key = t.strip().lower().replace(" ", "")
        return not (key.startswith("top") or key == "argmax")

    if is_name(target):
        return model.class_index(target)
    if isinstance(target, (list, tuple)) and target and all(isinstance(t, str) for t in target):
        return [model.class_index(t) if is_name(t) else t for t in target]
    return target


def image_saliency_map(image_array: np.ndarray, method: str, model: Any = None, target: Any = None,
                       layer: Any = None, *, return_explanation: bool = False, **params: Any) -> Any:
    """One image in, one map out: float32 ``(H, W)`` at the image's size.  The one explain-one-image
    function: :func:`salience.saliency_map`, ``salience explain`` and ``salience audit`` all call it.

    Parameters
    ----------
    image_array: float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (as :func:`salience.load_image` returns).
    method: an explanation method of the registry.
    model: ``None`` (the default :func:`load_model`), a :class:`LoadedModel`, or an ``nn.Module`` (then
        ImageNet preprocessing is used).  The input goes to the model's device.
    target: as in :func:`explain`; with a :class:`LoadedModel` also a class name.
    layer: as in :func:`explain`.
    return_explanation: also return the :class:`Explanation` (targets, scores, extras).
    **params: the method's parameters.

    Returns
    -------
    numpy.ndarray, or ``(map, Explanation)`` with ``return_explanation``.  The image is resized (short
    side 224, whole image kept), explained, and the map resized back bilinearly.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from salience.attribution import image_saliency_map
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
    ...                           torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> image_saliency_map(np.full((30, 40, 3), 0.5, np.float32), "gradient", model=net, target=1).shape
    (30, 40)
    """
    import torch

    from .models import IMAGENET_MEAN, IMAGENET_STD, make_preprocess

    if model is None:
        model = _default_model()
    if isinstance(model, LoadedModel):
        pre = model.preprocess
    else:
        pre = make_preprocess(IMAGENET_MEAN, IMAGENET_STD)
    x = pre(image_array, crop=False)
    net = model.model if isinstance(model, LoadedModel) else model
    first = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
    if first is not None:
        x = x.to(first.device)
    e = explain(model, x, method=method, target=target, layer=layer, **params)
    h, w = image_array.shape[:2]
    out = upsample(e.maps.detach().float().cpu(), (h, w))[0].numpy().astype(np.float32)
    return (out, e) if return_explanation else out


_DEFAULT: dict[str, LoadedModel] = {}


def _default_model() -> LoadedModel:
    if "m" not in _DEFAULT:
        _DEFAULT["m"] = load_model()
    return _DEFAULT["m"]
