"""Configuration of the AUXIP services (`auxip serve --config FILE`): typed, validated once, errors name the key.

Every key may be overridden from the environment: `AUXIP_API__LISTEN=0.0.0.0:8080` sets `api.listen`
(double underscore between levels). Paths default under `data_dir`, so a config of one line runs the embedded
defaults: SQLite catalog, local object storage, local users with the embedded token endpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auxip.ingest.settings import BusSettings, IngestSettings, RetentionSettings, ScannerChoice
from auxip.ingest.sources.settings import POST_DELIVERY_SCHEMES, SourceSettings
from auxip.routing.settings import APP_NAME, InboxSettings, RouteSettings, SourceTrigger, resolve_inbox
from auxip.storage import Storage, open_storage
from auxip.storage.settings import S3Settings

ENV_PREFIX = "AUXIP_"

#: What one `auxip serve` process runs: the OData API and token endpoint; discovery and the ingestion stages; route
#: deliveries; subscription notifications; eviction (a singleton, under a lease).
ProcessRole = Literal["api", "ingest", "route", "notify", "evict"]
PROCESS_ROLES: tuple[ProcessRole, ...] = get_args(ProcessRole)


def roles_in_order(roles: Iterable[str]) -> list[ProcessRole]:
    """Each role once, in the order of PROCESS_ROLES (names that are not roles are left out)."""
    chosen = set(roles)
    return [role for role in PROCESS_ROLES if role in chosen]


#: The keys a routing document (`routing_documents`) may hold.
ROUTING_KEYS = ("sources", "routes", "inboxes")


class ConfigError(ValueError):
    """The configuration is invalid; `str()` lists every problem as `<key>: <what to fix>`."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(Section):
    #: host:port the API listens on.
    listen: str = Field("127.0.0.1:8080", pattern=r"^[^\s:]+:\d{1,5}$")
    #: Most products one page may hold; larger `$top` values are capped and answered with `@odata.nextLink`.
    max_page_size: int = Field(1000, ge=1000, le=10000)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class CatalogConfig(Section):
    #: SQLAlchemy URL; default `sqlite:///<data_dir>/catalog.db`. Production: `postgresql+psycopg://...`.
    url: str | None = None
    #: Migrate the catalog to this release's schema at start (one machine). `false` on a cluster: every process only
    #: checks the schema and refuses another one, and `auxip migrate` runs once per release (the migration Job).
    migrate: bool = True


