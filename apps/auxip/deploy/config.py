"""The `apps` section of the stack configuration: applications hosted on the platform and their exchanges.

Composed into `StackConfig` (`auxip-platform:apps`) like the infra section; checks that involve other sections (the
infra layer's hosted VMs, the baseline's namespaces) are `StackConfig.cross_check`'s. Kept in the `auxip` package so
that the deploy modules type-check against it (mypy cannot see through the editable install of `auxip_platform`).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from auxip.deploy.fields import (
    CREDENTIALS_REFERENCE,
    DNS_LABEL,
    HOSTNAME,
    AppResources,
    StrictModel,
    default_port,
    not_world,
    pinned_image,
    remote_url,
)
from auxip.deploy.service_config import AuxipServiceConfig
from auxip.ingest.sources.settings import SCHEMES as SOURCE_SCHEMES
from auxip.routing.settings import TARGET_SCHEMES
from auxip.validation import Regex, require_unique

#: The peer of an exchange that is the AUXIP itself: its ingestion (out) or its published products (in).
AUXIP_INGESTION = "auxip-ingestion"
#: Schemes an external peer cannot have: local to the AUXIP, or (s3) needing an endpoint this model does not carry.
LOCAL_SCHEMES = frozenset({"file", "inbox", "s3"})
#: Rolling updates start one extra pod before stopping an old one: the quota must leave room for it.
SURGE_PODS = 1


class ExchangeStorage(StrictModel):
    """The S3 bucket holding every hosted application's inbox and outbox (`<prefix>/<app>/inbox|outbox/`)."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(default="apps", pattern=r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")
    endpoint_url: str
    #: The endpoint's addresses: the only egress the applications' pods (and the AUXIP's exchange pods) get for it.
    cidr: ipaddress.IPv4Network
    region: str = "us-east-1"
    #: How the AUXIP authenticates to the bucket (a reference, never the key itself).
    credentials: str = Field(pattern=CREDENTIALS_REFERENCE)

    _endpoint = field_validator("endpoint_url")(classmethod(lambda cls, value: remote_url(value, ("https",))))
    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))

    @property
    def port(self) -> int:
        return default_port(self.endpoint_url)


class ReverseProxy(StrictModel):
    """The platform's ingress controller: the class hosted applications' Ingresses use, and where its pods run.

    Kong by default, as in the cluster services (`platform/services/kong.py`), which installs it in `kong`."""

    class_name: str = Field(default="kong", pattern=DNS_LABEL)
    namespace: str = Field(default="kong", pattern=DNS_LABEL)


class ExternalPeer(StrictModel):
    """An endpoint outside the platform: where an outbound exchange delivers or an inbound one polls."""

    url: str
    #: The peer's addresses, for the egress NetworkPolicy (a DNS name cannot be used in one).
    cidr: ipaddress.IPv4Network
    credentials: str | None = Field(default=None, pattern=CREDENTIALS_REFERENCE)

    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))


def _peer_kind(value: Any) -> str:
    return "auxip" if isinstance(value, str) else "external"


Peer = Annotated[
    Annotated[Literal["auxip-ingestion"], Tag("auxip")] | Annotated[ExternalPeer, Tag("external")],
    Discriminator(_peer_kind),
]


class Exchange(StrictModel):
    """One flow of files between a hosted application and a peer, moved by the AUXIP (compiled into routes)."""

    name: str = Field(pattern=DNS_LABEL, max_length=30)
    #: out: from the application's outbox to the peer; in: from the peer into the application's inbox.
    direction: Literal["in", "out"]
    peer: Peer
    #: Product types (the name's type field, e.g. `MPL_ORBPRE`) the exchange carries; all when empty.
    product_types: list[Annotated[str, Field(pattern=r"^[A-Z0-9_]{3,10}$")]] = Field(default_factory=list)
    #: A regular expression searched in the file name.
    name_pattern: Regex | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"
    #: The peer's port, for the egress NetworkPolicy; defaults to the peer URL's (or its scheme's) port.
    port: int | None = Field(default=None, ge=1, le=65535, validate_default=True)

    @field_validator("peer")
    @classmethod
    def _peer_url_fits_direction(cls, value: str | ExternalPeer, info: ValidationInfo) -> str | ExternalPeer:
        if isinstance(value, ExternalPeer):
            # The AUXIP polls an inbound peer as a source and delivers to an outbound one as a target.
            schemes = set(SOURCE_SCHEMES if info.data.get("direction") == "in" else TARGET_SCHEMES) - LOCAL_SCHEMES
            remote_url(value.url, schemes)
        return value

    @field_validator("port")
    @classmethod
    def _port_of_the_peer(cls, value: int | None, info: ValidationInfo) -> int | None:
        peer = info.data.get("peer")
        if peer == AUXIP_INGESTION:
            if value is not None:
                raise ValueError("an exchange with auxip-ingestion opens no network path: remove `port`")
            return None
        if isinstance(peer, ExternalPeer):
            url_port = default_port(peer.url)
            if value is not None and urlsplit(peer.url).port not in (None, value):
                raise ValueError(f"{value} differs from the port of the peer URL ({url_port})")
            return value or url_port
        return value  # the peer itself is invalid and already reported


