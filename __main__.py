"""The Pulumi program: read the validated stack config and wire the enabled layers. Nothing else lives here."""

import pulumi

from auxip.deploy.context import cluster_context
from auxip.deploy.layer import Apps, AppsArgs
from auxip_platform.infra.layer import Infra, InfraArgs
from auxip_platform.infra.stack_config import load_engine_config
from auxip_platform.monitoring.layer import Monitoring
from auxip_platform.platform import api_server_only
from auxip_platform.platform.baseline import Baseline, BaselineArgs
from auxip_platform.platform.services.layer import ClusterServices, cluster_services_args
from auxip_platform.security.layer import Security

config = load_engine_config()
stack = pulumi.get_stack()
layers = config.layers
baseline: Baseline | None = None

if config.api_server_only is not None:
    # The suite's cluster tier: a real API server without nodes (nothing may wait for pods).
    api_server_only.register()

if layers.infra:
    infra = Infra(f"{stack}-infra", InfraArgs(environment=config.environment, stack=stack, config=config.infra))
    if infra.inventory is not None:
        pulumi.export("ansibleInventory", infra.inventory)
        pulumi.export("hosts", infra.host_table)
if layers.platform:
    baseline = Baseline(
        f"{stack}-baseline",
        BaselineArgs(
            kubernetes_version=config.kubernetes.version,
            namespaces=config.baseline_namespaces,
            quota_profiles=config.kubernetes.quota_profiles,
        ),
    )
    pulumi.export("namespaces", [ns.name for ns in config.kubernetes.namespaces])
    services = ClusterServices(
        f"{stack}-services",
        cluster_services_args(config, list(baseline.system_namespaces)),
        # Part of the platform layer: a child of the baseline, after the namespaces its objects go into.
        pulumi.ResourceOptions(
            parent=baseline, depends_on=[*baseline.namespaces, *baseline.system_namespaces.values()]
        ),
    )
    pulumi.export("containerdMirrors", services.mirror.containerd_mirrors)
    pulumi.export("mirroredImages", services.mirror.mirrored_images)
if layers.security:
    Security(f"{stack}-security")
if layers.monitoring:
    Monitoring(f"{stack}-monitoring")
if layers.apps:
    Apps(
        f"{stack}-apps",
        AppsArgs(
            registry_prefix=config.registry_prefix,
            kubernetes_version=config.kubernetes.version,
            namespaces=config.kubernetes.namespaces,
            config=config.apps,
            context=cluster_context(config),
        ),
        # Objects go into namespaces of the baseline and use the cluster services' CRDs (Kafka, cert-manager, Kong).
        pulumi.ResourceOptions(depends_on=[baseline] if baseline else None),
    )

pulumi.export("environment", config.environment)