class S3Config(Section):
    #: An S3-compatible server's endpoint (none: AWS, from the region).
    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: Credentials are read from these environment variables, never from the file.
    access_key_env: str = "AUXIP_S3_ACCESS_KEY"
    secret_key_env: str = "AUXIP_S3_SECRET_KEY"  # noqa: S105 - the name of a variable, not a secret
    verify_tls: bool = True
    #: A CA bundle for an endpoint with a private CA.
    ca_file: str | None = None

    def settings(self, environ: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if environ is None else environ
        return S3Settings(
            endpoint_url=self.endpoint_url,
            access_key=env.get(self.access_key_env) or None,
            secret_key=env.get(self.secret_key_env) or None,
            region=self.region,
            verify=self.ca_file or self.verify_tls,
        )


class StorageConfig(Section):
    #: `file:///dir` or `s3://bucket/prefix`; default `file://<data_dir>/products`.
    url: str | None = None
    s3: S3Config = S3Config()


class KeycloakIssuer(Section):
    issuer: str
    jwks_url: str
    audience: str = "auxip-api"
    client_id: str = "auxip-api"


class AuthConfig(Section):
    #: Local users (Basic auth, and the embedded token endpoint at /auth/token unless `token_proxy_url` is set).
    local_users: bool = True
    #: Keycloak's token endpoint: `/auth/token` then forwards password grants there (production setup).
    token_proxy_url: str | None = None
    #: Token issuers trusted for Bearer tokens besides the embedded one (Keycloak realms in production).
    keycloak: list[KeycloakIssuer] = []
    #: Clients allowed at the embedded token endpoint; the value names the environment variable holding its
    #: secret (empty: a public client).
    token_clients: dict[str, str] = {"auxip-api": ""}
    token_lifetime_seconds: int = Field(300, ge=30, le=86400)


class QuotaConfig(Section):
    #: Per user; beyond it 429 with Retry-After.
    max_parallel_downloads: int = Field(4, ge=1)
    #: Per user over a sliding 24 h window; beyond it 429 with Retry-After.
    max_bytes_per_day: int = Field(500 * 1024**3, ge=1)


class AuxipConfig(Section):
    #: Catalog, products, staging, quarantine and the token signing key live under it by default.
    data_dir: Path
    api: ApiConfig = ApiConfig()
    catalog: CatalogConfig = CatalogConfig()
    storage: StorageConfig = StorageConfig()
    auth: AuthConfig = AuthConfig()
    quotas: QuotaConfig = QuotaConfig()
    #: `json`: one JSON object per line on stdout, with each record's context and the pid.
    log_format: Literal["json", "text"] = "json"
    #: External sources the pipeline ingests from (none: the service only serves what is already published).
    sources: list[SourceSettings] = []
    #: clamd (`scanner.url: tcp://127.0.0.1:3310`), or `scanner: disabled` written out; required with sources.
    scanner: ScannerChoice | None = None
    retention: RetentionSettings = RetentionSettings()
    ingest: IngestSettings = IngestSettings()
    bus: BusSettings = BusSettings()
    #: Where the inboxes of hosted applications live on this host (`inbox://<app>` targets without an `inboxes`
    #: entry): `<inbox_root>/<app>/inbox/`; default `<data_dir>/apps`.
    inbox_root: Path | None = None
    #: Application -> where its inbox is instead (the `auxip-routes` ConfigMap lists every hosted application's S3
    #: inbox): `{url: s3://bucket/prefix/ or file:///dir, credentials, endpoint_url, region, verify_tls, ca_file}`;
    #: its `inbox://<app>` targets then deliver there with the S3 (or local) target.
    inboxes: dict[str, InboxSettings] = {}
    #: Sentinel-1 routing: files of a source (or published products) delivered to external targets.
    routes: list[RouteSettings] = []
    #: What this process runs (`auxip serve --role` overrides it); any number of processes of any role share one
    #: catalog, object store and event bus. A process without `api` serves only `/health/*` and `/metrics`.
    roles: list[ProcessRole] = Field(default_factory=lambda: list(PROCESS_ROLES), min_length=1)
    #: YAML files whose `sources`, `routes` and `inboxes` are added to this configuration's (on the cluster: the
    #: `auxip-routes` ConfigMap of the hosted applications' exchanges, mounted into the pods).
    routing_documents: list[Path] = []

    @field_validator("roles")
    @classmethod
    def _roles_once(cls, roles: list[ProcessRole]) -> list[ProcessRole]:
        return roles_in_order(roles)

    def with_roles(self, roles: Iterable[str]) -> AuxipConfig:
        """This configuration for a process of `roles` (`auxip serve --role`, whose choices are PROCESS_ROLES)."""
        return self.model_copy(update={"roles": roles_in_order(roles)})

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("inboxes")
    @classmethod
    def _application_names(cls, inboxes: dict[str, InboxSettings]) -> dict[str, InboxSettings]:
        bad = sorted(name for name in inboxes if not re.fullmatch(APP_NAME, name))
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: not a hosted application name (pattern {APP_NAME})")
        return inboxes

    @field_validator("routes")
    @classmethod
    def _inboxes_resolved(cls, routes: list[RouteSettings], info: ValidationInfo) -> list[RouteSettings]:
        """`inbox://<app>` targets of applications listed in `inboxes` become the targets their inboxes are."""
        inboxes: dict[str, InboxSettings] = info.data.get("inboxes", {})
        if not inboxes:
            return routes
        return [
            route.model_copy(update={"targets": [resolve_inbox(target, inboxes) for target in route.targets]})
            for route in routes
        ]

    @model_validator(mode="after")
    def _ingestion_is_complete(self) -> AuxipConfig:
        names = [source.name for source in self.sources]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"sources: names must be unique, repeated: {', '.join(duplicated)}")
        if self.sources and self.scanner is None:
            raise ValueError("scanner: required when sources are configured: give scanner.url or scanner: disabled")
        self._check_routes()
        return self

    def _check_routes(self) -> None:
        schemes = {source.name: source.scheme for source in self.sources}
        route_names = [route.name for route in self.routes]
        if len(route_names) != len(set(route_names)):
            raise ValueError(f"routes: names must be unique, got {route_names}")
        for index, route in enumerate(self.routes):
            if not isinstance(route.trigger, SourceTrigger):
                continue
            source = route.trigger.source
            if source not in schemes:
                raise ValueError(f"routes.{index}.trigger.source: no source named {source!r} in sources[]")
            if route.post_delivery.action != "none" and schemes[source] not in POST_DELIVERY_SCHEMES:
                raise ValueError(
                    f"routes.{index}.post_delivery.action: {route.post_delivery.action} at the source is supported "
                    f"for {', '.join(POST_DELIVERY_SCHEMES)} sources; source {source!r} is {schemes[source]}, which "
                    "cannot delete or move files"
                )

    @property
    def routed_sources(self) -> frozenset[str]:
        return frozenset(route.trigger.source for route in self.routes if isinstance(route.trigger, SourceTrigger))

    @property
    def inbox_dir(self) -> Path:
        return self.inbox_root or self.data_dir / "apps"

    @property
    def staging_dir(self) -> Path:
        return Path(self.ingest.staging_dir) if self.ingest.staging_dir else self.data_dir / "staging"

    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or (self.data_dir / "products").as_uri()

    def open_storage(self) -> Storage:
        """The configured object storage (the default local directory is created on first use)."""
        if self.storage.url is None:
            (self.data_dir / "products").mkdir(parents=True, exist_ok=True)
        return open_storage(self.storage_url, self.storage.s3.settings())


