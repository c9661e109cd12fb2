"""Fuzzing from the OpenAPI document (what Schemathesis does, written with Hypothesis and jsonschema):
for every operation in /openapi.json, requests built from its declared fields (a PNG/JPEG strategy for the
file uploads, values inside and outside the declared ranges for the others) never get a 5xx, and every
JSON answer validates against the schema the document declares for its status.

A tiny random network stands in for MobileNetV2 (``create_app(model=...)``) so explanations and the top-5
run in milliseconds; the real model's answers are checked in test_serve_api.py."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

try:
    import fastapi  # noqa: F401
    import jsonschema
    import torch
except ImportError as exc:  # `make venv` installs them: missing is a failure in CI / as root
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0):
        raise
    pytest.skip(f"needs the web and torch extras and jsonschema ({exc.name})", allow_module_level=True)

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import salience
from salience.attribution import LoadedModel
from salience.web import ServeConfig, create_app

CHEAP = ["itti", "spectral-residual", "image-signature", "frequency-tuned", "centre-bias", "gradient",
         "gradcam", "guided-backprop", "input-x-gradient", "hirescam", "layercam"]


def _tiny_model() -> LoadedModel:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 7))
    net.eval()

    def preprocess(image, crop=True):
        return torch.tensor(np.asarray(image, np.float32)).permute(2, 0, 1)[None].contiguous()

    return LoadedModel(model=net, preprocess=preprocess, class_names=[f"class {i}" for i in range(7)],
                       target_layer="2", name="tiny")


@pytest.fixture(scope="module")
def app_doc():
    app = create_app(ServeConfig(timeout_s=30), model=_tiny_model())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, c.get("/openapi.json").json()


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _validate(doc: dict, schema: dict, value) -> None:
    root = dict(schema)
    root["components"] = doc["components"]
    jsonschema.validate(value, root, cls=jsonschema.Draft202012Validator)


def _image_bytes():
    @st.composite
    def build(draw):
        h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        seed = draw(st.integers(0, 2**31 - 1))
        mode = draw(st.sampled_from(["RGB", "L", "RGBA", "flat"]))
        rng = np.random.default_rng(seed)
        if mode == "flat":
            arr = np.full((h, w, 3), draw(st.integers(0, 255)), np.uint8)
        else:
            arr = rng.integers(0, 256, (h, w, {"RGB": 3, "L": 1, "RGBA": 4}[mode]), dtype=np.uint8)
            arr = arr[:, :, 0] if mode == "L" else arr
        fmt = draw(st.sampled_from(["PNG", "JPEG"])) if mode != "RGBA" else "PNG"
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt)
        return buf.getvalue()

    return st.one_of(build(), build(), build(), st.binary(max_size=64))


def _value(doc: dict, name: str, schema: dict):
    schema = _resolve(doc, schema)
    if schema.get("format") == "binary" or "contentMediaType" in schema:
        return _image_bytes()
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    base = _resolve(doc, options[0]) if options else {}
    special = {"method": st.sampled_from(CHEAP + ["nope", ""]),
               "params": st.sampled_from(["{}", '{"sigma": 2}', '{"width": 0}', "[]", "{", '{"layer": "0"}']),
               "target": st.sampled_from(["top1", "top3", "0", "6", "7", "-1", "class 2", "zebra"]),
               "output": st.sampled_from(["gray", "overlay", "data", "jpeg"]),
               "metrics": st.sampled_from(["all", "nss,cc", "auc_judd", "bogus", ""]),
               "convention": st.sampled_from(["mit", "tuebingen", "x"])}
    if name == "fixations":
        return st.sampled_from([b"[[1, 1], [3, 4]]", b"x,y\n2,2\n", b"[]", b"[[1e999, 0]]", b"\xff\xfe", b"{}"])
    if name in special:
        return special[name].map(str)
    if "enum" in base:
        return st.sampled_from(list(base["enum"]) + ["not-in-enum"])
    kind = base.get("type")
    if kind == "integer":
        return st.integers(-5, 200).map(str)
    if kind == "number":
        return st.one_of(st.floats(-2, 3), st.sampled_from(["nan", "inf", "x"])).map(str)
    return st.text(max_size=12)


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            yield path, verb, op


def test_every_operation_is_fuzzed(app_doc):
    """All 8 API operations are in the fuzzed set, every declared schema resolves and every error uses ErrorOut."""
    _, doc = app_doc
    ops = {(p, v) for p, v, _ in _operations(doc)}
    assert len(ops) == 8 and all(p.startswith("/api/v1/") for p, _ in ops)
    for _, _, op in _operations(doc):  # every declared schema resolves, and every error is the one shape
        for status, resp in op["responses"].items():
            for media in resp.get("content", {}).values():
                assert _resolve(doc, media["schema"]) is not None
            if status != "200":
                assert resp["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


@pytest.fixture(scope="module")
def strategies(app_doc):
    _, doc = app_doc
    out = []
    for path, verb, op in _operations(doc):
        query = {p["name"]: _value(doc, p["name"], p["schema"]) for p in op.get("parameters", [])}
        body = op.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        form = {}
        if body:
            props = _resolve(doc, body["schema"]).get("properties", {})
            form = {k: _value(doc, k, v) for k, v in props.items()}
        out.append((path, verb, op, st.fixed_dictionaries({}, optional=query), st.fixed_dictionaries(
            {k: s for k, s in form.items() if k in _resolve(doc, body["schema"]).get("required", [])} if body else {},
            optional={k: s for k, s in form.items()
                      if not body or k not in _resolve(doc, body["schema"]).get("required", [])})))
    return out


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_no_5xx_and_every_answer_fits_its_schema(app_doc, strategies, data):
    """Schema-generated requests never get a 5xx, and every answer has a declared status and fits its schema."""
    client, doc = app_doc
    path, verb, op, query_s, form_s = data.draw(st.sampled_from(strategies), label="operation")
    query = data.draw(query_s, label="query")
    form = data.draw(form_s, label="form")
    if verb == "get":
        r = client.get(path, params=query)
    else:
        files = {k: (k, v) for k, v in form.items() if isinstance(v, bytes)}
        fields = {k: v for k, v in form.items() if not isinstance(v, bytes)}
        r = client.post(path, params=query, files=files or None, data=fields)
    event(f"{verb.upper()} {path} -> {r.status_code}")
    assert r.status_code < 500, (path, r.status_code, r.text[:500])
    declared = op["responses"].get(str(r.status_code)) or op["responses"].get("default")
    assert declared is not None or r.status_code in (400, 404, 405, 413, 415, 422), (path, r.status_code)
    ctype = r.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = r.json()
        _validate(doc, {"$ref": "#/components/schemas/ErrorOut"} if r.status_code >= 400 else {}, body)
        if declared is not None:  # the schema the document declares for this status
            _validate(doc, declared["content"]["application/json"]["schema"], body)
    else:
        assert r.status_code == 200 and ctype == "image/png" and "image/png" in declared["content"]
        with Image.open(io.BytesIO(r.content)) as im:
            im.verify()


def test_tiny_model_is_served(app_doc):
    """The tiny test model is classified and explained by class index; out-of-range or malformed targets are 422 on
    target."""
    client, _ = app_doc
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    r = client.post("/api/v1/classify", files={"image": ("x.png", buf.getvalue())}, data={"k": "3"})
    assert r.status_code == 200 and [c["name"].startswith("class ") for c in r.json()["classes"]] == [True] * 3
    r = client.post("/api/v1/map", files={"image": ("x.png", buf.getvalue())}, data={"method": "gradcam", "target": "2"})
    assert r.status_code == 200 and r.headers["x-salience-target-name"] == "class 2"
    for bad in ("-1", "7", "top0", "top8", "class 9", "+-3"):
        r2 = client.post("/api/v1/map", files={"image": ("x.png", buf.getvalue())}, data={"method": "gradcam", "target": bad})
        assert r2.status_code == 422 and r2.json()["error"]["field"] == "target", (bad, r2.text)
    r2 = client.post("/api/v1/map", files={"image": ("x.png", buf.getvalue())}, data={"method": "gradcam", "target": "top-7"})
    assert r2.status_code == 200
    assert salience.load_image(r.content).shape == (24, 32, 3)