class AppQuota(AppResources):
    """The namespace's ResourceQuota (sums over its pods)."""

    pods: int = Field(default=4, ge=1, le=100)


class HostedAppConfig(StrictModel):
    """An application hosted on the platform: in its own namespace (`kind: kubernetes`, `hosted-<name>`, declared in
    `kubernetes.namespaces` with its Pod Security level) or on a VM of the infra layer (`kind: vm`,
    `openstack.hostedVms[]` or an existing host with role hosted, of the same name)."""

    name: str = Field(pattern=DNS_LABEL, max_length=20)
    kind: Literal["kubernetes", "vm"]
    #: Repository path with a tag or digest, pulled through `registryPrefix` (e.g. `esa/s1-mp:4.2.1@sha256:...`).
    image: str | None = Field(default=None, validate_default=True)
    replicas: int = Field(default=1, ge=1, le=10)
    resources: AppResources | None = None
    quota: AppQuota | None = None
    #: The container's port (probes, and the Ingress backend).
    port: int | None = Field(default=None, ge=1024, le=65535)
    #: With `port`: an HTTP path for the probes (a TCP check otherwise).
    health_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~/-]*$")
    run_as_user: int = Field(default=10001, ge=10000)
    #: Public host name behind the platform's reverse proxy (TLS); none: not reachable from outside.
    ingress_host: str | None = Field(default=None, pattern=HOSTNAME)
    exchanges: list[Exchange] = Field(default_factory=list)

    @property
    def namespace(self) -> str:
        return f"hosted-{self.name}"

    @field_validator("image")
    @classmethod
    def _pinned_repository_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("kind") == "kubernetes":
                raise ValueError("required for kind kubernetes")
            return None
        if info.data.get("kind") == "vm":
            raise ValueError("a VM-hosted application has no image: remove it")
        return pinned_image(value)

    @field_validator("exchanges")
    @classmethod
    def _unique_exchanges(cls, value: list[Exchange]) -> list[Exchange]:
        require_unique([exchange.name for exchange in value], "exchange names")
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> HostedAppConfig:
        if self.kind == "vm":
            given = [
                key
                for key, value in (
                    ("resources", self.resources),
                    ("quota", self.quota),
                    ("port", self.port),
                    ("ingressHost", self.ingress_host),
                )
                if value
            ]
            if given:
                raise ValueError(
                    f"kind vm: {', '.join(given)} only apply to kind kubernetes (the VM is sized in infra)"
                )
            return self
        if self.resources is None or self.quota is None:
            raise ValueError("kind kubernetes needs `resources` and `quota`")
        if self.ingress_host and self.port is None:
            raise ValueError("ingressHost needs `port` (the Ingress backend)")
        if self.health_path and self.port is None:
            raise ValueError("healthPath needs `port`")
        pods = self.replicas + SURGE_PODS
        for kind in ("requests", "limits"):
            if not getattr(self.resources, kind).fits_in(getattr(self.quota, kind), pods):
                raise ValueError(
                    f"quota.{kind} cannot hold {pods} pods ({self.replicas} replicas and one rolling-update surge) "
                    f"of resources.{kind}"
                )
        if self.quota.pods < pods:
            raise ValueError(f"quota.pods {self.quota.pods} is below {pods} (replicas and one rolling-update surge)")
        return self


class AppsConfig(StrictModel):
    #: Where the AUXIP runs: its exchange pods move the files and read the compiled routes (ConfigMap auxip-routes).
    auxip_namespace: str = Field(default="auxip", pattern=DNS_LABEL)
    exchange_storage: ExchangeStorage | None = None
    reverse_proxy: ReverseProxy = ReverseProxy()
    hosted: list[HostedAppConfig] = Field(default_factory=list)
    #: The AUXIP's own services (in `auxipNamespace`); none: only the hosted applications and their routes.
    auxip: AuxipServiceConfig | None = None

    @field_validator("hosted")
    @classmethod
    def _unique_apps(cls, value: list[HostedAppConfig]) -> list[HostedAppConfig]:
        require_unique([app.name for app in value], "application names")
        return value

    @model_validator(mode="after")
    def _storage_for_apps(self) -> AppsConfig:
        if self.hosted and self.exchange_storage is None:
            raise ValueError("hosted applications exchange through exchangeStorage: configure it")
        return self
