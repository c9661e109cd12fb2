"""The web service and page behind ``salience serve``.

:func:`create_app` builds the ASGI application (FastAPI): the versioned HTTP API under ``/api/v1`` and
the page at ``/`` (plain HTML/CSS/JS files in ``salience/web/static``, no build step, nothing loaded
from another host).  Needs the ``web`` extra: ``pip install 'salience[web]'``.  docs/web.md describes
the endpoints, the limits and how to run it behind a reverse proxy.

>>> from salience.web import ServeConfig
>>> ServeConfig().host, ServeConfig().workers
('127.0.0.1', 2)
"""

from __future__ import annotations

from .config import ServeConfig, is_loopback

__all__ = ["ServeConfig", "create_app", "is_loopback"]


def create_app(config: ServeConfig | None = None, *, model=None):
    """The FastAPI application; see :func:`salience.web.app.create_app`.

    Examples
    --------
    >>> from salience.web import ServeConfig, create_app
    >>> app = create_app(ServeConfig())
    >>> app.title, "/api/v1/map" in {route.path for route in app.routes}
    ('salience', True)
    """
    from .app import create_app as _create

    return _create(config, model=model)
