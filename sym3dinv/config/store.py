"""Run store settings (DESIGN.md "The run store"). Not part of ``config_hash``: where results go does
not change what they are."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient object-store errors (connection refused/reset, timeouts,
    HTTP 5xx, throttling). Permanent errors (missing object, access denied, disk full) are never retried.

    Delay before retry ``k`` (1-based) is ``min(max_delay_s, base_delay_s * multiplier**(k-1))``; with the
    defaults a write survives an endpoint outage of about 30 s (0.5+1+2+4+8+15 s) before failing.
    """

    attempts: int = 7
    """Total tries (first try included); 1 disables retrying."""
    base_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 15.0

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.attempts < 1 or self.base_delay_s < 0 or self.multiplier < 1 or self.max_delay_s < 0:
            raise ConfigError(f"invalid retry policy {self}: attempts >= 1, delays >= 0, multiplier >= 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return min(self.max_delay_s, self.base_delay_s * self.multiplier ** (retry - 1))


@dataclass(frozen=True)
class StoreConfig:
    """Where a job writes; credentials never live here (use env vars/profiles or storage_options)."""

    url: str = "./runs/default"
    """Root URL: ``/path``, ``file://``, ``s3://bucket/prefix`` or ``memory://``."""
    endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, moto, R2); None = AWS default."""
    depth_format: str = "npy"
    """``npy`` (float32, exact) or ``png16`` (16-bit PNG over the ray range 2.25-3.3)."""
    strict_index: bool = False
    """True: a corrupt index part stops reads; False: it is logged, reported and skipped."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Backoff for transient object-store errors (see :class:`RetryPolicy`)."""

    def storage_options(self) -> dict[str, object]:
        """fsspec options for this config (credentials come from the environment)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}} if self.endpoint_url else {}
