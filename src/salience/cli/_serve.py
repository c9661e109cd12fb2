"""``salience serve``: the web page and the HTTP API (FastAPI on uvicorn); see docs/web.md."""

from __future__ import annotations

import os
import sys

from ..errors import InputError, MissingDependencyError


def add_parser(sub):
    p = sub.add_parser(
        "serve", help="serve the web page and the HTTP API",
        description="Start the web page (/) and the versioned HTTP API (/api/v1, described at /openapi.json, "
                    "interactive docs at /docs). Binds 127.0.0.1 unless --host says otherwise; a host that is "
                    "not loopback needs a token (--token or SALIENCE_TOKEN), which every API request must then "
                    "carry as 'Authorization: Bearer <token>'.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", default="mobilenet_v2", help="model for explanations and the top-5 (bundled weights)")
    p.add_argument("--workers", type=int, default=2, help="compute threads (default 2)")
    p.add_argument("--queue", type=int, default=32, help="requests that may wait for a worker before 503 (default 32)")
    p.add_argument("--token", default=None, help="bearer token required on every API request "
                   "(default: $SALIENCE_TOKEN; required for a non-loopback host)")
    p.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body in MiB (default 20)")
    p.add_argument("--max-pixels", type=int, default=16_000_000, help="largest image in pixels (default 16e6)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request compute limit in seconds (default 120)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable; default: CORS off)")
    p.add_argument("--no-preload", action="store_true", help="load the model on the first request that needs it")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def run(args) -> int:
    import logging

    from ..web.config import ServeConfig

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {args.port}")
    if not (args.max_body_mb > 0):
        raise InputError(f"--max-body-mb must be > 0, got {args.max_body_mb}")
    token = args.token if args.token is not None else (os.environ.get("SALIENCE_TOKEN") or None)
    cfg = ServeConfig(host=args.host, model=args.model, workers=args.workers, queue=args.queue,
                      max_body_bytes=int(args.max_body_mb * 2**20), max_pixels=args.max_pixels,
                      timeout_s=args.timeout, token=token, cors_origins=tuple(args.cors_origin),
                      preload=not args.no_preload)
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"salience serve needs the web extra ({exc.name} is missing); install it with: "
            "pip install 'salience[web]'") from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    from ..web.allocator import keep_freed_memory

    # this process is the server's own: keep freed memory mapped instead of faulting it in per request
    kept = keep_freed_memory()
    logging.getLogger("salience.web").debug("allocator: freed memory kept mapped: %s", kept)
    app = create_app(cfg)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"salience: serving the page at http://{shown}:{args.port}/ and the API at /api/v1 (docs at /docs); "
          "Ctrl+C stops", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level=args.log_level,
                server_header=False)
    return 0
