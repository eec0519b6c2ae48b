"""Bounded retries with exponential backoff for transient object-store errors.

s3fs and botocore already retry a few times within about 3 s; an endpoint that restarts, a load
balancer that drops connections for a few seconds or S3 throttling (``SlowDown``) outlast that. Here
we retry the whole store operation with backoff (:class:`sym3dinv.config.store.RetryPolicy`). Only
errors that can succeed later are retried; a missing object, access denied, a full disk or a
read-only file system fail at once. Every store operation we retry is idempotent (a PUT of the same
bytes to the same key, a read, a listing).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sym3dinv.config.store import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

_PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                               errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG})
_TRANSIENT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT,
                               errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN, errno.EBUSY})
_TRANSIENT_NAMES = frozenset({
    # botocore
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
    "ProxyConnectionError", "ResponseStreamingError", "IncompleteReadError",
    # aiohttp / asyncio / http.client
    "ClientConnectorError", "ClientOSError", "ServerDisconnectedError", "ServerTimeoutError",
    "ClientPayloadError", "IncompleteRead", "RemoteDisconnected", "FSTimeoutError",
})
_TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                              "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable", "503", "500", "502",
                              "504", "RequestLimitExceeded", "TooManyRequests"})


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def is_transient(exc: BaseException) -> bool:
    """True for errors that may go away on their own: connection refused/reset, timeouts, 5xx, throttling."""
    chain = _chain(exc)
    first = chain[0]
    if isinstance(first, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return False
    if isinstance(first, OSError) and first.errno in _PERMANENT_ERRNOS:
        return False
    for e in chain:
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return True
        if any(t.__name__ in _TRANSIENT_NAMES for t in type(e).__mro__):
            return True
        response = getattr(e, "response", None)  # botocore ClientError
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _TRANSIENT_CODES or status >= 500 or status == 429:
                return True
    return False


def with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy,
                 on_retry: Callable[[BaseException], None] | None = None) -> T:
    """Call ``fn``; on a transient error wait (backoff) and call again, at most ``policy.attempts`` times."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= policy.attempts or not is_transient(exc):
                raise
            wait = policy.delay(attempt)
            log.warning("transient store error on %s (try %d of %d): %s: %s; retrying in %.2f s",
                        what, attempt, policy.attempts, type(exc).__name__, exc, wait)
            if on_retry is not None:
                on_retry(exc)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
