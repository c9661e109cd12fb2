"""The public names of salience, salience.metrics and salience.attribution are pinned: adding or removing
one is a decision, made by editing the lists below (and the CHANGELOG), never an accident."""

from __future__ import annotations

import importlib

import pytest

SALIENCE = {
    "__version__", "load_image", "save_map", "saliency_map", "methods", "get_method", "Method", "itti_koch",
    "IttiParams", "scanpath", "explain", "load_model", "SalienceError", "InputError", "ImageReadError",
    "ImageTooLargeError", "UnknownMethodError", "ModelError", "MissingDependencyError", "OutputExistsError",
    "DataError", "ZeroGradientError", "OutputError", "stream", "crop", "segment",
}
METRICS = {
    "CONVENTIONS", "DegenerateInputWarning", "EPS", "GroundTruth", "METRICS", "auc_borji", "auc_judd", "cc",
    "centre_bias_map", "degrees_to_pixels", "emd", "evaluate", "fixation_density_map", "fixation_map_from_points",
    "information_gain", "kld", "nss", "pixels_per_degree", "prepare_ground_truth", "sauc", "sim",
    # salient-object metrics (metrics/objects.py)
    "ObjectScoreAccumulator", "ObjectScores", "SOD_METRICS", "adaptive_threshold", "confusion_curve", "dice",
    "e_measure", "e_measure_curve", "f_measure", "f_measure_curve", "iou", "mae", "object_scores",
    "parse_metrics", "prepare_object_inputs", "s_measure", "weighted_f_measure",
}
ATTRIBUTION = {
    "explain", "method_layer", "Explanation", "View", "load_model", "LoadedModel", "image_saliency_map", "upsample",
    "Target", "resolve_layer", "check_images", "select_scores", "target_scores", "unwrap_model", "gaussian_blur",
    "gradient",
    "input_x_gradient", "guided_backprop", "smoothgrad", "integrated_gradients", "gradcam", "gradcam_pp",
    "hirescam", "layercam", "guided_gradcam", "scorecam", "gscorecam", "occlusion", "rise",
    "ablationcam", "deconvnet", "deeplift", "eigen_gradcam", "eigencam", "fullgrad", "xgradcam",
    "lrp", "lrp_epsilon", "lrp_gamma", "lrp_alphabeta", "lrp_zplus",
    "attention_rollout", "attention_relevance", "transformer_attribution",
    "gradient_shap", "kernel_shap", "lime", "feature_ablation", "feature_mask",
}


@pytest.mark.parametrize("module,names", [("salience", SALIENCE), ("salience.metrics", METRICS),
                                          ("salience.attribution", ATTRIBUTION)])
def test_public_names_are_pinned(module, names):
    """__all__ is exactly the pinned set, without repeats, and every name in it resolves."""
    if module == "salience.attribution":
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__)), "a name is listed twice in __all__"
    assert set(mod.__all__) - names == set(), "new public names: add them here (and to CHANGELOG.md)"
    assert names - set(mod.__all__) == set(), "public names removed: a breaking change (CHANGELOG.md)"
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_star_import_gives_exactly_all():
    """`from salience import *` binds the pinned names (lazy ones included) and nothing else."""
    ns: dict = {}
    exec("from salience import *", ns)  # noqa: S102
    assert set(ns) - {"__builtins__"} == SALIENCE
