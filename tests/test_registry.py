"""The registry is the one place a method is added: typed facts, and one dummy row reaching everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import _dummy_method as dummy  # noqa: E402  (tests/ is on sys.path: rootdir conftest)
import salience
from salience.cli import main
from salience.registry import BOTTOM_UP, EXPLANATION, Method, get_method, methods

TESTS = Path(__file__).resolve().parent


@pytest.fixture()
def with_dummies():
    """The registry with the two dummy rows added, restored afterwards."""
    undo = dummy.install()
    yield
    undo()


def test_typed_facts_are_consistent():
    """signed is exactly value_range None; bottom-up rows are unsigned, layer-free and need no extra."""
    for m in methods():
        assert m.signed == (m.value_range is None)
        if m.value_range is not None:
            lo, hi = m.value_range
            assert isinstance(lo, float) and isinstance(hi, float) and lo < hi
        if m.kind == BOTTOM_UP:
            assert not m.signed and not m.takes_layer and not m.pixel_level and m.needs is None
        else:
            assert m.needs == "torch"


def test_the_layer_takers_are_the_cam_family_and_scorecam():
    """takes_layer marks exactly the methods that read one layer (what faithfulness used to sniff); FullGrad
    reads every layer's bias gradients and takes none."""
    assert {m.name for m in methods(EXPLANATION) if m.takes_layer} == {
        "gradcam", "guided-gradcam", "gradcam-pp", "hirescam", "layercam", "scorecam", "gscorecam",
        "eigencam", "eigen-gradcam", "xgradcam", "ablationcam"}
    assert {m.name for m in methods(EXPLANATION) if m.signed} == {
        "input-x-gradient", "integrated-gradients", "occlusion", "deeplift",
        "lrp", "lrp-epsilon", "lrp-gamma", "lrp-alphabeta", "lrp-zplus",
        "gradient-shap", "kernel-shap", "lime", "feature-ablation"}


def test_as_dict_is_plain_json():
    """as_dict() survives a JSON round trip unchanged and carries the typed facts."""
    for m in methods():
        d = m.as_dict()
        assert json.loads(json.dumps(d)) == d
        assert {"takes_layer", "pixel_level", "needs", "value_range", "signed"} <= set(d)
    assert get_method("itti").as_dict()["value_range"] == [0.0, 1.0]
    assert get_method("ig").as_dict()["value_range"] is None


def test_a_bad_row_is_refused_when_it_is_written():
    """A row with an empty range or a bottom-up row taking a layer fails at definition time."""
    with pytest.raises(ValueError, match="lo < hi"):
        Method("x", BOTTOM_UP, "m:f", "d", "p", value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="takes no layer"):
        Method("x", BOTTOM_UP, "m:f", "d", "p", takes_layer=True)


def test_explain_refuses_a_layer_for_pixel_methods_and_defaults_it_for_cams():
    """explain() is the one place that checks 'takes no layer' and picks LoadedModel.target_layer."""
    torch = pytest.importorskip("torch")
    from salience.attribution import LoadedModel, method_layer

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.rand(1, 3, 10, 10)
    for m in methods(EXPLANATION):
        if not m.takes_layer:
            with pytest.raises(salience.InputError, match="takes no layer"):
                salience.explain(net, x, m.name, layer="0")
    lm = LoadedModel(model=net, preprocess=None, class_names=["a", "b"], target_layer="0", name="toy")
    assert method_layer("gradcam", lm) == "0" and method_layer("gradcam", lm, "1") == "1"
    assert method_layer("gradcam", net) is None and method_layer("gradient", lm) is None
    assert salience.explain(lm, x, "gradcam").layer == "0"


def test_a_dummy_row_reaches_the_api_and_the_cli(with_dummies, photo, tmp_path, capsys):
    """One Method row plus one function: saliency_map, explain, `salience methods` and `--method` see it."""
    out = salience.saliency_map(photo, dummy.BOTTOM_UP_NAME)
    np.testing.assert_allclose(out, dummy.luminance(photo), atol=0)
    assert dummy.BOTTOM_UP_NAME in [m.name for m in salience.methods(BOTTOM_UP)]
    assert main(["methods", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed[dummy.EXPLANATION_NAME]["pixel_level"] is True
    assert dummy.BOTTOM_UP_NAME in listed
    src = tmp_path / "a.png"
    salience.save_map(photo.mean(axis=2), src)
    assert main(["map", str(src), "--method", dummy.BOTTOM_UP_NAME, "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / f"a_{dummy.BOTTOM_UP_NAME}.png").is_file()
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    e = salience.explain(net, torch.rand(1, 3, 10, 10), dummy.EXPLANATION_NAME)
    assert e.method == dummy.EXPLANATION_NAME and tuple(e.maps.shape) == (1, 10, 10)


def test_a_dummy_row_is_picked_up_by_the_contract_tests():
    """The registry-driven contract suites parametrize over a new row with no edit to them."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    files = [str(TESTS / "test_contracts_bottomup.py"), str(TESTS / "test_explain_contract.py")]
    res = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "_dummy_method", "-k", "dummy", "-p",
                          "no:cacheprovider", *files], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    passed = [line for line in res.stdout.splitlines() if line.endswith("PASSED") or " PASSED " in line]
    bottom_up = [line for line in passed if "test_contracts_bottomup.py" in line and dummy.BOTTOM_UP_NAME in line]
    explanation = [line for line in passed
                   if "test_explain_contract.py" in line and dummy.EXPLANATION_NAME in line]
    # every parametrized contract of each suite ran on its dummy (17 bottom-up cases, 6 explanation ones
    # today); none means a suite stopped reading the registry
    assert len(bottom_up) >= 15 and len(explanation) >= 6, res.stdout[-3000:]
