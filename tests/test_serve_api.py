"""The HTTP API in process (FastAPI's TestClient / httpx over ASGI): every endpoint, every error status,
parallel requests against the library's own results, and hostile inputs (the service never answers 5xx
to anything a client sends)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import threading

import numpy as np
import pytest

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
except ImportError as exc:  # in CI (and as root) `make venv` installs both: missing is a failure there
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0):
        raise
    pytest.skip(f"the web extra / httpx is not installed ({exc.name})", allow_module_level=True)

import itertools

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import salience
from salience import metrics, viz
from salience.errors import InputError
from salience.web import ServeConfig, create_app

API = "/api/v1"


def _png(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    u8 = rgb if rgb.dtype == np.uint8 else np.floor(np.asarray(rgb) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format=fmt)
    return buf.getvalue()


def _decode_png(data: bytes) -> np.ndarray:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _floats(payload: dict) -> np.ndarray:
    assert payload["dtype"] == "float32" and payload["byteorder"] == "little"
    return np.frombuffer(base64.b64decode(payload["data"]), dtype="<f4").reshape(payload["shape"])


def _error(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["status"] == status and err["message"]
    if field is not None:
        assert err["field"] == field, err
    return err


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeConfig()), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def image(photos) -> tuple[np.ndarray, bytes]:
    """A real photo (coffee, 128 x 85) as PNG bytes, and the array the server decodes from them."""
    data = _png(photos["coffee"])
    return salience.load_image(data), data


# ---- service, registry -----------------------------------------------------------------------------------

def test_health_methods_models(client):
    """/health, /methods and /models describe exactly the registry and the served model; a bad kind is a 422."""
    h = client.get(f"{API}/health").json()
    assert h["status"] == "ok" and h["version"] == salience.__version__ and h["model"] == "mobilenet_v2"
    rows = client.get(f"{API}/methods").json()["methods"]
    assert [r["name"] for r in rows] == [m.name for m in salience.methods()]
    for r, m in zip(rows, salience.methods()):
        assert {k: r[k] for k in m.as_dict()} == m.as_dict()
        assert r["needs_model"] == m.needs_model
    sr = next(r for r in rows if r["name"] == "spectral-residual")
    assert {p["name"]: p["default"] for p in sr["parameters"]} == {"width": 64, "sigma": 8.0, "avg_size": 3}
    only = client.get(f"{API}/methods", params={"kind": "explanation"}).json()["methods"]
    assert {r["kind"] for r in only} == {"explanation"}
    _error(client.get(f"{API}/methods", params={"kind": "nope"}), 422, "kind")
    models = client.get(f"{API}/models").json()["models"]
    assert models[0]["name"] == "mobilenet_v2" and models[0]["served"]


def test_openapi_document(client):
    """The OpenAPI document lists every endpoint under /api/v1 with its PNG and error responses, and /docs is served."""
    doc = client.get("/openapi.json").json()
    assert all(p.startswith(API + "/") for p in doc["paths"])
    for ep in ("health", "methods", "models", "map", "classify", "scanpath", "itti", "evaluate"):
        assert f"{API}/{ep}" in doc["paths"]
    ok = doc["paths"][f"{API}/map"]["post"]["responses"]["200"]["content"]
    assert "image/png" in ok
    for status in ("413", "415", "422", "503", "504"):
        assert status in doc["paths"][f"{API}/map"]["post"]["responses"]
    assert client.get("/docs").status_code == 200 and "docs.js" in client.get("/docs").text


def test_page_is_served_from_the_package(client):
    """The page and its static files come from the package with a self-only CSP and no link to another host."""
    r = client.get("/")
    assert r.status_code == 200 and "<script src=\"/static/app.js\"" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("app.js", "style.css", "docs.js"):
        assert client.get(f"/static/{name}").status_code == 200
    # nothing on the page comes from another host
    for name in ("index.html", "docs.html"):
        text = client.get("/" if name == "index.html" else "/docs").text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


# ---- maps -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["itti", "spectral-residual", "frequency-tuned"])
def test_map_matches_the_library(client, image, method):
    """/map returns the library's map (float data within 1e-6, and the same grey PNG)."""
    img, data = image
    want = salience.saliency_map(img, method)
    r = client.post(f"{API}/map", files={"image": ("x.png", data)}, data={"method": method, "output": "data"})
    assert r.status_code == 200, r.text
    got = _floats(r.json())
    assert got.shape == img.shape[:2]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    r = client.post(f"{API}/map", files={"image": ("x.png", data)}, data={"method": method})
    assert r.headers["content-type"] == "image/png" and r.headers["x-salience-method"] == method
    np.testing.assert_array_equal(_decode_png(r.content), viz.to_gray(want))


