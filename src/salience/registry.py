"""The one table of saliency methods.

Every method salience offers is one :class:`Method` row in :data:`_METHODS`.  The public API
(:func:`salience.saliency_map`, :func:`salience.explain`), the CLI (``salience methods``, ``--method``),
the demo gallery, the docs and the contract tests all read this table; nothing else lists methods.

A row names its implementation as ``"module:function"`` and imports it only when the method is used, so
listing methods never imports torch.

Two kinds of method, with two calling conventions:

``bottom-up``
    ``func(image, **params) -> ndarray``: ``image`` float32 ``(H, W, 3)`` in ``[0, 1]`` (as
    :func:`salience.load_image` returns it); the result is float32 ``(H, W)``, finite, the input's size.
``explanation``
    ``func(model, images, target=None, layer=None, **params) -> Explanation`` on a preprocessed
    ``(B, 3, H, W)`` tensor; see :func:`salience.explain`.

Adding a method is one row here plus one function: the row's typed facts (``value_range``, ``takes_layer``,
``pixel_level``, ``needs``) are all that the API, the CLI, the demo and the contract tests read about it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UnknownMethodError

__all__ = ["Method", "methods", "get_method", "method_names", "method_list", "BOTTOM_UP", "EXPLANATION", "UNIT",
           "TORCH", "MODEL_KINDS"]

BOTTOM_UP = "bottom-up"
EXPLANATION = "explanation"


#: the value range of most maps: min-max normalised to ``[0, 1]``
UNIT = (0.0, 1.0)
#: the extra an explanation method needs (``pip install 'salience[torch]'``)
TORCH = "torch"
#: the model kinds a row may require (``None``: any model); ``"transformer"``: self-attention layers
MODEL_KINDS = (None, "transformer")


@dataclass(frozen=True)
class Method:
    """One registered method: where its code is and the facts callers need about it.

    Attributes
    ----------
    name: the name used in the API and the CLI (lower case, hyphenated).
    kind: ``"bottom-up"`` or ``"explanation"``.
    target: ``"module:function"`` of the implementation, imported on first use.
    description: one line saying what it computes.
    paper: the reference (authors, year, title, venue).
    value_range: ``(lo, hi)``, the documented range of every map value, or ``None`` for a signed map in
        the model's score units (e.g. input x gradient), which has no fixed bounds.
    takes_layer: the method reads one layer of the model (the CAM family, Score-CAM);
        :func:`salience.explain` passes it a layer (the caller's, else the model's ``target_layer``) and
        refuses a layer for every other method.
    pixel_level: the map has pixel-level detail (gradients), not a smooth region map (CAMs,
        perturbations); a display clips such maps at a high percentile rather than blending them.
    needs: the extra that must be installed (``"torch"``; ``None``: the core suffices).  Defaults to
        ``"torch"`` for explanation rows.
    model_kind: ``None`` (any differentiable image model) or the kind of model the method needs:
        ``"transformer"`` (self-attention layers, global or Swin's windows: attention rollout, attention
        relevance, transformer attribution).  Callers that run every method on one model (``salience explain
        --method all``, the contract tests) pick the rows that fit it
        (``salience.attribution.transformer.fits_model_kind``).
    aliases: other accepted names.

    Examples
    --------
    >>> from salience.registry import get_method
    >>> m = get_method("gradcam")
    >>> m.takes_layer, m.pixel_level, m.value_range, m.signed, m.needs
    (True, False, (0.0, 1.0), False, 'torch')
    >>> get_method("ig").value_range is None and get_method("ig").signed
    True
    """

    name: str
    kind: str
    target: str
    description: str
    paper: str
    value_range: tuple[float, float] | None = UNIT
    takes_layer: bool = False
    pixel_level: bool = False
    needs: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    model_kind: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (BOTTOM_UP, EXPLANATION):
            raise ValueError(f"method {self.name!r}: kind must be {BOTTOM_UP!r} or {EXPLANATION!r}")
        if self.kind == EXPLANATION and self.needs is None:
            object.__setattr__(self, "needs", TORCH)
        if self.value_range is not None:
            lo, hi = self.value_range
            if not lo < hi:
                raise ValueError(f"method {self.name!r}: value_range must be (lo, hi) with lo < hi")
            object.__setattr__(self, "value_range", (float(lo), float(hi)))
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"method {self.name!r}: model_kind must be one of {MODEL_KINDS}")
        if self.kind == BOTTOM_UP and (self.takes_layer or self.value_range is None or self.model_kind):
            raise ValueError(f"method {self.name!r}: a bottom-up map takes no layer and has a fixed range")

    @property
    def signed(self) -> bool:
        """True when maps carry a sign (``value_range is None``); otherwise maps lie in ``value_range``."""
        return self.value_range is None

    @property
    def needs_model(self) -> bool:
        return self.kind == EXPLANATION

    def load(self) -> Callable[..., Any]:
        """Import and return the implementing function."""
        module_name, func_name = self.target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, func_name)

    def as_dict(self) -> dict[str, Any]:
        """The row as plain JSON types (``value_range``: ``[lo, hi]`` or ``None``); no ``target``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "paper": self.paper,
            "signed": self.signed,
            "value_range": None if self.value_range is None else list(self.value_range),
            "takes_layer": self.takes_layer,
            "pixel_level": self.pixel_level,
            "needs": self.needs,
            "aliases": list(self.aliases),
            "model_kind": self.model_kind,
        }


