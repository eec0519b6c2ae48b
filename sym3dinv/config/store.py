"""Run store settings (DESIGN.md "The run store"). Not part of ``config_hash``: where results go does
not change what they are."""

from __future__ import annotations

from dataclasses import dataclass, field

from sym3dinv.config.core import PYDANTIC_CONFIG


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient object-store errors (connection refused/reset, timeouts,
    HTTP 5xx, throttling). Permanent errors (missing object, access denied, disk full) are never retried.

    Delay before retry ``k`` (1-based) is ``min(max_delay_s, base_delay_s * multiplier**(k-1))``; with the
    defaults a write survives an endpoint outage of about 30 s (0.5+1+2+4+8+15 s) before failing.
    """

    __pydantic_config__ = PYDANTIC_CONFIG

    attempts: int = 7
    """Total tries (first try included); 1 disables retrying."""
    base_delay_s: float = 0.5
    """Wait before the first retry, seconds."""
    multiplier: float = 2.0
    """Each further wait is this many times the previous one."""
    max_delay_s: float = 15.0
    """Longest single wait, seconds."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.attempts < 1 or self.base_delay_s < 0 or self.multiplier < 1 or self.max_delay_s < 0:
            raise ConfigError(f"invalid retry policy {self}: attempts >= 1, delays >= 0, multiplier >= 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return min(self.max_delay_s, self.base_delay_s * self.multiplier ** (retry - 1))


@dataclass(frozen=True)
class LeaseConfig:
    """Per-item leases in the run store (docs/store.md "Leases"): a run takes an item's lease before
    inverting it, renews it while it works, and releases it on commit or failure; another run skips an
    item whose lease is live and takes over one that has expired (a killed run's).

    The duration is how long a killed run's items wait before another run may take them over, so it
    trades that wait against the heartbeats a stalled-but-alive worker may miss: an item takes about
    2 GPU minutes with the paper preset (130 s on one GPU, batches of 4 a few minutes), so 15 minutes
    covers a batch with margin, and a renewal every 60 s leaves 14 missed heartbeats before a live
    worker could lose its lease."""

    __pydantic_config__ = PYDANTIC_CONFIG

    duration_s: float = 900.0
    """Seconds a lease stays live after it is taken or renewed (a killed run's items wait this long)."""
    heartbeat_s: float = 60.0
    """Seconds between renewals while an item is worked on (at most half the duration)."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if not (self.duration_s > 0 and 0 < self.heartbeat_s <= self.duration_s / 2):
            raise ConfigError(f"invalid lease settings {self}: duration_s > 0 and 0 < heartbeat_s <= duration_s / 2 "
                              "(a lease is renewed at least twice before it expires)")


@dataclass(frozen=True)
class StoreConfig:
    """Where a job reads or writes; credentials never live here (use env vars/profiles or storage_options).
    The command line's ``--endpoint-url`` is generated from this class; ``sym3dinv.store.storage_options``
    turns it into fsspec options."""

    __pydantic_config__ = PYDANTIC_CONFIG

    url: str = "./runs/default"
    """Root URL: ``/path``, ``file://``, ``s3://bucket/prefix`` or ``memory://``."""
    endpoint_url: str | None = None
    """S3-compatible endpoint for s3:// URLs (MinIO, moto, R2); default: AWS."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Backoff for transient object-store errors (see :class:`RetryPolicy`)."""