def test_map_overlay_and_params(client, image):
    """/map's overlay equals viz.overlay with the parameters given; the image type is sniffed, not trusted from the
    name."""
    img, data = image
    r = client.post(f"{API}/map", files={"image": ("x.png", data)},
                    data={"method": "sr", "output": "overlay", "alpha": "0.7", "params": '{"sigma": 3}'})
    assert r.status_code == 200
    got = _decode_png(r.content)
    want = viz.overlay(img, salience.saliency_map(img, "spectral-residual", sigma=3), alpha=0.7)
    assert got.shape == img.shape[:2] + (3,)
    np.testing.assert_array_equal(got, want)
    # the name in the file and the declared type are ignored; a JPEG is sniffed as such
    jpg = _png(img, "JPEG")
    r = client.post(f"{API}/map", files={"image": ("photo.txt", jpg, "text/plain")}, data={"method": "itti"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_scanpath_matches_the_library(client, image):
    """/scanpath returns salience.scanpath's points; bad n or radius is a 422 naming the field."""
    img, data = image
    r = client.post(f"{API}/scanpath", files={"image": ("x.png", data)}, data={"n": "4", "radius": "12"})
    assert r.status_code == 200, r.text
    body = r.json()
    want = salience.scanpath(salience.saliency_map(img, "itti"), n=4, radius=12)
    assert [(p["x"], p["y"], p["rank"]) for p in body["points"]] == [(p.x, p.y, p.rank) for p in want]
    assert (body["width"], body["height"]) == (img.shape[1], img.shape[0])
    _error(client.post(f"{API}/scanpath", files={"image": ("x.png", data)}, data={"n": "0"}), 422, "n")
    _error(client.post(f"{API}/scanpath", files={"image": ("x.png", data)}, data={"radius": "-1"}), 422, "radius")


def test_itti_intermediates(client, image):
    """/itti returns every feature and conspicuity map of itti_koch at its size, and honours its params."""
    img, data = image
    r = client.post(f"{API}/itti", files={"image": ("x.png", data)})
    assert r.status_code == 200, r.text
    body = r.json()
    res = salience.itti_koch(img, return_intermediates=True)
    assert [m["name"] for m in body["features"]] == list(res.feature_maps)
    assert [m["name"] for m in body["conspicuity"]] == list(res.conspicuity)
    for m in body["features"] + body["conspicuity"]:
        arr = _decode_png(base64.b64decode(m["png"]))
        src = res.feature_maps.get(m["name"], res.conspicuity.get(m["name"]))
        assert arr.shape == src.shape == (m["height"], m["width"])
    r = client.post(f"{API}/itti", files={"image": ("x.png", data)}, data={"params": '{"channels": ["color"]}'})
    assert [m["name"] for m in r.json()["conspicuity"]] == ["color"]
    _error(client.post(f"{API}/itti", files={"image": ("x.png", data)}, data={"params": '{"nope": 1}'}),
           422, "params")


def test_evaluate_matches_metrics_evaluate(client, image):
    """/evaluate gives metrics.evaluate's scores for PNG/JSON and NPY/CSV inputs."""
    img, _ = image
    smap = salience.saliency_map(img, "itti")
    u8 = viz.to_gray(smap)
    pts = [[10, 12], [60, 40], [100, 70], [64, 42]]
    # the server reads the PNG with salience.load_image (uint8 / 255 in float32)
    decoded = salience.load_image(_png(u8))[:, :, 0].astype(np.float64)
    want = metrics.evaluate(decoded, np.asarray(pts, float))
    r = client.post(f"{API}/evaluate", files={"map": ("m.png", _png(u8)), "fixations": ("f.json", json.dumps(pts))})
    assert r.status_code == 200, r.text
    got = r.json()["metrics"]
    assert list(got) == list(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12)
    # a float map as .npy and the points as CSV: the same numbers as the library on those inputs
    buf = io.BytesIO()
    np.save(buf, smap)
    csv = "x,y\n" + "\n".join(f"{x},{y}" for x, y in pts)
    r = client.post(f"{API}/evaluate", files={"map": ("m.npy", buf.getvalue()), "fixations": ("f.csv", csv)},
                    data={"metrics": "nss,cc", "convention": "tuebingen"})
    want = metrics.evaluate(smap.astype(np.float64), np.asarray(pts, float), metrics="nss,cc",
                                     convention="tuebingen")
    assert r.status_code == 200, r.text
    assert r.json()["metrics"] == pytest.approx(want, rel=1e-9)
    # a pickled object array is refused, never unpickled
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _error(client.post(f"{API}/evaluate", files={"map": ("m.npy", obj.getvalue()), "fixations": ("f.json", "[[1,1]]")}),
           422, "map")
    # a header declaring a huge array is refused before anything is allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    _error(client.post(f"{API}/evaluate", files={"map": ("m.npy", header.getvalue() + bytes(64)),
                                                 "fixations": ("f.json", "[[1,1]]")}), 422, "map")
    _error(client.post(f"{API}/evaluate", files={"map": ("m.png", _png(u8)), "fixations": ("f.json", "[[1,1]]")},
                       data={"metrics": "bogus"}), 422, "metrics")
    _error(client.post(f"{API}/evaluate", files={"map": ("m.png", _png(u8)), "fixations": ("f.json", "[[1,1]]")},
                       data={"convention": "x"}), 422, "convention")
    _error(client.post(f"{API}/evaluate", files={"map": ("m.png", _png(u8)), "fixations": ("f.json", "[1, 2]")}),
           422, "fixations")