def _apply_environment(document: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name.removeprefix(ENV_PREFIX).lower().split("__")
        if path[0] not in AuxipConfig.model_fields:
            continue  # other AUXIP_* variables (credentials, test settings) are not config keys
        target = document
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = yaml.safe_load(value) if value else value
    return document


def _with_routing_documents(document: dict[str, Any]) -> dict[str, Any]:
    """Add each routing document's sources, routes and inboxes to the configuration's, before validation (so their
    errors name the key, and `inbox://` targets resolve against every inbox)."""
    paths = document.get("routing_documents") or []
    if not isinstance(paths, list):
        return document  # the model names the key
    merged = {key: document.get(key) for key in ROUTING_KEYS}
    for index, path in enumerate(paths):
        where = f"routing_documents.{index}"
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc}") from None
        if not isinstance(loaded, dict) or set(loaded) - set(ROUTING_KEYS):
            raise ConfigError(f"{where}: {path} must be a mapping of {', '.join(ROUTING_KEYS)} only")
        for key in ("sources", "routes"):
            merged[key] = list(merged[key] or []) + list(loaded.get(key) or [])
        merged["inboxes"] = dict(merged["inboxes"] or {}) | dict(loaded.get("inboxes") or {})
    return document | {key: value for key, value in merged.items() if value is not None}


def _format(error: ValidationError, where: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {message}")
    return f"invalid configuration in {where}:\n" + "\n".join(lines)


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> AuxipConfig:
    """Read `path` (YAML) if given, apply `AUXIP_...` overrides, validate."""
    document: dict[str, Any] = {}
    where = "the environment"
    if path is not None:
        where = str(path)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"invalid configuration in {path}: the top level must be a mapping of keys")
        document = loaded or {}
    document = _apply_environment(document, dict(os.environ if environ is None else environ))
    document = _with_routing_documents(document)
    if document.get("routing_documents"):
        # Their sources and routes follow the file's own in `sources[]` and `routes[]`: say where indexes point.
        where += f" (with the routing documents {', '.join(map(str, document['routing_documents']))})"
    try:
        return AuxipConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_format(exc, where)) from None
