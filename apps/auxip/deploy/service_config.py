"""The `apps.auxip` section of the stack configuration: the AUXIP's own services on the cluster.

Typed like the rest of `auxip-platform:apps` (camelCase keys, unknown keys refused, errors naming the key). What the
AUXIP program reads is generated from it (`auxip_config.py`) and validated by the program's own model; checks that
need other sections (the catalog cluster, the products bucket, the namespace's quota) are `StackConfig`'s.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from auxip.config import PROCESS_ROLES, ProcessRole
from auxip.deploy.fields import (
    CREDENTIALS_REFERENCE,
    DNS_LABEL,
    HOSTNAME,
    AppResources,
    ComputeAmounts,
    StrictModel,
    default_port,
    not_world,
    pinned_image,
    remote_url,
)
from auxip.ingest.sources.settings import SCHEMES as SOURCE_SCHEMES
from auxip.validation import require_unique

#: What each Deployment runs (`auxip serve --role`): the program's own roles.
Role = ProcessRole
ROLE_NAMES = PROCESS_ROLES
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
EPHEMERAL_SIZE = r"^[1-9][0-9]*(Mi|Gi|Ti)$"
#: Keys of the AUXIP configuration the deployment writes itself (from the typed keys of this section): `settings`
#: may not set them. Dotted: one key of a section.
DEPLOYMENT_KEYS = frozenset(
    {
        *("data_dir", "catalog", "storage", "auth", "bus", "scanner", "sources", "routes", "inboxes"),
        *("inbox_root", "roles", "routing_documents", "api.listen", "ingest.staging_dir"),
    }
)


def _amounts(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> AppResources:
    return AppResources(
        requests=ComputeAmounts(cpu=cpu, memory=memory), limits=ComputeAmounts(cpu=cpu_limit, memory=memory_limit)
    )


#: The containers whose size is not configuration: freshclam beside clamd, and the migration Job.
FRESHCLAM_RESOURCES = _amounts("50m", "128Mi", "500m", "512Mi")
MIGRATION_RESOURCES = _amounts("100m", "256Mi", "1", "512Mi")
#: A rolling update starts one pod more than the replicas before it stops one.
SURGE_PODS = 1


def _https(value: str) -> str:
    return remote_url(value, ("https",))


class Endpoint(StrictModel):
    """Addresses outside the cluster a role may open connections to (a NetworkPolicy cannot name a host)."""

    cidr: ipaddress.IPv4Network
    port: int = Field(default=443, ge=1, le=65535)

    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))


class RoleConfig(StrictModel):
    replicas: int = Field(default=1, ge=1, le=50)
    resources: AppResources
    #: The emptyDir at /var/lib/auxip (the ingest role's staging: fetched files wait there for the scanner).
    data_size: str = Field(default="1Gi", pattern=EPHEMERAL_SIZE)


class ApiRoleConfig(RoleConfig):
    #: The HorizontalPodAutoscaler's upper bound; its lower bound is `replicas`.
    max_replicas: int = Field(default=4, ge=1, le=100)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)

    @model_validator(mode="after")
    def _bounds(self) -> ApiRoleConfig:
        if self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas {self.max_replicas} is below replicas {self.replicas}")
        return self


class Roles(StrictModel):
    api: ApiRoleConfig
    ingest: RoleConfig
    route: RoleConfig
    notify: RoleConfig
    evict: RoleConfig

    def items(self) -> list[tuple[Role, RoleConfig]]:
        return [(role, getattr(self, role)) for role in ROLE_NAMES]


class ProductStorage(StrictModel):
    """Where published products are stored: the infra layer's `products` bucket unless `bucket` names another."""

    bucket: str | None = Field(default=None, pattern=BUCKET)
    prefix: str = Field(default="products", pattern=r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")
    endpoint_url: str
    #: The endpoint's addresses: the egress the roles that read or write products get.
    cidr: ipaddress.IPv4Network
    region: str = "us-east-1"
    #: A Secret in the AUXIP namespace (from Vault, created outside this program) holding the S3 keys: names only.
    credentials_secret: str = Field(default="auxip-products-s3", pattern=DNS_LABEL)
    access_key_field: str = Field(default="access-key", pattern=r"^[A-Za-z0-9._-]+$")
    secret_key_field: str = Field(default="secret-key", pattern=r"^[A-Za-z0-9._-]+$")

    _endpoint = field_validator("endpoint_url")(classmethod(lambda cls, value: _https(value)))
    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))

    @property
    def port(self) -> int:
        return default_port(self.endpoint_url)


