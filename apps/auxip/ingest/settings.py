"""Configuration of the ingestion pipeline (`ingest`, `scanner`, `retention`, `bus` in the service configuration)."""

from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auxip.ingest.archives import ArchiveLimits
from auxip.ingest.scanner import ScannerSettings
from auxip.ingest.transform import DEFAULT_RULES, TransformRules


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionSettings(_Section):
    """How long a product stays online: EvictionDate = PublicationDate + the first matching period."""

    default_days: int = Field(3650, ge=1)
    #: Product type (or fnmatch pattern such as `AUX_*`) -> days. First match in file order wins.
    per_type: dict[str, int] = {}

    def for_type(self, product_type: str) -> timedelta:
        for pattern, days in self.per_type.items():
            if fnmatchcase(product_type, pattern):
                return timedelta(days=days)
        return timedelta(days=self.default_days)


class IngestSettings(_Section):
    #: Where fetched files wait for the scanner and transformation; default `<data_dir>/staging`. Same filesystem as
    #: local storage lets the store stage rename instead of copy.
    staging_dir: str | None = None
    #: What to do with a well-formed name of a type outside the contract's list.
    unknown_types: Literal["quarantine", "publish"] = "quarantine"
    #: Failed attempts of one stage before the item is quarantined (`stage-failed`); scanner outages do not count.
    max_attempts: int = Field(8, ge=1)
    #: Exponential backoff with jitter between attempts of a stage: first and largest delay.
    retry_base_seconds: float = Field(2.0, gt=0)
    retry_max_seconds: float = Field(600.0, gt=0)
    #: Consecutive source failures that open its circuit, and for how long at first (doubling to 1 h).
    circuit_threshold: int = Field(5, ge=1)
    circuit_open_seconds: float = Field(30.0, gt=0)
    #: A worker's claim on an item; renewed while the stage runs, so it only matters when a worker dies.
    lease_seconds: float = Field(60.0, ge=5)
    #: Parallel items per stage in this process (fetches are bounded per source by `sources[].concurrency`).
    workers: int = Field(4, ge=1, le=64)
    #: Processes running the stages (one event loop drives one core): set it to the cores the pipeline may use.
    processes: int = Field(1, ge=1, le=64)
    #: How often idle stages look for due items besides being woken by the previous stage.
    sweep_seconds: float = Field(1.0, gt=0)
    #: Keep this much free space in staging beyond the file being fetched.
    min_free_bytes: int = Field(256 * 1024**2, ge=0)
    #: Eviction runs this often.
    eviction_interval_seconds: float = Field(300.0, gt=0)
    #: Bounds on archives from outside (zip bombs, entry counts), enforced on declared and on real sizes.
    archive_limits: ArchiveLimits = ArchiveLimits()
    #: Packaging per product type for S1PDGS, first match wins; the last rule must be the `*` catch-all.
    transform_rules: TransformRules = DEFAULT_RULES


class KafkaTls(_Section):
    """TLS to the brokers (Strimzi's TLS listener): the CA that signed them, and for mutual TLS the client's
    certificate and key (a Strimzi KafkaUser Secret's `user.crt` and `user.key`)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None

    def client_config(self) -> dict[str, str]:
        """librdkafka's settings for it."""
        config = {"security.protocol": "SSL", "ssl.ca.location": self.ca_file}
        if self.cert_file and self.key_file:
            config |= {"ssl.certificate.location": self.cert_file, "ssl.key.location": self.key_file}
        return config


class BusSettings(_Section):
    #: `embedded` (the database log) or `kafka://host:port`.
    url: str = Field("embedded", pattern=r"^(embedded|kafka://[^\s/]+(/.*)?)$")
    #: Kafka topics are `<prefix><event>`, e.g. `auxip.product.published`, and consumer groups `<prefix><group>`:
    #: one prefix per deployment on a cluster (the KafkaUser's ACLs grant exactly that prefix).
    topic_prefix: str = Field("auxip.", pattern=r"^[A-Za-z0-9._-]*$")
    #: Kafka over TLS: `{ca_file, cert_file, key_file}` (cert and key: mutual TLS); none: plaintext (loopback only).
    tls: KafkaTls | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> BusSettings:
        if self.tls is not None and (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls: give both cert_file and key_file (mutual TLS), or neither")
        return self


#: `scanner: disabled` must be written out: no antivirus is never a default.
ScannerChoice = ScannerSettings | Literal["disabled"]