# ---- every error status -------------------------------------------------------------------------------------

def test_field_errors_name_the_field(client, image):
    """Every bad form field or route is a 4xx JSON error that names the field (with a "did you mean" for methods)."""
    _, data = image
    def post(**d):
        return client.post(f"{API}/map", files={"image": ("x.png", data)}, data=d)

    assert "did you mean" in _error(post(method="itt"), 422, "method")["message"]
    _error(post(params="{not json"), 422, "params")
    _error(post(params="[1, 2]"), 422, "params")
    assert "width" in _error(post(method="spectral-residual", params='{"widht": 3}'), 422, "params")["message"]
    _error(post(method="spectral-residual", params='{"width": -5}'), 422, "params")
    _error(post(method="spectral-residual", params='{"width": NaN}'), 422, "params")
    _error(post(method="spectral-residual", params='{"width": {"a": 1}}'), 422, "params")
    _error(post(method="itti", params='{"model": "x"}'), 422, "params")
    _error(post(method="itti", target="3"), 422, "target")
    _error(post(output="jpeg"), 422, "output")
    _error(post(alpha="2"), 422, "alpha")
    _error(post(alpha="abc"), 422, "alpha")
    _error(client.post(f"{API}/map", data={"method": "itti"}), 422, "image")
    _error(client.get(f"{API}/nope"), 404)
    _error(client.put(f"{API}/map"), 405)


