"""Run store settings (DESIGN.md "The run store"). Not part of ``config_hash``: where results go does
not change what they are."""

from __future__ import annotations

from dataclasses import dataclass


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

    def storage_options(self) -> dict[str, object]:
        """fsspec options for this config (credentials come from the environment)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}} if self.endpoint_url else {}
