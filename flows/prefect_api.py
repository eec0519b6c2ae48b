"""A Prefect API every flow-running entry point can rely on, on a cold, slow or busy machine.

Why this exists: with no ``PREFECT_API_URL``, Prefect starts a temporary ("ephemeral") API server for
the run. On a new ``PREFECT_HOME`` that server first creates and migrates its SQLite database, which
takes about 20 s on 2 cores, and Prefect gives it ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``
= 20 s by default: a fresh machine's first ``sym3dinv demo`` failed with a traceback ("Timed out while
attempting to connect to ephemeral Prefect API server") and the second one passed.

:func:`ensure_prefect_api` runs before the flow (``sym3dinv demo``, ``sym3dinv invert``, the flows'
``python -m`` entry points):

- ``PREFECT_API_URL`` set (environment or Prefect profile): the user's server is used and none is started;
  it is health-checked first (``GET {url}/health``, a few seconds), so a wrong URL is one clear line
  instead of a retry storm and a traceback;
- otherwise the ephemeral server gets :data:`EPHEMERAL_STARTUP_TIMEOUT_S` to start, unless the user set
  the limit themselves (environment or profile: their value wins);
- analytics off (``PREFECT_SERVER_ANALYTICS_ENABLED=false``, ``DO_NOT_TRACK=1``): runs make no network calls.

:func:`api_errors` turns the ways the API can still be unreachable into :class:`PrefectAPIUnavailable`;
:func:`exit_on_api_error` prints its one line and exits with :data:`EXIT_API_UNAVAILABLE`.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

EPHEMERAL_STARTUP_TIMEOUT_S = 600
"""Startup limit of the temporary API server. Prefect's default is 20 s; a first start (database creation
and migrations) takes about 20 s on 2 idle cores, and on the development machine with both cores taken by
a training job at higher priority it took over 180 s of Prefect's count (which counts only its 0.1-s
sleeps, so wall time is longer still). A server that never comes up costs this long; one that starts is
used as soon as it answers."""
HEALTH_TIMEOUT_S = 5.0
"""How long the health check of a user's ``PREFECT_API_URL`` may take."""
EXIT_API_UNAVAILABLE = 2
"""Exit status of a command whose Prefect API cannot be reached (a usage/configuration error)."""
T = TypeVar("T")
TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

DEFAULT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
               "PREFECT_LOGGING_EXTRA_LOGGERS": "sym3dinv"}
"""Environment defaults of every flow run (a user's own values win)."""

_SERVE = "start one with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
_FIX = _SERVE + ", or unset PREFECT_API_URL to use a temporary local server"


class PrefectAPIUnavailable(RuntimeError):
    """The Prefect API a flow needs cannot be reached; the message says what to do (one line)."""

    code = "prefect_api_unavailable"


def ensure_prefect_api(startup_timeout_s: int = EPHEMERAL_STARTUP_TIMEOUT_S,
                       health_timeout_s: float = HEALTH_TIMEOUT_S) -> str | None:
    """Prepare the Prefect settings of this process before a flow runs; return the user's API URL (``None``
    when the ephemeral server will be used). Raises :class:`PrefectAPIUnavailable` when a configured
    server does not answer its health check, or when no server is configured and the ephemeral one is off.
    """
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    from prefect.settings import Settings

    settings = Settings()  # read now: environment and the active profile, as Prefect itself will
    url = settings.api.url
    if url:
        check_health(url, health_timeout_s)
    elif not settings.server.ephemeral.enabled:
        raise PrefectAPIUnavailable("no Prefect API: PREFECT_API_URL is unset and the temporary server is "
                                    f"disabled (PREFECT_SERVER_EPHEMERAL_ENABLED=false); {_SERVE}, "
                                    "or set PREFECT_SERVER_EPHEMERAL_ENABLED=true")
    elif "startup_timeout_seconds" not in settings.server.ephemeral.model_fields_set:
        os.environ[TIMEOUT_SETTING] = str(startup_timeout_s)
    _refresh_prefect_settings()
    return url or None


def check_health(url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """``GET {url}/health`` must answer 200 within ``timeout_s``; otherwise :class:`PrefectAPIUnavailable`."""
    health = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as response:  # noqa: S310 - the user's own URL
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, DNS, timeout, malformed URL
        reason = getattr(exc, "reason", None) or exc
        raise PrefectAPIUnavailable(f"the Prefect API at PREFECT_API_URL={url} does not answer ({reason}); "
                                    f"{_FIX}") from None
    if status != 200:
        raise PrefectAPIUnavailable(f"the Prefect API at PREFECT_API_URL={url} answered HTTP {status} at "
                                    f"{health}; check the URL (it ends in /api) or {_FIX}")


def _refresh_prefect_settings() -> None:
    """Prefect reads its settings once, at import; if it is imported already, re-read them now."""
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


@contextmanager
def api_errors() -> Iterator[None]:
    """Around a flow call: the temporary server not starting in time becomes :class:`PrefectAPIUnavailable`."""
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if isinstance(exc, PrefectAPIUnavailable) or "ephemeral Prefect API server" not in text:
            raise
        limit = os.environ.get(TIMEOUT_SETTING, "20")
        raise PrefectAPIUnavailable(f"the temporary Prefect API server did not start within {limit} s; "
                                    f"set a longer {TIMEOUT_SETTING}, or {_SERVE}") from None


@contextmanager
def exit_on_api_error() -> Iterator[None]:
    """Entry points: a :class:`PrefectAPIUnavailable` is one line on stderr and exit status 2, no traceback."""
    try:
        yield
    except PrefectAPIUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_API_UNAVAILABLE) from None


def run_flow_main(call: Callable[[], T]) -> T:
    """A flow module's ``__main__``: :func:`ensure_prefect_api`, then ``call()``; API errors exit as above."""
    with exit_on_api_error():
        ensure_prefect_api()
        with api_errors():
            return call()