def test_unsupported_media_is_sniffed(client, image):
    """Text, SVG, GIF and garbage uploads are 415 whatever their declared type; empty and truncated images are 422."""
    img, _ = image
    gif = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(gif, format="GIF")
    for payload in (b"hello world", b"<svg xmlns='http://www.w3.org/2000/svg'/>", gif.getvalue(), b"\x00" * 64):
        _error(client.post(f"{API}/map", files={"image": ("x.png", payload, "image/png")}), 415, "image")
    _error(client.post(f"{API}/map", files={"image": ("x.png", b"")}), 422, "image")
    truncated = _png(img)[:200]
    assert "image" in _error(client.post(f"{API}/map", files={"image": ("x.png", truncated)}), 422, "image")["field"]


def test_body_size_limit_counted_while_reading():
    """The body limit holds with Content-Length and chunked uploads (reading stops at the limit); a bad length is a 400.
    """
    app = create_app(ServeConfig(max_body_bytes=10_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        small = _png(np.zeros((8, 8, 3), np.uint8))
        assert c.post(f"{API}/map", files={"image": ("x.png", small)}).status_code == 200
        big = b"\x89PNG\r\n\x1a\n" + bytes(20_000)
        _error(c.post(f"{API}/map", files={"image": ("x.png", big)}), 413)  # Content-Length says so
        sent = []

        def chunks():  # no Content-Length: chunked; the server stops reading once the limit is passed
            for _ in range(100):
                sent.append(1)
                yield bytes(1000)

        r = c.post(f"{API}/map", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        _error(r, 413)
        r = c.post(f"{API}/map", content=b"x" * 10, headers={"content-length": "nan"})
        assert r.status_code == 400


def test_pixel_limit():
    """An image over max_pixels is a 413 that names the limit; one under it is served."""
    with TestClient(create_app(ServeConfig(max_pixels=4000)), raise_server_exceptions=False) as c:
        ok = _png(np.zeros((40, 50, 3), np.uint8))
        assert c.post(f"{API}/map", files={"image": ("x.png", ok)}).status_code == 200
        big = _png(np.zeros((80, 60, 3), np.uint8))
        err = _error(c.post(f"{API}/map", files={"image": ("x.png", big)}), 413, "image")
        assert "4000" in err["message"]


def test_pixel_limit_refuses_a_decompression_bomb(client):
    """A tiny PNG declaring 1.6e9 pixels is refused with 413 from its header, before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))
    _error(client.post(f"{API}/map", files={"image": ("bomb.png", bomb)}), 413, "image")


def test_timeout_is_504(photos):
    """A computation past timeout_s is a 504, and the server keeps answering."""
    big = _png(np.tile(photos["astronaut"], (3, 3, 1)))
    with TestClient(create_app(ServeConfig(timeout_s=0.005)), raise_server_exceptions=False) as c:
        _error(c.post(f"{API}/map", files={"image": ("x.png", big)}, data={"method": "itti"}), 504)
        assert c.get(f"{API}/health").status_code == 200


def test_full_queue_is_503_with_retry_after(image):
    """With every worker busy and no queue room the answer is 503 with Retry-After; the server recovers after."""
    _, data = image
    app = create_app(ServeConfig(workers=1, queue=0))
    release, started = threading.Event(), threading.Event()

    def block():
        started.set()
        release.wait(30)

    with TestClient(app, raise_server_exceptions=False) as c:
        holder = threading.Thread(target=lambda: asyncio.run(app.state.pool.run(block)))
        holder.start()
        try:
            assert started.wait(10)
            r = c.post(f"{API}/map", files={"image": ("x.png", data)})
            _error(r, 503)
            assert int(r.headers["retry-after"]) >= 1
        finally:
            release.set()
            holder.join(10)
        assert c.post(f"{API}/map", files={"image": ("x.png", data)}).status_code == 200


def test_token_and_host():
    """A non-loopback host needs a token: requests without the right Bearer token are 401; the page files stay public.
    """
    token = "s3cret-token-123"
    app = create_app(ServeConfig(host="0.0.0.0", token=token))
    with TestClient(app, raise_server_exceptions=False) as c:
        err = _error(c.get(f"{API}/health"), 401)
        assert "Bearer" in err["message"]
        assert c.get(f"{API}/health").headers["www-authenticate"] == "Bearer"
        _error(c.get(f"{API}/health", headers={"Authorization": "Bearer wrong"}), 401)
        _error(c.get("/openapi.json"), 401)
        assert c.get(f"{API}/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/").status_code == 200  # the page's files are public; its API calls carry the token
    with pytest.raises(InputError, match="token"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(InputError, match="8 characters"):
        ServeConfig(token="short")
    assert ServeConfig(host="::1").token is None and ServeConfig(host="localhost").host == "localhost"


def test_cors_off_by_default(client):
    """CORS headers are sent only for the origins configured, none by default."""
    r = client.get(f"{API}/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    app = create_app(ServeConfig(cors_origins=("http://lab.example",)))
    with TestClient(app) as c:
        r = c.get(f"{API}/health", headers={"Origin": "http://lab.example"})
        assert r.headers["access-control-allow-origin"] == "http://lab.example"
        r = c.get(f"{API}/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_one_log_line_per_request_without_bytes(client, image, caplog):
    """Each request logs exactly one line (method, path, status, time), with no request bytes."""
    _, data = image
    with caplog.at_level(logging.INFO, logger="salience.serve"):
        client.post(f"{API}/map", files={"image": ("x.png", data)}, data={"method": "nope"})
        client.get(f"{API}/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "salience.serve"]
    assert len(lines) == 2
    assert " POST /api/v1/map 422 " in lines[0] and lines[0].endswith(" ms")
    assert " GET /api/v1/health 200 " in lines[1]


def test_access_line_is_written_when_the_response_is_out_not_after_teardown(caplog):
    """The line comes with the response's last byte, once, even while the app is still tearing down; an
    app that fails before it answers still gets its one line, with status 500."""
    import asyncio

    from salience.web.app import AccessLog

    async def answers_then_lingers(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})
        seen_during_teardown.extend(r.getMessage() for r in caplog.records if r.name == "salience.serve")

    async def fails(scope, receive, send):
        raise RuntimeError("boom")

    async def sent(_message):
        return None

    seen_during_teardown: list[str] = []
    scope = {"type": "http", "method": "POST", "path": "/api/v1/map", "client": ("127.0.0.1", 1)}
    with caplog.at_level(logging.INFO, logger="salience.serve"):
        asyncio.run(AccessLog(answers_then_lingers)(scope, None, sent))
        with pytest.raises(RuntimeError):
            asyncio.run(AccessLog(fails)(scope, None, sent))
    lines = [r.getMessage() for r in caplog.records if r.name == "salience.serve"]
    assert len(seen_during_teardown) == 1 and " POST /api/v1/map 201 " in seen_during_teardown[0]
    assert len(lines) == 2 and " POST /api/v1/map 500 " in lines[1]


# ---- parallel requests ------------------------------------------------------------------------------------

def test_20_parallel_requests_each_get_their_own_map(photos):
    """Twenty concurrent requests each get the map of their own image, as the library computes it."""
    import httpx

    rng = np.random.default_rng(7)
    names = sorted(photos)
    jobs = []
    for i in range(20):
        base = photos[names[i % len(names)]]
        img = np.ascontiguousarray(np.roll(base, int(rng.integers(1, 60)), axis=1)[: 64 + i, : 80 + 2 * i])
        data = _png(img)
        jobs.append((data, ("itti", "spectral-residual")[i % 2]))
    app = create_app(ServeConfig(workers=2))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*[
                ac.post(f"{API}/map", files={"image": ("x.png", d)}, data={"method": m, "output": "data"})
                for d, m in jobs])

    responses = asyncio.run(main())
    for (data, method), r in zip(jobs, responses):
        assert r.status_code == 200, r.text
        want = salience.saliency_map(salience.load_image(data), method)
        np.testing.assert_allclose(_floats(r.json()), want, rtol=0, atol=1e-6)
    app.state.pool.shutdown()


def test_every_model_call_runs_on_the_model_thread(photos):
    """Explanations and the top 5, sent at once to 3 workers, all run the model on one thread of its own:
    torch keeps a team of OpenMP threads per calling thread, and two teams on two cores made every
    explanation about twice as slow (docs/performance.md)."""
    import httpx

    app = create_app(ServeConfig(workers=3))
    lm = app.state.model.get()
    seen: list[str] = []
    hook = lm.model.register_forward_pre_hook(lambda _m, _a: seen.append(threading.current_thread().name))
    data = [_png(photos[n]) for n in sorted(photos)][:3]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            maps = [ac.post(f"{API}/map", files={"image": ("x.png", d)}, data={"method": m})
                    for d in data for m in ("gradcam", "gradient")]
            tops = [ac.post(f"{API}/classify", files={"image": ("x.png", d)}) for d in data]
            return await asyncio.gather(*maps, *tops)

    try:
        responses = asyncio.run(main())
    finally:
        hook.remove()
        app.state.pool.shutdown()
        app.state.model.shutdown()
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert len(seen) >= 9 and len(set(seen)) == 1 and seen[0].startswith("salience-model"), sorted(set(seen))


def test_the_servers_allocator_keeps_freed_memory_mapped():
    """After keep_freed_memory() (salience serve calls it), request-sized arrays allocated and freed on
    worker threads no longer fault their pages in each time (the default glibc settings: ~2,500 minor
    faults per round here, each a first touch of a fresh page)."""
    import platform
    import resource
    from concurrent.futures import ThreadPoolExecutor

    from salience.web.allocator import keep_freed_memory

    took = keep_freed_memory()
    assert took == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    if not took:
        return  # elsewhere it does nothing, by design

    def job(i: int) -> float:
        a = np.empty((480, 640, 3), np.float32)  # a decoded photo
        a[...] = i
        b = np.empty((480 + i % 7, 640, 3), np.float32)  # and an array of another size each time
        b[...] = 1.0
        return float((a * b[:480])[0, 0, 0])

    with ThreadPoolExecutor(2) as pool:
        for i in range(5):
            pool.submit(job, i).result()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for i in range(40):
            assert pool.submit(job, i).result() == i
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 40 * 50, faults


# ---- hostile inputs: never a 5xx ------------------------------------------------------------------------------

_text = st.one_of(st.text(max_size=40), st.sampled_from(["", "{}", "[]", "null", "1e999", '{"a": [[[]]]}',
                                                         "top1", "-1", "99999999999999999999", "\x00", "NaN"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM",
                                                             b"II*\x00", b"\x93NUMPY"]),
       method=st.sampled_from(["itti", "spectral-residual", "centre-bias", "xyz", ""]), params=_text,
       output=_text, alpha=_text, endpoint=st.sampled_from(["map", "scanpath", "itti", "evaluate"]))
def test_hostile_inputs_never_5xx(client, body, prefix, method, params, output, alpha, endpoint):
    """Random bytes and form values on every endpoint give 4xx JSON errors with a message, never a 5xx."""
    data = prefix + body
    if endpoint == "evaluate":
        r = client.post(f"{API}/evaluate", files={"map": ("m", data), "fixations": ("f", body)},
                        data={"metrics": params, "convention": output})
    else:
        r = client.post(f"{API}/{endpoint}", files={"image": ("x.png", data)},
                        data={"method": method, "params": params, "output": output, "alpha": alpha, "n": alpha})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["error"]["message"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(params=st.dictionaries(st.sampled_from(["width", "sigma", "avg_size", "colorspace", "blur", "x"]),
                              st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
                                        st.text(max_size=5),
                                        st.booleans(), st.none(), st.lists(st.integers(-3, 3), max_size=3)),
                              max_size=3),
       method=st.sampled_from(["spectral-residual", "image-signature", "frequency-tuned", "centre-bias"]))
def test_hostile_parameters_never_5xx(client, image, params, method):
    """Random method parameters give 200, 422 or 504, never a 5xx."""
    _, data = image
    r = client.post(f"{API}/map", files={"image": ("x.png", data)},
                    data={"method": method, "params": json.dumps(params, allow_nan=False)})
    assert r.status_code in (200, 422, 504), (r.status_code, r.text)
    if r.status_code == 200:
        assert r.headers["content-type"] == "image/png"


# ---- the model: explanations and the top-5 (loads MobileNetV2 once) -------------------------------------------

@pytest.mark.slow
def test_classify_and_explain_match_the_library(client, photos):
    """/classify gives the model's top 5 and /map explanations equal the library's for each target form."""
    img = photos["chelsea"]
    data = _png(img)
    img = salience.load_image(data)
    lm = client.app.state.model.get()
    r = client.post(f"{API}/classify", files={"image": ("c.png", data)})
    assert r.status_code == 200, r.text
    classes = r.json()["classes"]
    assert len(classes) == 5 and all(a["probability"] >= b["probability"] for a, b in itertools.pairwise(classes))
    want = lm.top_k(lm.preprocess(img, crop=False), 5)[0]
    assert [c["index"] for c in classes] == [i for i, _, _ in want]
    assert "cat" in classes[0]["name"]
    second = classes[1]["index"]
    r1 = client.post(f"{API}/map", files={"image": ("c.png", data)}, data={"method": "gradcam", "output": "data"})
    r2 = client.post(f"{API}/map", files={"image": ("c.png", data)},
                     data={"method": "gradcam", "target": str(second), "output": "data"})
    r3 = client.post(f"{API}/map", files={"image": ("c.png", data)}, data={"method": "gradcam", "target": "top2"})
    assert r1.json()["target"]["index"] == classes[0]["index"]
    assert r2.json()["target"] == {"index": second, "name": classes[1]["name"]}
    assert r3.headers["x-salience-target"] == str(second)
    np.testing.assert_allclose(_floats(r1.json()), salience.saliency_map(img, "gradcam", model=lm), rtol=0, atol=1e-5)
    np.testing.assert_allclose(_floats(r2.json()), salience.saliency_map(img, "gradcam", model=lm, target=second),
                               rtol=0, atol=1e-5)
    assert np.abs(_floats(r1.json()) - _floats(r2.json())).mean() > 1e-3
    _error(client.post(f"{API}/map", files={"image": ("c.png", data)}, data={"method": "gradcam", "target": "5000"}),
           422, "target")
    _error(client.post(f"{API}/map", files={"image": ("c.png", data)}, data={"method": "gradcam", "target": "zebraa"}),
           422, "target")
    _error(client.post(f"{API}/map", files={"image": ("c.png", data)},
                       data={"method": "gradcam", "params": '{"layer": "features.99"}'}), 422)
    _error(client.post(f"{API}/classify", files={"image": ("c.png", data)}, data={"k": "0"}), 422, "k")


# ---- the command ------------------------------------------------------------------------------------------

def test_cli_serve_refuses_an_open_host_without_token(capsys, monkeypatch):
    """`salience serve` refuses an open host without a token, a bad port and zero workers (exit 2)."""
    from salience.cli import main

    monkeypatch.delenv("SALIENCE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 2
    assert "token" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--workers", "0"]) == 2


def test_cli_serve_starts_uvicorn_with_the_config(monkeypatch):
    """`salience serve` starts uvicorn with its host, port and workers and the token from SALIENCE_TOKEN."""
    import uvicorn

    from salience.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("SALIENCE_TOKEN", "from-the-environment")
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "3", "--no-preload"]) == 0
    cfg = seen["app"].state.config
    assert (seen["host"], seen["port"], seen["access_log"]) == ("0.0.0.0", 8123, False)
    assert (cfg.token, cfg.workers, cfg.preload) == ("from-the-environment", 3, False)
