"""The ASGI application: the HTTP API under ``/api/v1`` and the page at ``/``.

Layers, outermost first: one log line per request and the security headers; the bearer token (when
configured); the body-size limit, counted while the body is read; CORS (only when origins are given);
then FastAPI.  Each endpoint decodes its uploads and computes in a bounded thread pool
(:class:`_Pool`): a full queue answers 503 with ``Retry-After``, a request over the time limit 504.
The work itself is in :mod:`salience.web.compute`; every error leaves as JSON
``{"error": {"status", "code", "message", "field"}}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ImageTooLargeError, MissingDependencyError, SalienceError
from . import compute as C
from .config import ServeConfig

__all__ = ["create_app"]

log = logging.getLogger("salience.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
API = "/api/v1"

#: the page and the API load nothing from another host; the browser enforces it
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


# ---- errors ------------------------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def _error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "field": field}}


def _error_response(status: int, code: str, message: str, field: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_error_body(status, code, message, field), status_code=status, headers=headers)


async def _send_error(send: Any, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    await _error_response(status, code, message, headers=headers)({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, Any]:  # pragma: no cover - a JSONResponse never reads
    return {"type": "http.disconnect"}


# ---- ASGI middleware ---------------------------------------------------------------------------------------

class AccessLog:
    """One log line per request (client, method, path, status, ms; never bodies) + security headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        logged = [False]

        def write_line() -> None:
            if not logged[0]:
                logged[0] = True
                client = scope.get("client") or ("-", 0)
                log.info("%s %s %s %d %.1f ms", client[0], scope.get("method", "-"), scope.get("path", "-"),
                         status[0], (time.perf_counter() - t0) * 1e3)

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in ((b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                             (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")):
                    if k not in names:
                        headers.append((k, v))
                message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # the line is written as soon as the last byte is handed to the server, not once the app's
                # teardown after the response (closing uploads, exit stacks) has returned: in some runs of
                # the browser test every answered POST had no line when the line came after the app returned
                write_line()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            write_line()  # no complete response (an exception, a client gone): still one line (500 if none began)


class BearerToken:
    """Every API request (and the OpenAPI document, the docs page) must carry ``Authorization: Bearer``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    @staticmethod
    def protected(path: str) -> bool:
        return path.startswith("/api/") or path in ("/openapi.json", "/docs")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.protected(scope.get("path", "")) and scope.get("method") != "OPTIONS":
            auth = dict(scope.get("headers", [])).get(b"authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                await _send_error(send, 401, "unauthorized",
                                  "this server needs a token: send the header 'Authorization: Bearer <token>'",
                                  headers={"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a body larger than ``limit`` bytes with 413, from Content-Length or while counting the bytes.

    The body is read here (never more than ``limit`` bytes plus one chunk) and replayed to the app, so a
    client that lies about, or omits, Content-Length is stopped as soon as it has sent too much.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = (f"the request body is larger than this server's limit of {self.limit} bytes "
                   f"({self.limit / 2**20:.1f} MiB); send a smaller image")
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await _send_error(send, 400, "bad_request", "the Content-Length header is not a number")
                return
            if n > self.limit:
                await _send_error(send, 413, "body_too_large", too_big)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                await _send_error(send, 413, "body_too_large", too_big)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---- the bounded pool ---------------------------------------------------------------------------------------

class _Pool:
    """``workers`` threads and at most ``queue`` waiting jobs; beyond that, 503 with ``Retry-After``.

    A job that ran past the time limit keeps its slot until its thread finishes (a thread cannot be
    killed), so the number of running and waiting jobs never exceeds ``workers + queue``.
    """

    def __init__(self, workers: int, queue: int, timeout_s: float) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salience-serve")
        self._lock = threading.Lock()
        self.in_flight = 0
        self._mean_s = 1.0

    def _release(self, t0: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t0)

    async def run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            if self.in_flight >= self.capacity:
                wait = max(1, min(120, math.ceil(self._mean_s * self.in_flight / self.workers)))
                raise ApiError(503, "busy", f"the server is busy ({self.in_flight} requests running or waiting); "
                               f"retry in about {wait} s", headers={"Retry-After": str(wait)})
            self.in_flight += 1
        t0 = time.perf_counter()
        try:
            fut = self.executor.submit(fn, *args)
        except BaseException:
            self._release(t0)
            raise
        fut.add_done_callback(lambda _f: self._release(t0))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the computation took longer than this server's limit of "
                           f"{self.timeout_s:g} s; use a smaller image or cheaper parameters") from None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _guard(fn: Any) -> Any:
    """Run ``fn`` in a worker; a failure that is not the client's becomes a logged 500, never a crash."""

    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except (SalienceError, ApiError):
            raise
        except Exception as exc:
            log.exception("internal error in %s", getattr(fn, "__name__", fn))
            raise ApiError(500, "internal_error", f"internal error ({type(exc).__name__}); the server log has "
                           "the details. Please report it with the image that caused it") from None

    return wrapped


# ---- response schemas ----------------------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    model_loaded: bool
    workers: int
    in_flight: int
    capacity: int


class Parameter(BaseModel):
    name: str
    type: str
    default: Any = None


class MethodOut(BaseModel):
    name: str
    kind: str
    description: str
    paper: str
    signed: bool
    #: ``[lo, hi]`` of the maps, or null for signed maps (the registry's ``value_range``)
    value_range: list[float] | None
    takes_layer: bool
    pixel_level: bool
    needs: str | None
    aliases: list[str]
    #: the kind of model the method needs (``"transformer"``: self-attention layers, global or windowed), or
    #: null for any model
    model_kind: str | None = None
    needs_model: bool
    parameters: list[Parameter]
    accepts_other_parameters: bool


class MethodsOut(BaseModel):
    methods: list[MethodOut]


class ModelOut(BaseModel):
    name: str
    served: bool
    loaded: bool
    classes: int | None = None
    target_layer: str | None = None


class ModelsOut(BaseModel):
    models: list[ModelOut]


class TargetOut(BaseModel):
    index: int
    name: str


class MapDataOut(BaseModel):
    method: str
    shape: list[int] = Field(description="[height, width]")
    dtype: Literal["float32"]
    byteorder: Literal["little"]
    data: str = Field(description="base64 of the map's float32 values, row-major")
    target: TargetOut | None = None


class ClassOut(BaseModel):
    index: int
    name: str
    probability: float


class ClassesOut(BaseModel):
    model: str
    classes: list[ClassOut]


class PointOut(BaseModel):
    x: int
    y: int
    value: float
    rank: int


class ScanpathOut(BaseModel):
    method: str
    width: int
    height: int
    radius: float
    points: list[PointOut]
    target: TargetOut | None = None


class IttiMapOut(BaseModel):
    name: str
    width: int
    height: int
    png: str = Field(description="base64 of a grayscale PNG (min-max stretched)")


class IttiOut(BaseModel):
    width: int
    height: int
    saliency: IttiMapOut
    conspicuity: list[IttiMapOut]
    features: list[IttiMapOut]


class EvaluateOut(BaseModel):
    convention: str
    metrics: dict[str, float | None]
    undefined: list[str]


_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut, "description": d} for s, d in (
    (401, "missing or wrong bearer token (only when the server has one)"),
    (413, "body or image too large"), (415, "upload is not an image format the service reads"),
    (422, "a field is wrong; error.field names it"), (503, "queue full; see Retry-After"),
    (504, "computation over the time limit"))}
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"model": MapDataOut, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
          "description": "a PNG (output=gray or overlay) or, as JSON, the float32 values (output=data)"}}