class CatalogAccess(StrictModel):
    """The catalog (the CloudNativePG cluster of `clusterServices.postgres`) as the AUXIP reaches it.

    CloudNativePG writes its `<cluster>-app` Secret only in the cluster's own namespace, and a pod can only reference
    Secrets of its own: the URL comes from a Secret of this name in the AUXIP namespace, synchronised from Vault (the
    entry the cluster's owner password is bootstrapped from), holding the operator's `uri` as it is (`postgresql://`
    runs on psycopg 3, `auxip.catalog.migrate.with_driver`).
    """

    secret_name: str = Field(default="auxip-catalog-url", pattern=DNS_LABEL)
    key: str = Field(default="url", pattern=r"^[A-Za-z0-9._-]+$")


class BusAccess(StrictModel):
    #: A Secret in the AUXIP namespace with the Kafka cluster CA certificate (`ca.crt`), to verify the brokers: the
    #: public certificate of `kafka/<cluster>-cluster-ca-cert`, copied by the secrets synchronisation.
    cluster_ca_secret: str = Field(default="auxip-kafka-cluster-ca", pattern=DNS_LABEL)


class KeycloakRealm(StrictModel):
    """A Keycloak realm whose tokens the API accepts (`auth.keycloak[]` of the AUXIP)."""

    issuer: str
    jwks_url: str
    audience: str = "auxip-api"
    client_id: str = "auxip-api"
    #: The realm's addresses: the API pods fetch its JWKS (and proxy token requests) there.
    cidr: ipaddress.IPv4Network

    _urls = field_validator("issuer", "jwks_url")(classmethod(lambda cls, value: _https(value)))
    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))