_B = "salience.bottomup"
_E = "salience.attribution"

_METHODS: tuple[Method, ...] = (
    # ---- bottom-up -----------------------------------------------------------------------------------
    Method(
        "itti", BOTTOM_UP, f"{_B}.itti:itti_koch_map",
        "Itti-Koch-Niebur: intensity, colour-opponent and Gabor orientation features on Gaussian pyramids, "
        "centre-surround differences, N(.) normalisation, conspicuity maps, combination",
        "L. Itti, C. Koch, E. Niebur. A model of saliency-based visual attention for rapid scene analysis. "
        "IEEE TPAMI 20(11):1254-1259, 1998",
        aliases=("itti-koch", "ittikoch"),
    ),
    Method(
        "spectral-residual", BOTTOM_UP, f"{_B}.spectral:spectral_residual",
        "Spectral residual: the log-amplitude spectrum minus its local average, back to the image plane",
        "X. Hou, L. Zhang. Saliency detection: a spectral residual approach. CVPR 2007",
        aliases=("spectral", "sr"),
    ),
    Method(
        "image-signature", BOTTOM_UP, f"{_B}.spectral:image_signature",
        "Image signature: sign of the DCT, back to the image plane, squared and blurred, per Lab channel",
        "X. Hou, J. Harel, C. Koch. Image signature: highlighting sparse salient regions. IEEE TPAMI "
        "34(1):194-201, 2012",
        aliases=("signature",),
    ),
    Method(
        "frequency-tuned", BOTTOM_UP, f"{_B}.spectral:frequency_tuned",
        "Frequency-tuned: distance in Lab between the image's mean colour and each slightly blurred pixel",
        "R. Achanta, S. Hemami, F. Estrada, S. Susstrunk. Frequency-tuned salient region detection. CVPR 2009",
        aliases=("ft",),
    ),
    Method(
        "centre-bias", BOTTOM_UP, f"{_B}.baselines:centre_bias",
        "Centre-bias baseline: an isotropic Gaussian centred on the image (ignores the content)",
        "T. Judd, K. Ehinger, F. Durand, A. Torralba. Learning to predict where humans look. ICCV 2009 "
        "(centre baseline); B. Tatler. The central fixation bias in scene viewing. J. Vision 7(14), 2007",
        aliases=("center-bias", "centre", "center"),
    ),
    Method(
        "deepgaze-mnv2", BOTTOM_UP, "salience.gaze.model:fixation_map",
        "Learned fixation density (DeepGaze II/IIE-style readout on frozen MobileNetV2 features, learned "
        "blur and centre prior), trained here on 500 OSIE images; needs the torch extra "
        "(pip install 'salience[torch]')",
        "M. Kummerer, T. S. A. Wallis, L. A. Gatys, M. Bethge. Understanding low- and high-level "
        "contributions to fixation prediction. ICCV 2017; A. Linardos, M. Kummerer, O. Press, M. Bethge. "
        "DeepGaze IIE: calibrated prediction in and out-of-domain for state-of-the-art saliency modeling. "
        "ICCV 2021",
        aliases=("deepgaze", "learned-fixations"),
    ),
    # ---- model explanations (salience.explain; need the torch extra) ---------------------------------
    Method(
        "gradient", EXPLANATION, f"{_E}.gradients:gradient",
        "Vanilla gradient: max over colour channels of |d score / d pixel|",
        "K. Simonyan, A. Vedaldi, A. Zisserman. Deep inside convolutional networks: visualising image "
        "classification models and saliency maps. ICLR workshop 2014",
        pixel_level=True, aliases=("saliency", "vanilla-gradient"),
    ),
    Method(
        "input-x-gradient", EXPLANATION, f"{_E}.gradients:input_x_gradient",
        "Input times gradient, summed over colour channels (signed)",
        "A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje. Not just a black box: learning important "
        "features through propagating activation differences. arXiv:1605.01713, 2016",
        value_range=None, pixel_level=True, aliases=("ixg", "input-times-gradient"),
    ),
    Method(
        "guided-backprop", EXPLANATION, f"{_E}.gradients:guided_backprop",
        "Guided Backpropagation: gradient with only positive signals passed back through every rectifier",
        "J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller. Striving for simplicity: the all "
        "convolutional net. ICLR workshop 2015",
        pixel_level=True, aliases=("guided-backpropagation", "gbp"),
    ),
    Method(
        "deconvnet", EXPLANATION, f"{_E}.propagation:deconvnet",
        "Deconvnet: gradient with every rectifier passing back relu(grad_out), whatever its input's sign",
        "M. D. Zeiler, R. Fergus. Visualizing and understanding convolutional networks. ECCV 2014",
        pixel_level=True, aliases=("deconvolution", "deconv"),
    ),
    Method(
        "deeplift", EXPLANATION, f"{_E}.propagation:deeplift",
        "DeepLIFT (rescale rule): (x - x0) times multipliers (f(x) - f(x0)) / (x - x0) back-propagated "
        "through every activation (signed, sums to s(x) - s(x0))",
        "A. Shrikumar, P. Greenside, A. Kundaje. Learning important features through propagating "
        "activation differences. ICML 2017",
        value_range=None, pixel_level=True, aliases=("deep-lift",),
    ),
    Method(
        "lrp", EXPLANATION, f"{_E}.lrp:lrp",
        "LRP composite (epsilon-gamma-box by default): epsilon rule on linear layers, gamma on convolutions, "
        "z^B on the pixel layer; relevance at the input, signed, sums to the score up to what biases absorb",
        "G. Montavon, A. Binder, S. Lapuschkin, W. Samek, K.-R. Muller. Layer-wise relevance propagation: an "
        "overview. In Explainable AI, LNCS 11700, Springer 2019",
        value_range=None, pixel_level=True, aliases=("lrp-composite", "layerwise-relevance-propagation"),
    ),
    Method(
        "lrp-epsilon", EXPLANATION, f"{_E}.lrp:lrp_epsilon",
        "LRP-epsilon: relevance redistributed by each layer's contributions z_ij / (z_j + eps sign z_j)",
        "S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Muller, W. Samek. On pixel-wise explanations "
        "for non-linear classifier decisions by layer-wise relevance propagation. PLoS ONE 10(7), 2015",
        value_range=None, pixel_level=True, aliases=("lrp-eps",),
    ),
    Method(
        "lrp-gamma", EXPLANATION, f"{_E}.lrp:lrp_gamma",
        "LRP-gamma: relevance redistributed with positive weights boosted, w + gamma w+",
        "G. Montavon, A. Binder, S. Lapuschkin, W. Samek, K.-R. Muller. Layer-wise relevance propagation: an "
        "overview. In Explainable AI, LNCS 11700, Springer 2019",
        value_range=None, pixel_level=True,
    ),
    Method(
        "lrp-alphabeta", EXPLANATION, f"{_E}.lrp:lrp_alphabeta",
        "LRP-alpha-beta: positive and negative contributions propagated separately (alpha - beta = 1)",
        "S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Muller, W. Samek. On pixel-wise explanations "
        "for non-linear classifier decisions by layer-wise relevance propagation. PLoS ONE 10(7), 2015",
        value_range=None, pixel_level=True, aliases=("lrp-alpha-beta", "lrp-ab"),
    ),
    Method(
        "lrp-zplus", EXPLANATION, f"{_E}.lrp:lrp_zplus",
        "LRP-z+ (deep Taylor): only positive contributions, biases left out (conservative)",
        "G. Montavon, S. Lapuschkin, A. Binder, W. Samek, K.-R. Muller. Explaining nonlinear classification "
        "decisions with deep Taylor decomposition. Pattern Recognition 65:211-222, 2017",
        value_range=None, pixel_level=True, aliases=("lrp-z+", "lrp-plus"),
    ),
    Method(
        "gradcam", EXPLANATION, f"{_E}.cam:gradcam",
        "Grad-CAM: ReLU of the target layer's activations weighted by their spatially averaged gradients",
        "R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra. Grad-CAM: visual "
        "explanations from deep networks via gradient-based localization. ICCV 2017",
        takes_layer=True, aliases=("grad-cam",),
    ),
    Method(
        "guided-gradcam", EXPLANATION, f"{_E}.cam:guided_gradcam",
        "Guided Grad-CAM: Guided Backpropagation times the upsampled Grad-CAM",
        "R. R. Selvaraju et al. Grad-CAM: visual explanations from deep networks via gradient-based "
        "localization. ICCV 2017",
        takes_layer=True, pixel_level=True, aliases=("guided-grad-cam",),
    ),
    Method(
        "gradcam-pp", EXPLANATION, f"{_E}.cam:gradcam_pp",
        "Grad-CAM++: channel weights from positive gradients with per-position alpha coefficients",
        "A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian. Grad-CAM++: generalized "
        "gradient-based visual explanations for deep convolutional networks. WACV 2018",
        takes_layer=True, aliases=("gradcam++", "gradcampp", "grad-cam++"),
    ),
    Method(
        "hirescam", EXPLANATION, f"{_E}.cam:hirescam",
        "HiRes-CAM: ReLU of the channel sum of gradient times activation, elementwise",
        "R. L. Draelos, L. Carin. Use HiResCAM instead of Grad-CAM for faithful explanations of "
        "convolutional neural networks. arXiv:2011.08891, 2020",
        takes_layer=True, aliases=("hires-cam",),
    ),
    Method(
        "layercam", EXPLANATION, f"{_E}.cam:layercam",
        "Layer-CAM: ReLU of the channel sum of positive gradients times activations, elementwise",
        "P.-T. Jiang, C.-B. Zhang, Q. Hou, M.-M. Cheng, Y. Wei. LayerCAM: exploring hierarchical class "
        "activation maps for localization. IEEE TIP 30:5875-5888, 2021",
        takes_layer=True, aliases=("layer-cam",),
    ),
    Method(
        "eigencam", EXPLANATION, f"{_E}.cam_variants:eigencam",
        "EigenCAM: the target layer's activations projected on their first principal component "
        "(gradient-free, class-agnostic)",
        "M. B. Muhammad, M. Yeasin. Eigen-CAM: class activation map using principal components. "
        "IJCNN 2020",
        takes_layer=True, aliases=("eigen-cam",),
    ),
    Method(
        "eigen-gradcam", EXPLANATION, f"{_E}.cam_variants:eigen_gradcam",
        "Eigen-Grad-CAM: first principal component projection of gradient times activation "
        "(class-specific EigenCAM)",
        "M. B. Muhammad, M. Yeasin. Eigen-CAM: class activation map using principal components. "
        "IJCNN 2020 (gradient-weighted variant of pytorch-grad-cam, J. Gildenblat et al. 2021)",
        takes_layer=True, aliases=("eigengradcam", "eigen-grad-cam"),
    ),
    Method(
        "xgradcam", EXPLANATION, f"{_E}.cam_variants:xgradcam",
        "XGrad-CAM: channel weights are the gradients averaged with the normalised activations as weights",
        "R. Fu, Q. Hu, X. Dong, Y. Guo, Y. Gao, B. Li. Axiom-based Grad-CAM: towards accurate "
        "visualization and explanation of CNNs. BMVC 2020",
        takes_layer=True, aliases=("xgrad-cam", "axiom-gradcam"),
    ),
    Method(
        "ablationcam", EXPLANATION, f"{_E}.cam_variants:ablationcam",
        "Ablation-CAM: channel weights are the relative drop of the target score when each channel is "
        "zeroed (gradient-free)",
        "S. Desai, H. G. Ramaswamy. Ablation-CAM: visual explanations for deep convolutional network via "
        "gradient-free localization. WACV 2020",
        takes_layer=True, aliases=("ablation-cam",),
    ),
    Method(
        "fullgrad", EXPLANATION, f"{_E}.fullgrad:fullgrad",
        "FullGrad: rescaled |input x gradient| plus the rescaled |bias x gradient| of every convolution "
        "and batch-norm layer, upsampled and summed",
        "S. Srinivas, F. Fleuret. Full-gradient representation for neural network visualization. "
        "NeurIPS 2019",
        pixel_level=True, aliases=("full-grad",),
    ),
    Method(
        "scorecam", EXPLANATION, f"{_E}.perturbation:scorecam",
        "Score-CAM: activation channels weighted by the target probability of the input masked by each",
        "H. Wang, Z. Wang, M. Du, F. Yang, Z. Zhang, S. Ding, P. Mardziel, X. Hu. Score-CAM: score-weighted "
        "visual explanations for convolutional neural networks. CVPR workshops 2020",
        takes_layer=True, aliases=("score-cam",),
    ),
    Method(
        "gscorecam", EXPLANATION, f"{_E}.gscorecam:gscorecam",
        "gScoreCAM: Score-CAM on each image's k channels with the largest mean gradient of the target "
        "(k=300 default; cheap enough for CLIP's CNN image towers)",
        "P. Chen, Q. Li, S. Biaz, T. Bui, A. Nguyen. gScoreCAM: what objects is CLIP looking at? ACCV 2022",
        takes_layer=True, aliases=("gscore-cam", "g-scorecam"),
    ),
    Method(
        "smoothgrad", EXPLANATION, f"{_E}.gradients:smoothgrad",
        "SmoothGrad: a gradient method averaged over copies of the input with Gaussian noise",
        "D. Smilkov, N. Thorat, B. Kim, F. Viegas, M. Wattenberg. SmoothGrad: removing noise by adding "
        "noise. ICML workshop 2017 (arXiv:1706.03825)",
        pixel_level=True, aliases=("smooth-grad",),
    ),
    Method(
        "integrated-gradients", EXPLANATION, f"{_E}.gradients:integrated_gradients",
        "Integrated Gradients: (x - baseline) times the path integral of gradients (signed, complete)",
        "M. Sundararajan, A. Taly, Q. Yan. Axiomatic attribution for deep networks. ICML 2017",
        value_range=None, pixel_level=True, aliases=("ig", "integrated-gradient"),
    ),
    Method(
        "occlusion", EXPLANATION, f"{_E}.perturbation:occlusion",
        "Occlusion: drop of the target score when a sliding window is replaced by a constant (signed)",
        "M. D. Zeiler, R. Fergus. Visualizing and understanding convolutional networks. ECCV 2014",
        value_range=None,
    ),
    Method(
        "rise", EXPLANATION, f"{_E}.perturbation:rise",
        "RISE: random masks averaged with the model's probability on each masked image as weights",
        "V. Petsiuk, A. Das, K. Saenko. RISE: randomized input sampling for explanation of black-box "
        "models. BMVC 2018",
    ),
    # ---- transformers (self-attention layers; model_kind="transformer") -------------------------------
    Method(
        "attention-rollout", EXPLANATION, f"{_E}.transformer:attention_rollout",
        "Attention rollout: the class token's row of the product of the layers' head-averaged attention "
        "with the identity added for the residual (class-agnostic)",
        "S. Abnar, W. Zuidema. Quantifying attention flow in transformers. ACL 2020",
        model_kind="transformer", aliases=("rollout",),
    ),
    Method(
        "attention-relevance", EXPLANATION, f"{_E}.transformer:attention_relevance",
        "Gradient-weighted attention relevance: R <- R + mean_heads(relu(grad x attention)) R over the "
        "layers, the class token's row (class-specific)",
        "H. Chefer, S. Gur, L. Wolf. Generic attention-model explainability for interpreting bi-modal and "
        "encoder-decoder transformers. ICCV 2021 (after H. Chefer, S. Gur, L. Wolf. Transformer "
        "interpretability beyond attention visualization. CVPR 2021)",
        model_kind="transformer", aliases=("chefer", "generic-attention", "transformer-relevance"),
    ),
    Method(
        "transformer-attribution", EXPLANATION, f"{_E}.transformer:transformer_attribution",
        "Transformer attribution: each attention map's LRP relevance (z+ linear layers, product rule for "
        "the attention products, conserving residuals) times its gradient, positive part, head mean, "
        "rolled out as R <- R + A R; the class token's row (class-specific)",
        "H. Chefer, S. Gur, L. Wolf. Transformer interpretability beyond attention visualization. "
        "CVPR 2021",
        model_kind="transformer", aliases=("chefer-lrp", "transformer-lrp"),
    ),
    # ---- Shapley and surrogate methods (attribution/shapley.py) ---------------------------------------
    Method(
        "gradient-shap", EXPLANATION, f"{_E}.shapley:gradient_shap",
        "GradientSHAP / expected gradients: (x - b) times the gradient at a random point between a baseline "
        "b drawn from a distribution (noise or reference images) and x, averaged over draws (signed)",
        "S. M. Lundberg, S.-I. Lee. A unified approach to interpreting model predictions. NeurIPS 2017; "
        "G. Erion, J. D. Janizek, P. Sturmfels, S. M. Lundberg, S.-I. Lee. Improving performance of deep "
        "learning models with axiomatic attribution priors and expected gradients. Nature Machine "
        "Intelligence 3:620-631, 2021",
        value_range=None, pixel_level=True, aliases=("gradientshap", "expected-gradients", "gshap"),
    ),
    Method(
        "kernel-shap", EXPLANATION, f"{_E}.shapley:kernel_shap",
        "KernelSHAP: Shapley values of superpixels (SLIC) or grid cells by Shapley-kernel weighted least "
        "squares with exact efficiency; exact when every coalition fits in n_samples (signed)",
        "S. M. Lundberg, S.-I. Lee. A unified approach to interpreting model predictions. NeurIPS 2017",
        value_range=None, aliases=("kernelshap", "shap"),
    ),
    Method(
        "lime", EXPLANATION, f"{_E}.shapley:lime",
        "LIME: a proximity-weighted ridge surrogate fitted to the scores of random superpixel (SLIC) or "
        "grid-cell coalitions; its coefficients (signed)",
        "M. T. Ribeiro, S. Singh, C. Guestrin. \"Why should I trust you?\": explaining the predictions of "
        "any classifier. KDD 2016",
        value_range=None,
    ),
    Method(
        "feature-ablation", EXPLANATION, f"{_E}.shapley:feature_ablation",
        "Feature ablation: drop of the target score when one superpixel (SLIC) or grid cell at a time is "
        "replaced by a baseline (signed)",
        "M. Robnik-Sikonja, I. Kononenko. Explaining classifications for individual instances. IEEE TKDE "
        "20(5):589-600, 2008; M. D. Zeiler, R. Fergus. ECCV 2014 (occlusion)",
        value_range=None, aliases=("featureablation", "superpixel-ablation"),
    ),
)