_GET_ERRORS: dict[int | str, dict[str, Any]] = {s: _ERRORS[s] for s in (401, 422)}


# ---- the app --------------------------------------------------------------------------------------------------

def create_app(config: ServeConfig | None = None, *, model: Any = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    config: :class:`ServeConfig` (default: loopback, 2 workers, the limits documented there).
    model: an already loaded model (a :class:`salience.attribution.LoadedModel`) to serve instead of
        loading ``config.model``.

    Returns
    -------
    fastapi.FastAPI: an ASGI app; run it with ``uvicorn.run(app)`` or ``salience serve``.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> from salience.web import create_app
    >>> with TestClient(create_app()) as client:
    ...     client.get("/api/v1/health").json()["status"]
    'ok'
    """
    cfg = config or ServeConfig()
    holder = C.ModelHolder(cfg.model, model)
    pool = _Pool(cfg.workers, cfg.queue, cfg.timeout_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if cfg.preload:
            await asyncio.get_running_loop().run_in_executor(pool.executor, holder.get)
        yield
        pool.shutdown()
        holder.shutdown()

    app = FastAPI(
        title="salience", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url="/openapi.json",
        description="Saliency maps over HTTP: bottom-up methods and explanations of an image classifier. "
                    "Every method of the registry is served (GET /api/v1/methods). Errors are JSON "
                    "{\"error\": {status, code, message, field}}.",
    )
    app.state.config = cfg
    app.state.pool = pool
    app.state.model = holder

    _install_error_handlers(app, cfg)

    _add_info_routes(app, cfg, holder, pool)
    _add_map_routes(app, cfg, holder, pool)
    _add_analysis_routes(app, cfg, holder, pool)

    _add_page_routes(app)

    # ---- middleware (the last added is the outermost)
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["X-Salience-Method", "X-Salience-Target", "X-Salience-Target-Name"])
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    if cfg.token:
        app.add_middleware(BearerToken, token=cfg.token)
    app.add_middleware(AccessLog)
    return app

# ---- the app's parts: error handlers, then the routes in the order they appear in /openapi.json

async def _read(upload: UploadFile) -> bytes:
    return await upload.read()

def _check_output(output: str) -> str:
    if output not in ("gray", "overlay", "data"):
        raise C.FieldError("output", f"output must be 'gray', 'overlay' or 'data', got {output!r}")
    return output

def _check_alpha(alpha: float) -> float:
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise C.FieldError("alpha", f"alpha (the overlay's opacity) must lie in [0, 1], got {alpha!r}")
    return alpha


def _install_error_handlers(app: FastAPI, cfg: ServeConfig) -> None:
    """Every error a request can meet, as the JSON body ``{"error": {status, code, message, field}}``."""
    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(C.FieldError)
    async def _field_error(_r: Request, exc: C.FieldError) -> JSONResponse:
        status, code = (415, "unsupported_media_type") if isinstance(exc, C.UnsupportedMediaError) else \
            (422, "invalid_field")
        return _error_response(status, code, str(exc), exc.field)

    @app.exception_handler(SalienceError)
    async def _salience_error(_r: Request, exc: SalienceError) -> JSONResponse:
        if isinstance(exc, ImageTooLargeError):
            return _error_response(413, "image_too_large", f"{exc} (this server's limit: {cfg.max_pixels} pixels)",
                                   "image")
        if isinstance(exc, MissingDependencyError):
            return _error_response(501, "not_available", str(exc))
        return _error_response(422, "invalid_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        msg = first.get("msg", "invalid request")
        return _error_response(422, "invalid_field", f"{field or 'request'}: {msg}", field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 400 and "parsing the body" in text:
            text = ("the body could not be parsed; send multipart/form-data with the fields this endpoint "
                    "lists in /openapi.json")
        return _error_response(exc.status_code, {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"), text, headers=getattr(exc, "headers", None))


def _add_info_routes(app: FastAPI, cfg: ServeConfig, holder: C.ModelHolder, pool: _Pool) -> None:
    """``GET`` health, methods and models."""
    @app.get(f"{API}/health", response_model=HealthOut, responses=_GET_ERRORS, tags=["service"],
             summary="Is the service up")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": holder.name, "model_loaded": holder.loaded,
                "workers": cfg.workers, "in_flight": pool.in_flight, "capacity": pool.capacity}

    @app.get(f"{API}/methods", response_model=MethodsOut, responses=_GET_ERRORS, tags=["registry"],
             summary="Every registered method, with its parameters")
    async def list_methods(kind: Literal["bottom-up", "explanation"] | None = None) -> dict[str, Any]:
        rows = await pool.run(_guard(C.method_rows), kind)
        return {"methods": rows}

    @app.get(f"{API}/models", response_model=ModelsOut, responses=_GET_ERRORS, tags=["registry"],
             summary="The model this server explains")
    async def list_models() -> dict[str, Any]:
        row: dict[str, Any] = {"name": holder.name, "served": True, "loaded": holder.loaded}
        if holder.loaded:
            lm = holder.get()
            row.update(classes=len(lm.class_names), target_layer=lm.target_layer)
        return {"models": [row]}


def _add_map_routes(app: FastAPI, cfg: ServeConfig, holder: C.ModelHolder, pool: _Pool) -> None:
    """``POST`` map (any registered method) and classify."""
    @app.post(f"{API}/map", tags=["maps"], responses={**_PNG, **_ERRORS}, response_class=Response,
              summary="A saliency map of an uploaded image, by any registered method")
    async def make_map(
        image: Annotated[UploadFile, File(description="PNG, JPEG, TIFF, BMP or WebP (sniffed from the bytes)")],
        method: Annotated[str, Form(description="a name from /api/v1/methods")] = "itti",
        params: Annotated[str, Form(description="JSON object of the method's parameters")] = "{}",
        target: Annotated[str, Form(description="explanations: top1, top2, ..., a class index or name")] = "top1",
        output: Annotated[str, Form(description="gray (PNG), overlay (PNG) or data (float32 JSON)")] = "gray",
        alpha: Annotated[float, Form(description="overlay opacity in [0, 1]")] = 0.5,
    ) -> Response:
        data = await _read(image)
        output = _check_output(output)
        alpha = _check_alpha(alpha)
        m = C.parse_method(method)
        p = C.parse_params(params, m)

        def work() -> tuple[Any, bytes | None]:
            img = C.decode_image(data, cfg.max_pixels)
            r = C.compute_map(img, m, p, target, holder)
            if output == "gray":
                return r, C.png_bytes(C.gray(r.saliency))
            if output == "overlay":
                return r, C.overlay_png(img, r.saliency, alpha)
            return r, None

        r, png = await pool.run(_guard(work))
        headers = {"X-Salience-Method": r.method}
        if r.target is not None:
            headers["X-Salience-Target"] = str(r.target["index"])
            headers["X-Salience-Target-Name"] = r.target["name"].encode("ascii", "replace").decode()
        if png is None:
            return JSONResponse({"method": r.method, **C.float32_payload(r.saliency), "target": r.target},
                                headers=headers)
        return Response(png, media_type="image/png", headers=headers)

    @app.post(f"{API}/classify", response_model=ClassesOut, responses=_ERRORS, tags=["model"],
              summary="The model's top-5 classes for an uploaded image")
    async def classify(image: Annotated[UploadFile, File()],
                       k: Annotated[int, Form(ge=1, le=20)] = 5) -> dict[str, Any]:
        data = await _read(image)

        def work() -> list[dict[str, Any]]:
            return C.top_classes(C.decode_image(data, cfg.max_pixels), holder, k)

        return {"model": holder.name, "classes": await pool.run(_guard(work))}


def _add_analysis_routes(app: FastAPI, cfg: ServeConfig, holder: C.ModelHolder, pool: _Pool) -> None:
    """``POST`` scanpath, itti (feature and conspicuity maps) and evaluate."""
    @app.post(f"{API}/scanpath", response_model=ScanpathOut, responses=_ERRORS, tags=["maps"],
              summary="Attended locations (winner-take-all + inhibition of return) on a method's map")
    async def scanpath(
        image: Annotated[UploadFile, File()],
        method: Annotated[str, Form()] = "itti",
        params: Annotated[str, Form()] = "{}",
        target: Annotated[str, Form()] = "top1",
        n: Annotated[int, Form(ge=1, le=100)] = 5,
        radius: Annotated[float | None, Form(gt=0, description="FOA radius in pixels; default min(H, W) / 6")] = None,
    ) -> dict[str, Any]:
        data = await _read(image)
        m = C.parse_method(method)
        p = C.parse_params(params, m)
        if radius is not None and not math.isfinite(radius):
            raise C.FieldError("radius", "radius must be a finite number of pixels")

        def work() -> dict[str, Any]:
            img = C.decode_image(data, cfg.max_pixels)
            r = C.compute_map(img, m, p, target, holder)
            h, w = r.saliency.shape
            rad = float(radius) if radius is not None else min(h, w) / 6.0
            return {"method": r.method, "width": w, "height": h, "radius": rad,
                    "points": C.scanpath_points(r.saliency, n, rad), "target": r.target}

        return await pool.run(_guard(work))

    @app.post(f"{API}/itti", response_model=IttiOut, responses=_ERRORS, tags=["maps"],
              summary="The Itti-Koch feature maps and conspicuity maps, as grayscale PNGs")
    async def itti(image: Annotated[UploadFile, File()],
                   params: Annotated[str, Form(description="JSON object of IttiParams fields")] = "{}") -> dict:
        data = await _read(image)
        p = C.parse_params(params, C.parse_method("itti"))

        def work() -> dict[str, Any]:
            return C.itti_maps(C.decode_image(data, cfg.max_pixels), p)

        return await pool.run(_guard(work))

    @app.post(f"{API}/evaluate", response_model=EvaluateOut, responses=_ERRORS, tags=["evaluation"],
              summary="Score an uploaded saliency map against uploaded fixations (salience.metrics.evaluate)")
    async def evaluate(
        map: Annotated[UploadFile, File(description="a grayscale image or a .npy array")],
        fixations: Annotated[UploadFile, File(description="JSON [[x, y], ...], CSV x,y rows, or a binary map image")],
        metrics: Annotated[str, Form(description="all, or a comma-separated list")] = "all",
        convention: Annotated[str, Form(description="mit or tuebingen")] = "mit",
    ) -> dict[str, Any]:
        mdata, fdata = await _read(map), await _read(fixations)

        def work() -> dict[str, Any]:
            smap = C.decode_map(mdata, cfg.max_pixels)
            fix = C.decode_fixations(fdata, smap.shape, cfg.max_pixels)
            return C.evaluate_map(smap, fix, metrics, convention)

        return await pool.run(_guard(work))


def _add_page_routes(app: FastAPI) -> None:
    """The web page, its docs page and the static files (none from another host)."""
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
