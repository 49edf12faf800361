"""Typed settings of the S3 backend: where the endpoint is and how to sign; everything else has a sane default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class S3Settings:
    # None: AWS itself, resolved from the region.
    endpoint_url: str | None = None
    # None for both: boto3's default chain (environment, instance profile, ...).
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    # Path style works with every S3-compatible server; virtual-host style needs wildcard DNS for bucket names.
    addressing_style: str = "path"
    # Above this size an upload is split into parts: one failed part is retried instead of the whole file.
    multipart_threshold: int = 64 * MIB
    # S3's minimum part size is 5 MiB; 16 MiB keeps a 1 GB file at 64 parts (limit 10,000).
    part_size: int = 16 * MIB
    # Parallel downloads each hold one connection; the botocore default (10) would queue the 11th download.
    max_pool_connections: int = 64
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # botocore's own retries of one request; callers with their own retry policy (the pipeline) set 1.
    max_attempts: int = 3
    # TLS verification of the endpoint: True, False, or the path of a CA bundle for a private CA.
    verify: bool | str = True

    def __post_init__(self) -> None:
        if self.part_size < 5 * MIB:
            raise ValueError(f"part_size must be at least 5 MiB (S3's minimum), got {self.part_size}")
        if self.multipart_threshold < self.part_size:
            raise ValueError("multipart_threshold must be >= part_size")
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "AUXIP_S3_") -> S3Settings:
        """`AUXIP_S3_ENDPOINT_URL`, `AUXIP_S3_ACCESS_KEY`, `AUXIP_S3_SECRET_KEY`, `AUXIP_S3_REGION`."""
        env = os.environ if environ is None else environ
        return cls(
            endpoint_url=env.get(f"{prefix}ENDPOINT_URL") or None,
            access_key=env.get(f"{prefix}ACCESS_KEY") or None,
            secret_key=env.get(f"{prefix}SECRET_KEY") or None,
            region=env.get(f"{prefix}REGION") or "us-east-1",
        )
