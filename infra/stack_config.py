"""The stack configuration: one typed model, validated once, with errors that name the offending key.

Both a running Pulumi program (config from the engine) and offline checks (a `Pulumi.<stack>.yaml` file) go through
`load_stack_config`, so what CI checks is exactly what `pulumi up` would accept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from auxip.deploy.config import AppsConfig, ExchangeStorage
from auxip.deploy.fields import ComputeAmounts, memory_bytes, millicores
from auxip.deploy.service_config import AuxipServiceConfig
from auxip.validation import require_unique
from auxip_platform.infra.config import InfraConfig
from auxip_platform.platform.services.config import ClusterServicesConfig
from auxip_platform.platform.system_namespaces import SYSTEM_NAMESPACES

PROJECT = "auxip-platform"

#: Config keys whose values are credentials: they must arrive as Pulumi secrets (`pulumi config set --secret`).
SECRET_KEY_PATTERN = re.compile(r"password|passwd|secret|token|credential|private_?key|api_?key", re.IGNORECASE)

#: Kubernetes minor versions whose schemas the offline validator ships (kubernetes-validate 1.37).
SUPPORTED_KUBERNETES = [f"1.{minor}" for minor in range(25, 38)]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class StackConfigError(ValueError):
    """The stack configuration is invalid; `str()` lists every problem as `<key>: <what to fix>`."""


class StrictModel(BaseModel):
    """Unknown keys are errors (typos must not be silently ignored); keys are camelCase as in Pulumi config."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class LayerToggles(StrictModel):
    infra: bool = True
    platform: bool = True
    security: bool = True
    monitoring: bool = True
    apps: bool = True


class NamespaceConfig(StrictModel):
    name: str = Field(pattern=DNS_LABEL)
    pod_security: Literal["restricted", "baseline", "privileged"] = "restricted"
    exemption_reason: str | None = None
    #: The `kubernetes.quotaProfiles` entry sizing its ResourceQuota and LimitRange (`default` when unset). A hosted
    #: application's namespace is sized by `apps.hosted[].quota` instead and must leave this unset.
    quota: str | None = Field(default=None, pattern=DNS_LABEL)

    @model_validator(mode="after")
    def _exemption_needs_reason(self) -> NamespaceConfig:
        if self.pod_security != "restricted" and not (self.exemption_reason or "").strip():
            raise ValueError(
                f"namespace {self.name!r} is {self.pod_security!r}: "
                "set exemptionReason to say why it cannot be restricted"
            )
        return self


class ContainerDefaults(StrictModel):
    """The namespace's LimitRange for containers: what a container gets when it sets nothing, and its ceiling."""

    requests: ComputeAmounts
    limits: ComputeAmounts
    max: ComputeAmounts

    @model_validator(mode="after")
    def _ordered(self) -> ContainerDefaults:
        if not self.requests.fits_in(self.limits):
            raise ValueError("container.requests must not exceed container.limits")
        if not self.limits.fits_in(self.max):
            raise ValueError("container.limits must not exceed container.max")
        return self


class QuotaProfile(StrictModel):
    """A namespace's ResourceQuota (sums over all its pods and claims) and the LimitRange defaults under it."""

    requests: ComputeAmounts
    limits: ComputeAmounts
    pods: int = Field(ge=1, le=1000)
    persistent_volume_claims: int = Field(default=0, ge=0, le=1000)
    #: Total storage all claims may request; required when claims are allowed.
    storage: str | None = Field(default=None, pattern=r"^[1-9][0-9]*(Mi|Gi|Ti)$")
    #: Services of type LoadBalancer / NodePort: 0 everywhere but the reverse proxy, so that nothing else is exposed.
    #: A LoadBalancer Service also takes one node port per port it exposes (the cloud's load balancer forwards to
    #: them), and the quota counts those too.
    load_balancers: int = Field(default=0, ge=0, le=10)
    node_ports: int = Field(default=0, ge=0, le=20)
    container: ContainerDefaults

    @model_validator(mode="after")
    def _consistent(self) -> QuotaProfile:
        if not self.requests.fits_in(self.limits):
            raise ValueError("requests must not exceed limits")
        if not self.container.max.fits_in(self.limits):
            raise ValueError("container.max must fit in limits (no container could ever start)")
        if not self.container.requests.fits_in(self.requests):
            raise ValueError("container.requests must fit in requests (no container could ever start)")
        if self.node_ports < self.load_balancers:
            raise ValueError("nodePorts must be at least loadBalancers: each LoadBalancer Service takes node ports")
        if self.persistent_volume_claims and self.storage is None:
            raise ValueError("persistentVolumeClaims > 0 needs storage (the total the claims may request)")
        return self