def _index() -> dict[str, Method]:
    table: dict[str, Method] = {}
    for m in _METHODS:
        for key in (m.name, *m.aliases):
            table[key] = m
    return table


_BY_NAME = _index()


def methods(kind: str | None = None) -> list[Method]:
    """All registered methods, optionally only those of one ``kind`` (``"bottom-up"`` / ``"explanation"``).

    Examples
    --------
    >>> from salience.registry import methods
    >>> names = [m.name for m in methods("bottom-up")]
    >>> "itti" in names, all(m.kind == "explanation" for m in methods("explanation"))
    (True, True)
    """
    if kind is not None and kind not in (BOTTOM_UP, EXPLANATION):
        raise UnknownMethodError(f"unknown method kind {kind!r}; expected 'bottom-up' or 'explanation'")
    return [m for m in _METHODS if kind is None or m.kind == kind]


def method_names(kind: str | None = None) -> list[str]:
    return [m.name for m in methods(kind)]


def get_method(name: str) -> Method:
    """The registry row for ``name`` (or one of its aliases); a close-match hint when it is unknown.

    Examples
    --------
    >>> from salience.registry import get_method
    >>> m = get_method("itti")
    >>> m.name, m.kind, m.takes_layer
    ('itti', 'bottom-up', False)
    """
    if not isinstance(name, str):
        raise UnknownMethodError(f"a method name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, list(_BY_NAME), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "."
    raise UnknownMethodError(
        f"unknown method {name!r}{hint} Known methods: {', '.join(method_names())} "
        "(`salience methods` lists them with their papers)"
    )


def method_list(spec: Any, kind: str | None = None, *, wrong_kind_hint: str = "") -> list[str]:
    """Registry names of ``spec`` (a comma-separated string or a sequence of names/aliases), in order and
    without repeats; every name must be of ``kind`` when it is given (``wrong_kind_hint`` follows the error)."""
    from .errors import InputError

    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names: list[str] = []
    for raw in items:
        if not raw:
            continue
        m = get_method(raw)
        if kind is not None and m.kind != kind:
            raise InputError(f"method {m.name!r} is {m.kind}, not {kind}{wrong_kind_hint}")
        if m.name not in names:
            names.append(m.name)
    if not names:
        known = ", ".join(method_names(kind))
        raise InputError(f"no method given (the list is empty); give one or more of {known}")
    return names


# ---------------------------------------------------------------------------
# Parameters as users write them on a command line (``--param [METHOD.]NAME=VALUE``): one parser for the
# CLI's explain/audit commands and for batch runs.

_RESERVED = frozenset({"model", "images", "image", "target", "layer"})


def method_parameters(name: str) -> set[str]:
    """The keyword parameters the method ``name`` names in its function's signature, without the ones every
    method of its kind takes (``image``/``images``, ``model``, ``target``, ``layer``).

    >>> sorted(method_parameters("spectral-residual"))
    ['avg_size', 'sigma', 'width']
    """
    import inspect

    sig = inspect.signature(get_method(name).load())
    return {p.name for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - _RESERVED


def _open_parameters(name: str) -> bool:
    """Whether the method forwards keywords it does not name (``**overrides``, e.g. Itti's parameter
    record) and checks them itself."""
    import inspect

    m = get_method(name)
    if m.kind != BOTTOM_UP:  # the explanation methods' ``**params`` only refuse strays
        return False
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(m.load()).parameters.values())


def parse_param_value(text: str) -> Any:
    """One ``--param`` value: ``true``/``false``, ``none``, an int, a float, a comma-separated list of
    numbers (a tuple), or else the text itself.

    >>> parse_param_value("3"), parse_param_value("0.5"), parse_param_value("1,2"), parse_param_value("guide")
    (3, 0.5, (1, 2), 'guide')
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if "," in text:
        parts = [parse_param_value(t) for t in text.strip().strip("[]()").split(",")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parts):
            return tuple(parts)
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_param_specs(specs: Any, methods: list[str],
                      base: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``--param [METHOD.]NAME=VALUE`` items -> ``{method: {name: value}}`` for the chosen ``methods``
    (registry names), starting from ``base`` (e.g. a preset).  A scoped item goes to its method; an unscoped
    one to every chosen method that names it in its signature, or when none does, to the bottom-up methods
    that forward keywords to a parameter record (Itti's ``IttiParams``), which check them.  A key that none
    of them accepts, a scoped key its method does not accept, or a method not among ``methods`` is an
    :class:`~salience.errors.InputError` that lists what is accepted.  Dashes in a name become underscores.

    >>> parse_param_specs(["spectral-residual.sigma=2", "combination=max"], ["spectral-residual", "itti"])
    {'spectral-residual': {'sigma': 2}, 'itti': {'combination': 'max'}}
    """
    from .errors import InputError

    out: dict[str, dict[str, Any]] = {m: dict((base or {}).get(m, {})) for m in methods}
    for spec in specs or []:
        name, sep, raw = str(spec).partition("=")
        scope_raw, _, key = name.strip().rpartition(".")  # no dot: scope_raw is ""
        key = key.replace("-", "_")
        if not sep or not key:
            raise InputError(f"--param {spec!r} is not [METHOD.]KEY=VALUE (e.g. --param smoothgrad.n=10 or "
                             "--param activations=guide)")
        scope = get_method(scope_raw).name if scope_raw else None
        if scope is not None and scope not in out:
            raise InputError(f"--param {spec!r} names method {scope!r}, which is not in --method "
                             f"({', '.join(methods)})")
        targets = [scope] if scope else list(out)
        takers = [m for m in targets if key in method_parameters(m)] or \
            [m for m in targets if _open_parameters(m)]
        if not takers:
            accepted = "; ".join(f"{m}: {', '.join(sorted(method_parameters(m))) or '(none)'}" for m in targets)
            raise InputError(f"--param {key!r} is not a parameter of {', '.join(targets)} (accepted: {accepted})")
        for m in takers:
            out[m][key] = parse_param_value(raw)
    return out