class AuthConfig(StrictModel):
    #: On a cluster tokens come from Keycloak: the embedded issuer keeps its key per pod, so replicas would not
    #: accept each other's tokens.
    keycloak: list[KeycloakRealm] = Field(min_length=1)
    #: Keycloak's token endpoint, which `/auth/token` forwards password grants to.
    token_url: str | None = None

    @field_validator("token_url")
    @classmethod
    def _on_a_realm_host(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        _https(value)
        hosts = {(urlsplit(r.jwks_url).hostname, default_port(r.jwks_url)) for r in info.data.get("keycloak") or []}
        if (urlsplit(value).hostname, default_port(value)) not in hosts:
            raise ValueError("must be on the host and port of an auxip.keycloak[].jwksUrl (its egress is opened)")
        return value


class IngressConfig(StrictModel):
    """The OData API and the token URL published through the reverse proxy (Kong), with TLS from cert-manager."""

    host: str = Field(pattern=HOSTNAME)
    #: The cert-manager issuer of the certificate (the platform's internal CA unless a public one is named).
    tls_issuer: str = Field(default="auxip-internal-ca", pattern=DNS_LABEL)
    tls_issuer_kind: Literal["ClusterIssuer", "Issuer"] = "ClusterIssuer"
    #: Largest request body (KongPlugin request-size-limiting): OData requests and token forms are small.
    max_request_kilobytes: int = Field(default=64, ge=1, le=10240)
    #: Per client address, on the API's routes (KongPlugin rate-limiting).
    rate_limit_per_minute: int = Field(default=300, ge=1)


class ScannerConfig(StrictModel):
    """clamd in the AUXIP namespace, its signatures kept up to date by freshclam from a private mirror."""

    #: ClamAV's image (clamd and freshclam), repository path with a tag or digest, pulled through `registryPrefix`.
    image: str
    replicas: int = Field(default=1, ge=1, le=10)
    resources: AppResources
    #: The signature mirror (freshclam `PrivateMirror`), e.g. a cvdupdate server.
    mirror_url: str
    mirror_cidr: ipaddress.IPv4Network

    _image = field_validator("image")(classmethod(lambda cls, value: pinned_image(value)))
    _mirror = field_validator("mirror_url")(classmethod(lambda cls, value: remote_url(value, ("http", "https"))))
    _cidr = field_validator("mirror_cidr")(classmethod(lambda cls, value: not_world(value)))


class AuxipSource(StrictModel):
    """An external source the AUXIP ingests from (`sources[]` of the AUXIP), with the addresses its egress opens."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    url: str
    cidr: ipaddress.IPv4Network
    port: int | None = Field(default=None, ge=1, le=65535, validate_default=True)
    credentials: str | None = Field(default=None, pattern=CREDENTIALS_REFERENCE)
    product_types: list[str] = Field(default_factory=list)
    poll_interval: float | None = Field(default=None, gt=0)

    _url = field_validator("url")(
        classmethod(lambda cls, value: remote_url(value, set(SOURCE_SCHEMES) - {"file", "s3"}))
    )
    _cidr = field_validator("cidr")(classmethod(lambda cls, value: not_world(value)))

    @field_validator("port")
    @classmethod
    def _url_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        url = info.data.get("url")
        if url is None:
            return value  # the URL is invalid and already reported
        if value is not None and urlsplit(url).port not in (None, value):
            raise ValueError(f"{value} differs from the port of the URL ({default_port(url)})")
        return value or default_port(url)


class AuxipServiceConfig(StrictModel):
    """The AUXIP on the cluster: one Deployment per role of the project image, its migration Job, clamd, the Kafka
    user and topics, the Ingress, and the NetworkPolicies of each."""

    #: The project image (Containerfile), repository path with a tag or digest, pulled through `registryPrefix`.
    image: str
    roles: Roles
    storage: ProductStorage
    catalog: CatalogAccess = CatalogAccess()
    bus: BusAccess = BusAccess()
    auth: AuthConfig
    scanner: ScannerConfig
    #: None: the API is reachable inside the cluster only.
    ingress: IngressConfig | None = None
    sources: list[AuxipSource] = Field(default_factory=list)
    #: Where subscriptions may notify (the notify role's egress); notifications elsewhere fail.
    subscription_endpoints: list[Endpoint] = Field(default_factory=list)
    #: The namespace whose Prometheus scrapes `/metrics` (ingress to every pod's http port).
    monitoring_namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    #: Further AUXIP keys, as `auxip config reference` names them (`ingest`, `retention`, `quotas`, `log_format`,
    #: `api.max_page_size`), merged into the generated configuration and validated with it.
    settings: dict[str, Any] = Field(default_factory=dict)

    _image = field_validator("image")(classmethod(lambda cls, value: pinned_image(value)))

    def footprint(self) -> list[tuple[str, int, list[AppResources]]]:
        """(key below apps.auxip, most pods at once, the containers of one pod) for every workload: what the
        namespace's quota must hold with the API scaled out and every rollout surging."""
        rows = [
            (f"roles.{role}", (self.roles.api.max_replicas if role == "api" else config.replicas) + SURGE_PODS,
             [config.resources])
            for role, config in self.roles.items()
        ]  # fmt: skip
        rows.append(("scanner", self.scanner.replicas + SURGE_PODS, [self.scanner.resources, FRESHCLAM_RESOURCES]))
        rows.append(("", 1, [MIGRATION_RESOURCES]))  # the migration Job
        return rows

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, value: list[AuxipSource]) -> list[AuxipSource]:
        require_unique([source.name for source in value], "source names")
        return value

    @field_validator("settings")
    @classmethod
    def _not_deployment_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        given = {str(key) for key in value} | {
            f"{key}.{inner}" for key, section in value.items() if isinstance(section, dict) for inner in section
        }
        owned = sorted(given & DEPLOYMENT_KEYS)
        if owned:
            raise ValueError(f"{', '.join(owned)}: set by the deployment from the typed keys of apps.auxip")
        return value