def _profile(
    requests: tuple[str, str],
    limits: tuple[str, str],
    pods: int,
    container: tuple[str, str, str, str, str, str],
    **extra: Any,
) -> QuotaProfile:
    cpu_req, mem_req, cpu_lim, mem_lim, cpu_max, mem_max = container
    return QuotaProfile(
        requests=ComputeAmounts(cpu=requests[0], memory=requests[1]),
        limits=ComputeAmounts(cpu=limits[0], memory=limits[1]),
        pods=pods,
        container=ContainerDefaults(
            requests=ComputeAmounts(cpu=cpu_req, memory=mem_req),
            limits=ComputeAmounts(cpu=cpu_lim, memory=mem_lim),
            max=ComputeAmounts(cpu=cpu_max, memory=mem_max),
        ),
        **extra,
    )


#: Built-in profiles; a stack overrides one by giving the whole profile under the same key, or adds its own.
#: `default` is for AUXIP namespaces; the others are those of `platform/system_namespaces.py`.
DEFAULT_QUOTA_PROFILES: dict[str, QuotaProfile] = {
    "default": _profile(("4", "8Gi"), ("8", "16Gi"), 50, ("100m", "128Mi", "500m", "512Mi", "4", "8Gi"),
                        persistent_volume_claims=10, storage="500Gi"),
    # Controllers and webhooks: a handful of small pods, no storage.
    "operator": _profile(("1", "2Gi"), ("4", "8Gi"), 15, ("50m", "64Mi", "250m", "256Mi", "2", "2Gi")),
    # DaemonSets: one pod per node and per agent, so room for a few hundred nodes.
    "node-agent": _profile(("8", "16Gi"), ("32", "64Gi"), 300, ("50m", "64Mi", "500m", "512Mi", "2", "2Gi")),
    # The reverse proxy: the only namespace allowed a LoadBalancer Service (two, each with an HTTP and an HTTPS
    # port, hence four node ports: found by the cluster tier, where the API server refused Kong's proxy Service).
    "ingress": _profile(("4", "8Gi"), ("8", "16Gi"), 20, ("250m", "256Mi", "1", "1Gi", "4", "4Gi"),
                        load_balancers=2, node_ports=4),
    # Stateful services (Kafka, Harbor): claims and room for brokers/registries.
    "data": _profile(("8", "32Gi"), ("16", "64Gi"), 40, ("250m", "512Mi", "1", "2Gi", "4", "16Gi"),
                     persistent_volume_claims=30, storage="4Ti"),
}  # fmt: skip


class KubernetesConfig(StrictModel):
    version: str = "1.31"
    namespaces: list[NamespaceConfig] = Field(default_factory=list)
    #: Quota profiles by name, merged over `DEFAULT_QUOTA_PROFILES`.
    quota_profiles: dict[str, QuotaProfile] = Field(default_factory=lambda: dict(DEFAULT_QUOTA_PROFILES))

    @field_validator("quota_profiles")
    @classmethod
    def _over_defaults(cls, value: dict[str, QuotaProfile]) -> dict[str, QuotaProfile]:
        # The system namespaces always find their profile, whatever a stack overrides.
        return {**DEFAULT_QUOTA_PROFILES, **value}

    @field_validator("version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_KUBERNETES)} (schemas available offline)")
        return value

    @field_validator("namespaces")
    @classmethod
    def _unique_namespaces(cls, value: list[NamespaceConfig]) -> list[NamespaceConfig]:
        require_unique([ns.name for ns in value], "namespace names")
        return value


