"""The AUXIP's own services: one Deployment per role of the project image, and the migration Job they wait for.

Every role runs `auxip serve --config /etc/auxip/auxip.yaml --role <role>` with the same configuration (the
`auxip-config` ConfigMap) and routing document (`auxip-routes`), mounted together at /etc/auxip. A change of the
configuration rolls every role (a checksum of it on the pod template); a change of the routing document rolls the
roles that read it (ingest and route). The catalog schema is migrated once per release by a Job named after the
image's version, which the Deployments depend on; each replica only checks the schema (`catalog.migrate: false`).

Per role: its own ServiceAccount without token, the restricted security context as the image's user, probes on
the http port (which also serves `/metrics`, announced by the scrape annotations), spread over nodes, emptyDirs for
/var/lib/auxip and /tmp. The api role gets a rolling update that never drops below its replicas, a
PodDisruptionBudget, a HorizontalPodAutoscaler and the Service the Ingress points at; ingest gets a
PodDisruptionBudget and prefers (and tolerates) the ingest worker pool when the stack has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.auxip_config import (
    CATALOG_URL_ENV,
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_KEY,
    CONFIG_MAP,
    DATA_DIR,
    HTTP_PORT,
    KAFKA_CERTS,
    ROUTES_CONFIG_MAP,
    ROUTES_KEY,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    checksum,
)
from auxip.deploy.context import ClusterContext, NodePool
from auxip.deploy.fields import image_version
from auxip.deploy.hosted_app import EXCHANGE_POD_LABELS, EXCHANGE_SOURCE_LABELS, EXCHANGE_TARGET_LABELS
from auxip.deploy.kafka_access import KAFKA_USER
from auxip.deploy.pod import IMAGE_USER, image, probe, resource_requirements, scratch_volume, security_contexts
from auxip.deploy.service_config import MIGRATION_RESOURCES, AuxipServiceConfig, Role, RoleConfig

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.platform.priority import WORKLOAD_DEFAULT, WORKLOAD_HIGH  # type: ignore[import-not-found]

meta, core, apps = k8s.meta.v1, k8s.core.v1, k8s.apps.v1

NAME = "auxip"
#: The roles that talk to Kafka (publish or consume events) and so mount the client certificate.
KAFKA_ROLES: frozenset[Role] = frozenset({"ingest", "route"})
#: The roles that read the routing document (sources and routes of the hosted applications' exchanges).
ROUTING_ROLES: frozenset[Role] = frozenset({"ingest", "route"})
#: The roles on the critical path of the mission (download API, ingestion, dissemination).
HIGH_PRIORITY_ROLES: frozenset[Role] = frozenset({"api", "ingest", "route"})
TMP_SIZE = "1Gi"
CONFIG_ANNOTATION = "auxip.esa.int/config-sha256"
ROUTES_ANNOTATION = "auxip.esa.int/routes-sha256"
MIGRATE = "migrate"


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": component}


def pod_labels(role: Role) -> dict[str, str]:
    """A role's pod labels: its selector, and the exchange labels the hosted applications' policies select."""
    labels = {**selector(role), "app.kubernetes.io/part-of": "auxip"}
    if role == "ingest":
        labels |= EXCHANGE_POD_LABELS | EXCHANGE_SOURCE_LABELS
    elif role == "route":
        labels |= EXCHANGE_POD_LABELS | EXCHANGE_TARGET_LABELS
    return labels


def deployment_name(role: Role) -> str:
    return f"{NAME}-{role}"


def migration_job_name(service: AuxipServiceConfig) -> str:
    """Named after the image's version: a new release is a new Job (a Job's pod template cannot change)."""
    return f"{NAME}-{MIGRATE}-{image_version(service.image)}"


def pdb_min_available(role: Role, config: RoleConfig) -> int | None:
    """The api and ingest roles keep all but one pod through voluntary disruptions (node drains); a single replica
    gets no budget, which would block every drain."""
    if role not in ("api", "ingest") or config.replicas < 2:
        return None
    return config.replicas - 1


def tolerations(pool: NodePool) -> list[core.TolerationArgs]:
    result = []
    for taint in pool.taints:
        key_value, _, effect = taint.rpartition(":")
        key, _, value = key_value.partition("=")
        operator = "Equal" if value else "Exists"
        result.append(core.TolerationArgs(key=key, operator=operator, value=value or None, effect=effect))
    return result


@dataclass(frozen=True)
class Scheduling:
    spread: list[core.TopologySpreadConstraintArgs] | None = None
    tolerations: list[core.TolerationArgs] | None = None
    affinity: core.AffinityArgs | None = None


@dataclass(frozen=True)
class AuxipServiceArgs:
    service: AuxipServiceConfig
    namespace: str
    registry_prefix: str
    context: ClusterContext
    #: The contents of the ConfigMaps the pods mount (their checksums roll the pods).
    config_text: str
    routes_text: str
    #: What the pods mount besides the configuration (the routing document's ConfigMap).
    mounted: Sequence[pulumi.Resource] = ()


class AuxipService(pulumi.ComponentResource):
    def __init__(self, name: str, args: AuxipServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:AuxipService", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        self.config_map = core.ConfigMap(
            CONFIG_MAP, metadata=self._metadata(CONFIG_MAP), data={CONFIG_KEY: args.config_text}, opts=child
        )
        self.migration = self._migration_job(child)
        self.deployments: dict[Role, apps.Deployment] = {}
        for role, config in args.service.roles.items():
            account = core.ServiceAccount(
                deployment_name(role),
                metadata=self._metadata(deployment_name(role), selector(role)),
                automount_service_account_token=False,
                opts=child,
            )
            self.deployments[role] = self._deployment(role, config, account)
            self._disruption_budget(role, config, child)
        self._api_service_and_autoscaler(child)
        self.register_outputs(
            {
                "deployments": [deployment_name(role) for role in self.deployments],
                "migrationJob": migration_job_name(args.service),
            }
        )

    def _metadata(self, name: str, labels: dict[str, str] | None = None) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(
            name=name,
            namespace=self.args.namespace,
            labels={"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "auxip", **(labels or {})},
        )

    # Pods --------------------------------------------------------------------------------------------------------

    def _env(self, role: Role | None) -> list[core.EnvVarArgs]:
        """The credentials, each from its Secret: the catalog URL for everyone, the S3 keys for the roles that
        touch products (the migration Job has no role and needs the catalog only)."""
        service = self.args.service

        def secret(variable: str, name: str, key: str) -> core.EnvVarArgs:
            ref = core.SecretKeySelectorArgs(name=name, key=key)
            return core.EnvVarArgs(name=variable, value_from=core.EnvVarSourceArgs(secret_key_ref=ref))

        env = [secret(CATALOG_URL_ENV, service.catalog.secret_name, service.catalog.key)]
        if role is not None and role != "notify":
            storage = service.storage
            env.append(secret(S3_ACCESS_KEY_ENV, storage.credentials_secret, storage.access_key_field))
            env.append(secret(S3_SECRET_KEY_ENV, storage.credentials_secret, storage.secret_key_field))
        return env

    def _uses_kafka(self, role: Role | None) -> bool:
        return role is not None and role in KAFKA_ROLES and self.args.context.kafka is not None

    def _volumes(self, role: Role | None, data_size: str) -> list[core.VolumeArgs]:
        config = [
            core.VolumeProjectionArgs(
                config_map=core.ConfigMapProjectionArgs(
                    name=CONFIG_MAP, items=[core.KeyToPathArgs(key=CONFIG_KEY, path=CONFIG_KEY)]
                )
            ),
            core.VolumeProjectionArgs(
                config_map=core.ConfigMapProjectionArgs(
                    name=ROUTES_CONFIG_MAP, items=[core.KeyToPathArgs(key=ROUTES_KEY, path=f"routes/{ROUTES_KEY}")]
                )
            ),
        ]
        volumes = [
            core.VolumeArgs(name="config", projected=core.ProjectedVolumeSourceArgs(sources=config)),
            scratch_volume("data", data_size),
            scratch_volume("tmp", TMP_SIZE),
        ]
        if self._uses_kafka(role):
            user = core.SecretProjectionArgs(
                name=KAFKA_USER,
                items=[core.KeyToPathArgs(key=key, path=key) for key in ("user.crt", "user.key")],
            )
            ca = core.SecretProjectionArgs(
                name=self.args.service.bus.cluster_ca_secret, items=[core.KeyToPathArgs(key="ca.crt", path="ca.crt")]
            )
            sources = [core.VolumeProjectionArgs(secret=user), core.VolumeProjectionArgs(secret=ca)]
            volumes.append(
                core.VolumeArgs(
                    name="kafka-client",
                    projected=core.ProjectedVolumeSourceArgs(sources=sources, default_mode=0o440),
                )
            )
        return volumes

    def _container(self, role: Role | None, config: RoleConfig | None) -> core.ContainerArgs:
        service = self.args.service
        _, security = security_contexts(IMAGE_USER)
        mounts = [
            core.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
            core.VolumeMountArgs(name="data", mount_path=DATA_DIR),
            core.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        if self._uses_kafka(role):
            mounts.append(core.VolumeMountArgs(name="kafka-client", mount_path=KAFKA_CERTS, read_only=True))
        readiness = liveness = None
        if role is None:  # the migration Job
            args = [MIGRATE, "--config", CONFIG_FILE]
            resources = resource_requirements(MIGRATION_RESOURCES)
        else:
            assert config is not None
            args = ["serve", "--config", CONFIG_FILE, "--role", role]
            resources = resource_requirements(config.resources)
            readiness = probe("http", "/health/ready", period_seconds=10, timeout_seconds=5)
            liveness = probe("http", "/health/live", initial_delay_seconds=20, period_seconds=20, timeout_seconds=5)
        return core.ContainerArgs(
            name=NAME,
            image=image(self.args.registry_prefix, service.image),
            image_pull_policy="Always",
            args=args,
            ports=[core.ContainerPortArgs(name="http", container_port=HTTP_PORT, protocol="TCP")] if role else None,
            env=self._env(role),
            resources=resources,
            security_context=security,
            volume_mounts=mounts,
            readiness_probe=readiness,
            liveness_probe=liveness,
        )

    def _pod_spec(
        self,
        role: Role | None,
        config: RoleConfig | None,
        account: str,
        priority: str,
        restart_policy: str | None = None,
        scheduling: Scheduling | None = None,
    ) -> core.PodSpecArgs:
        pod_security, _ = security_contexts(IMAGE_USER)
        scheduling = scheduling or Scheduling()
        return core.PodSpecArgs(
            priority_class_name=priority,
            service_account_name=account,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security,
            restart_policy=restart_policy,
            topology_spread_constraints=scheduling.spread,
            tolerations=scheduling.tolerations,
            affinity=scheduling.affinity,
            containers=[self._container(role, config)],
            volumes=self._volumes(role, config.data_size if config else TMP_SIZE),
        )

    # The migration Job ---------------------------------------------------------------------------------------------

    def _migration_job(self, opts: pulumi.ResourceOptions) -> k8s.batch.v1.Job:
        name = migration_job_name(self.args.service)
        account = core.ServiceAccount(
            f"{NAME}-{MIGRATE}",
            metadata=self._metadata(f"{NAME}-{MIGRATE}", selector(MIGRATE)),
            automount_service_account_token=False,
            opts=opts,
        )
        labels = {**selector(MIGRATE), "app.kubernetes.io/part-of": "auxip"}
        return k8s.batch.v1.Job(
            name,
            metadata=self._metadata(name, selector(MIGRATE)),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                # Long enough for the largest migration; a stuck one fails the release instead of hanging it.
                active_deadline_seconds=3600,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels),
                    spec=self._pod_spec(None, None, f"{NAME}-{MIGRATE}", WORKLOAD_HIGH, restart_policy="Never"),
                ),
            ),
            # The Job keeps its name for a release; anything else changed in it is a new run of the same name.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.config_map, account, *self.args.mounted], delete_before_replace=True
            ),
        )

    # The roles -------------------------------------------------------------------------------------------------------

    def _annotations(self, role: Role) -> dict[str, str]:
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(HTTP_PORT),
            "prometheus.io/path": "/metrics",
            CONFIG_ANNOTATION: checksum(self.args.config_text),
        }
        if role in ROUTING_ROLES:
            annotations[ROUTES_ANNOTATION] = checksum(self.args.routes_text)
        return annotations

    def _scheduling(self, role: Role) -> Scheduling:
        """Spread over nodes; the ingest role also prefers, and tolerates, the ingest worker pool."""
        spread = core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule",
            label_selector=meta.LabelSelectorArgs(match_labels=selector(role)),
        )
        pool = self.args.context.ingest_pool
        if role != "ingest" or pool is None:
            return Scheduling([spread])
        (key, value), *_ = pool.labels.items()
        term = core.NodeSelectorTermArgs(
            match_expressions=[core.NodeSelectorRequirementArgs(key=key, operator="In", values=[value])]
        )
        preferred = [core.PreferredSchedulingTermArgs(weight=100, preference=term)]
        affinity = core.AffinityArgs(
            node_affinity=core.NodeAffinityArgs(preferred_during_scheduling_ignored_during_execution=preferred)
        )
        return Scheduling([spread], tolerations(pool), affinity)

    def _deployment(self, role: Role, config: RoleConfig, account: core.ServiceAccount) -> apps.Deployment:
        name = deployment_name(role)
        priority = WORKLOAD_HIGH if role in HIGH_PRIORITY_ROLES else WORKLOAD_DEFAULT
        # The api role never has fewer ready pods than configured during a rollout: one more starts first.
        unavailable = 0 if role == "api" else 1
        autoscaled = role == "api"
        return apps.Deployment(
            name,
            metadata=self._metadata(name, selector(role)),
            spec=apps.DeploymentSpecArgs(
                replicas=config.replicas,
                selector=meta.LabelSelectorArgs(match_labels=selector(role)),
                strategy=apps.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=apps.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=unavailable),
                ),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=pod_labels(role), annotations=self._annotations(role)),
                    spec=self._pod_spec(role, config, name, priority, scheduling=self._scheduling(role)),
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.migration, account, self.config_map, *self.args.mounted],
                # The HorizontalPodAutoscaler owns the api's replica count once created: a later `pulumi up`
                # must not reset it to the minimum.
                ignore_changes=["spec.replicas"] if autoscaled else None,
            ),
        )

    def _disruption_budget(self, role: Role, config: RoleConfig, opts: pulumi.ResourceOptions) -> None:
        min_available = pdb_min_available(role, config)
        if min_available is None:
            return
        k8s.policy.v1.PodDisruptionBudget(
            deployment_name(role),
            metadata=self._metadata(deployment_name(role), selector(role)),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=min_available, selector=meta.LabelSelectorArgs(match_labels=selector(role))
            ),
            opts=opts,
        )

    def _api_service_and_autoscaler(self, opts: pulumi.ResourceOptions) -> None:
        api = self.args.service.roles.api
        name = deployment_name("api")
        self.api_service = core.Service(
            name,
            metadata=self._metadata(name, selector("api")),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector("api"),
                ports=[core.ServicePortArgs(name="http", port=HTTP_PORT, target_port="http", protocol="TCP")],
            ),
            opts=opts,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            name,
            metadata=self._metadata(name, selector("api")),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=name
                ),
                min_replicas=api.replicas,
                max_replicas=api.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=api.target_cpu_utilization
                            ),
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployments["api"]]),
        )
