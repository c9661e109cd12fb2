"""The service's settings (no FastAPI import, so the CLI can validate them before starting anything)."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from ..errors import InputError

__all__ = ["ServeConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("example.org")
    (True, True, False, False)
    """
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """Settings of :func:`salience.web.create_app`.

    Attributes
    ----------
    host: the address the server binds (only used to decide whether a token is required).
    model: the model explanations and the top-5 use (a name :func:`salience.load_model` knows, with its
        bundled weights); loaded once, on first use or at start-up with ``preload``.
    workers: threads computing maps (bottom-up maps run in parallel; a shared model runs one call at a
        time, since an explanation puts hooks on it).
    queue: requests that may wait for a worker; one more is answered 503 with ``Retry-After``.
    max_body_bytes: largest request body (counted while it is read); larger -> 413.
    max_pixels: largest image (width x height); larger -> 413, refused from the header before decoding.
    timeout_s: per-request compute time limit; longer -> 504.
    token: when set, every API request needs ``Authorization: Bearer <token>`` (401 otherwise).
    cors_origins: origins allowed to call the API from a browser (empty: CORS off, same origin only).
    preload: load the model at start-up instead of on the first request that needs it.

    Examples
    --------
    >>> from salience.web import ServeConfig
    >>> c = ServeConfig(workers=4)
    >>> c.host, c.workers, c.token is None
    ('127.0.0.1', 4, True)
    """

    host: str = "127.0.0.1"
    model: str = "mobilenet_v2"
    workers: int = 2
    queue: int = 32
    max_body_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 16_000_000
    timeout_s: float = 120.0
    token: str | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    preload: bool = False

    def __post_init__(self) -> None:
        for name in ("workers", "max_body_bytes", "max_pixels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be an integer >= 1, got {v!r}")
        if isinstance(self.queue, bool) or not isinstance(self.queue, int) or self.queue < 0:
            raise InputError(f"queue must be an integer >= 0, got {self.queue!r}")
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(f"timeout_s must be a positive number of seconds, got {t!r}")
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise InputError("the token must be a string of at least 8 characters (e.g. from `openssl rand -hex 16`)")
        if not is_loopback(self.host) and not self.token:
            raise InputError(
                f"host {self.host!r} is not a loopback address, so anyone on the network could use the "
                "service: give a token with --token (or the SALIENCE_TOKEN environment variable), or bind "
                "127.0.0.1"
            )