class ApiServerOnly(StrictModel):
    """The cluster is a Kubernetes API server without nodes: the suite's cluster tier, never a real stack.

    Set, it changes what only nodes could satisfy and nothing else: the charts are installed from a directory of
    packaged charts (no chart repository is reachable there) and no Helm release or Kubernetes object waits for pods,
    endpoints or load balancers that cannot appear (`auxip_platform.platform.api_server_only`).
    """

    #: Packaged charts named `<chart>-<version>.tgz`, as `helm package` writes them (`../shared/charts`).
    chart_directory: Path

    @field_validator("chart_directory")
    @classmethod
    def _absolute_directory(cls, value: Path) -> Path:
        if not value.is_absolute() or not value.is_dir():
            raise ValueError(f"{value} is not an absolute path to a directory of packaged charts")
        return value


class StackConfig(StrictModel):
    environment: Literal["dev", "staging", "prod"]
    #: Every image is pulled through this prefix (an internal Harbor mirror in production); no scheme.
    registry_prefix: str = Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")
    layers: LayerToggles = LayerToggles()
    kubernetes: KubernetesConfig = KubernetesConfig()
    #: Machines for the platform (OpenStack or existing hosts); without it the infra layer creates nothing.
    infra: InfraConfig | None = None
    apps: AppsConfig = AppsConfig()
    #: Calico, cert-manager, Kong, Kafka, PostgreSQL, storage classes, the registry mirror (platform/services).
    cluster_services: ClusterServicesConfig = ClusterServicesConfig()
    api_server_only: ApiServerOnly | None = None

    def cross_check(self) -> list[tuple[str, str]]:
        """(key, problem) pairs that involve several sections; each key names the entry to fix."""
        return [*_hosted_app_problems(self), *_namespace_problems(self), *_auxip_problems(self)]

    @property
    def baseline_namespaces(self) -> list[NamespaceConfig]:
        """The declared namespaces the baseline creates: all but those of hosted applications, which create their own
        (with the same helper) so that their quotas, policies and workloads are children of the application."""
        owned = {app.namespace for app in self.apps.hosted if app.kind == "kubernetes"}
        return [ns for ns in self.kubernetes.namespaces if ns.name not in owned]


def _namespace_problems(config: StackConfig) -> list[tuple[str, str]]:
    problems = []
    profiles = config.kubernetes.quota_profiles
    hosted = {app.namespace for app in config.apps.hosted if app.kind == "kubernetes"}
    for index, ns in enumerate(config.kubernetes.namespaces):
        key = f"kubernetes.namespaces.{index}"
        if ns.name in SYSTEM_NAMESPACES:
            # Its level and reason are code (platform/system_namespaces.py), created by the baseline in every stack.
            why = f"{ns.name!r} is a system namespace declared in platform/system_namespaces.py; remove it here"
            problems.append((f"{key}.name", why))
        elif ns.quota is not None and ns.name in hosted:
            problems.append((f"{key}.quota", "a hosted application's namespace is sized by apps.hosted[].quota"))
        elif ns.quota is not None and ns.quota not in profiles:
            why = f"unknown quota profile {ns.quota!r}; use one of {', '.join(sorted(profiles))} or add it"
            problems.append((f"{key}.quota", why + " to kubernetes.quotaProfiles"))
    return problems


def _hosted_vm_names(infra: InfraConfig | None) -> set[str]:
    if infra is None:
        return set()
    if infra.openstack is not None:
        return {vm.name for vm in infra.openstack.hosted_vms}
    return {host.group for host in infra.existing_hosts if host.role == "hosted" and host.group}


def _vm_reaches_storage(infra: InfraConfig | None, storage: ExchangeStorage) -> bool:
    """False only when the OpenStack security groups provably block the VM from its inbox/outbox."""
    openstack = infra.openstack if infra else None
    if openstack is None or not openstack.restrict_egress:
        return True  # existing hosts: their firewall is managed elsewhere
    return any(
        storage.cidr.subnet_of(rule.cidr) and rule.protocol == "tcp" and storage.port in rule.ports
        for rule in openstack.egress
    )


def _hosted_app_problems(config: StackConfig) -> list[tuple[str, str]]:
    apps = config.apps
    if not apps.hosted:
        return []
    problems = []
    namespaces = {ns.name for ns in config.kubernetes.namespaces}
    if apps.auxip_namespace not in namespaces:
        problems.append(
            ("apps.auxipNamespace", f"{apps.auxip_namespace!r} is not in kubernetes.namespaces (the routes go there)")
        )
    vms = _hosted_vm_names(config.infra)
    storage = apps.exchange_storage
    for index, app in enumerate(apps.hosted):
        key = f"apps.hosted.{index}"
        if app.kind == "kubernetes" and app.namespace not in namespaces:
            why = f"declare its namespace {app.namespace!r} in kubernetes.namespaces (with its Pod Security level)"
            problems.append((f"{key}.name", why))
        elif app.kind == "vm" and app.name not in vms:
            why = f"vm, but the infra layer has no hosted VM {app.name!r} (openstack.hostedVms[].name, or an "
            problems.append((f"{key}.kind", why + "existing host with role hosted and that group)"))
        elif app.kind == "vm" and storage is not None and not _vm_reaches_storage(config.infra, storage):
            why = f"vm, but no infra.openstack.egress rule lets it reach exchangeStorage {storage.cidr}:{storage.port}"
            problems.append((f"{key}.kind", why))
    return problems


def _auxip_problems(config: StackConfig) -> list[tuple[str, str]]:
    """The AUXIP's services (`apps.auxip`): what they need from the rest of the stack, the configuration generated
    for the program (validated by the program's own loader), and room in their namespace's quota."""
    service = config.apps.auxip
    if service is None:
        return []
    from auxip.deploy.auxip_config import auxip_document, problems
    from auxip.deploy.context import cluster_context
    from auxip.deploy.exchanges import routing_document

    namespace = config.apps.auxip_namespace
    namespaces = {ns.name: ns for ns in config.kubernetes.namespaces}
    found: list[tuple[str, str]] = []
    if namespace not in namespaces:
        if not config.apps.hosted:  # else already said by `_hosted_app_problems`
            found.append(
                ("apps.auxipNamespace", f"{namespace!r} is not in kubernetes.namespaces (the AUXIP runs there)")
            )
        return found
    services = config.cluster_services
    if services.postgres is None:
        why = "the AUXIP's catalog is the CloudNativePG cluster: configure clusterServices.postgres"
        found.append(("apps.auxip", why))
    if service.ingress is not None and not (services.kong.enabled and services.cert_manager.enabled):
        found.append(("apps.auxip.ingress", "needs clusterServices.kong and clusterServices.certManager enabled"))
    context = cluster_context(config)
    if service.storage.bucket is None and context.products_bucket is None:
        why = "no bucket: set it, or give the infra layer a bucket of purpose products (infra.openstack.buckets)"
        found.append(("apps.auxip.storage.bucket", why))
    if found:
        return found
    document = auxip_document(service, namespace, context)
    found += problems(document, routing_document(config.apps), service)
    profile_name = namespaces[namespace].quota or "default"
    found += _auxip_quota_problems(service, config.kubernetes.quota_profiles[profile_name], profile_name)
    return found


def _auxip_quota_problems(service: AuxipServiceConfig, profile: QuotaProfile, name: str) -> list[tuple[str, str]]:
    found = []
    rows = service.footprint()
    for key, _, containers in rows:
        if not all(c.limits.fits_in(profile.container.max) for c in containers):
            why = f"a container's limits exceed container.max of the quota profile {name!r}"
            found.append((".".join(filter(None, ("apps.auxip", key))), why))
    pods = sum(count for _, count, _ in rows)
    if pods > profile.pods:
        found.append(("apps.auxip", f"up to {pods} pods at once, the quota profile {name!r} allows {profile.pods}"))
    for kind in ("requests", "limits"):
        cpu = sum(millicores(getattr(c, kind).cpu) * count for _, count, cs in rows for c in cs)
        memory = sum(memory_bytes(getattr(c, kind).memory) * count for _, count, cs in rows for c in cs)
        allowed = getattr(profile, kind)
        if cpu > millicores(allowed.cpu) or memory > memory_bytes(allowed.memory):
            why = f"its pods need up to {cpu}m CPU and {memory // 2**20}Mi of {kind} (api at maxReplicas, a surge "
            why += f"each), more than the quota profile {name!r} allows ({allowed.cpu}, {allowed.memory})"
            found.append(("apps.auxip", why))
    return found


def _decode(value: Any) -> Any:
    # The engine hands object and array values over as JSON text; scalars stay text and pydantic coerces them,
    # so that a version like "1.30" is never turned into the float 1.3.
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        return json.loads(value)
    return value


def _format_errors(error: ValidationError, where: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the configuration reference)"
        lines.append(f"  {PROJECT}:{key}: {message}")
    return f"invalid stack configuration in {where}:\n" + "\n".join(lines)


def load_stack_config(
    config: Mapping[str, Any], secret_keys: Iterable[str] = (), where: str = "stack config"
) -> StackConfig:
    """Validate the `<project>:<key>` entries of `config`; keys of other namespaces (providers) are ignored."""
    secret = set(secret_keys)
    ours: dict[str, Any] = {}
    problems = []
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue
        if SECRET_KEY_PATTERN.search(key) and full_key not in secret:
            problems.append(f"  {full_key}: holds a credential in plain text; set it with `pulumi config set --secret`")
        ours[key] = _decode(value)
    if problems:
        raise StackConfigError(f"invalid stack configuration in {where}:\n" + "\n".join(problems))
    try:
        stack_config = StackConfig.model_validate(ours)
    except ValidationError as exc:
        raise StackConfigError(_format_errors(exc, where)) from None
    cross = stack_config.cross_check()
    if cross:
        lines = "\n".join(f"  {PROJECT}:{key}: {message}" for key, message in cross)
        raise StackConfigError(f"invalid stack configuration in {where}:\n{lines}")
    return stack_config


def _as_engine_value(value: Any) -> str:
    """The engine passes every config value as text: objects, arrays and booleans as JSON."""
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return str(value)


def engine_config(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The config map and secret keys of a stack file's `config:` mapping, as the engine would pass them.

    Secure values stay encrypted: the placeholder only proves they are secrets, which is all validation needs.
    """
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in document.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(key)
            config[key] = "<secret>"
        else:
            config[key] = _as_engine_value(value)
    return config, secret_keys


def read_stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The config map and secret keys of a `Pulumi.<stack>.yaml` file, as the engine would pass them."""
    document = yaml.safe_load(path.read_text()) or {}
    return engine_config(document.get("config") or {})


def load_stack_file(path: Path) -> StackConfig:
    config, secret_keys = read_stack_file(path)
    return load_stack_config(config, secret_keys, where=str(path))


def load_engine_config() -> StackConfig:
    """The stack config as the Pulumi engine (or the mocks harness) hands it to the running program."""
    from pulumi.runtime import config as engine

    config = {**engine.get_config_env(), **engine.CONFIG.get()}
    secret_keys = {*engine.get_config_secret_keys_env(), *(key for key in config if engine.is_config_secret(key))}
    return load_stack_config(config, secret_keys, where="Pulumi stack config")
