"""clamd for the AUXIP's ingestion: a Deployment and Service in the AUXIP namespace, reached by the ingest pods only.

Signatures come from a private mirror (freshclam `PrivateMirror`, e.g. a cvdupdate server inside the platform):
freshclam runs as a native sidecar (an init container that keeps running), whose startup probe holds clamd back
until a full database is there, then checks the mirror every two hours; clamd reloads a changed database itself
(`SelfCheck`). Both run as the unprivileged image user on a read-only root, the database in an emptyDir.

Limits: clamd skips, and reports clean, a stream above `MaxFileSize`/`MaxScanSize` unless `AlertExceedsMax` is on;
they are set at the largest single file libclamav scans (2 GiB - 1), and a larger one is reported as
`Heuristics.Limits.Exceeded`, so the AUXIP quarantines it instead of letting it pass unscanned.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.auxip_config import CLAMD_PORT, CLAMD_SERVICE, checksum
from auxip.deploy.fields import default_port
from auxip.deploy.pod import IMAGE_USER, image, probe, resource_requirements, scratch_volume, security_contexts
from auxip.deploy.service_config import FRESHCLAM_RESOURCES, ScannerConfig

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.platform.priority import WORKLOAD_HIGH  # type: ignore[import-not-found]

meta, core, net = k8s.meta.v1, k8s.core.v1, k8s.networking.v1

DATABASE_DIR = "/var/lib/clamav"
CONFIG_DIR = "/etc/clamav"
LABELS = {"app.kubernetes.io/name": "clamd", "app.kubernetes.io/part-of": "auxip"}
#: The signature database (main, daily, bytecode: about 400 MB), twice during a reload.
DATABASE_SIZE = "2Gi"
#: clamd spools each INSTREAM to its temporary directory: room for a few of the largest products at once.
SPOOL_SIZE = "10Gi"
#: Every database freshclam keeps is there (`.cvd` as downloaded, `.cld` once updated by diffs).
DATABASE_PRESENT = (
    f"for db in main daily bytecode; do [ -s {DATABASE_DIR}/$db.cvd ] || [ -s {DATABASE_DIR}/$db.cld ] || exit 1; done"
)


def clamd_conf() -> str:
    return "\n".join(
        [
            "Foreground yes",
            "LogFile /dev/stdout",
            "LogFileUnlock yes",
            "LogTime yes",
            f"DatabaseDirectory {DATABASE_DIR}",
            "TemporaryDirectory /tmp",
            f"TCPSocket {CLAMD_PORT}",
            "TCPAddr 0.0.0.0",
            "MaxThreads 12",
            "StreamMaxLength 2000M",
            "MaxFileSize 2000M",
            "MaxScanSize 4000M",
            "AlertExceedsMax yes",
            "SelfCheck 600",
            "ConcurrentDatabaseReload yes",
            "",
        ]
    )


def freshclam_conf(mirror_url: str) -> str:
    return "\n".join(
        [
            "Foreground yes",
            "LogTime yes",
            f"DatabaseDirectory {DATABASE_DIR}",
            # The mirror only: no DNS TXT lookups and no ClamAV CDN (no egress is open to either).
            f"PrivateMirror {mirror_url}",
            # A mirror serving whole .cvd files (cvdupdate) has no .cdiff scripts.
            "ScriptedUpdates no",
            "Checks 12",
            "ConnectTimeout 30",
            "",
        ]
    )


@dataclass(frozen=True)
class ClamdArgs:
    scanner: ScannerConfig
    namespace: str
    registry_prefix: str
    #: The pods that may scan (the ingest role's): the only ingress clamd gets.
    client_labels: dict[str, str]


class Clamd(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClamdArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:Clamd", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        scanner, namespace = args.scanner, args.namespace
        self._namespace = namespace
        config = {"clamd.conf": clamd_conf(), "freshclam.conf": freshclam_conf(scanner.mirror_url)}
        self.config_map = core.ConfigMap(
            "clamd-config", metadata=self._metadata("clamd-config"), data=config, opts=child
        )
        account = core.ServiceAccount(
            "clamd", metadata=self._metadata(CLAMD_SERVICE), automount_service_account_token=False, opts=child
        )
        pod_security, container_security = security_contexts(IMAGE_USER)
        mounts = [
            core.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
            core.VolumeMountArgs(name="database", mount_path=DATABASE_DIR),
            core.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        freshclam = core.ContainerArgs(
            name="freshclam",
            image=image(args.registry_prefix, scanner.image),
            image_pull_policy="Always",
            command=["freshclam", "--daemon", "--foreground", "--stdout", f"--config-file={CONFIG_DIR}/freshclam.conf"],
            # A native sidecar: started before clamd, kept running beside it.
            restart_policy="Always",
            resources=resource_requirements(FRESHCLAM_RESOURCES),
            security_context=container_security,
            volume_mounts=mounts,
            startup_probe=core.ProbeArgs(
                exec_=core.ExecActionArgs(command=["sh", "-c", DATABASE_PRESENT]),
                period_seconds=10,
                failure_threshold=60,
            ),
        )
        clamd = core.ContainerArgs(
            name="clamd",
            image=image(args.registry_prefix, scanner.image),
            image_pull_policy="Always",
            command=["clamd", "--foreground", f"--config-file={CONFIG_DIR}/clamd.conf"],
            ports=[core.ContainerPortArgs(name="clamd", container_port=CLAMD_PORT)],
            resources=resource_requirements(scanner.resources),
            security_context=container_security,
            volume_mounts=mounts,
            # Loading the database takes a minute or two: liveness starts once clamd answered.
            startup_probe=probe("clamd", period_seconds=10, failure_threshold=30),
            readiness_probe=probe("clamd", period_seconds=10),
            liveness_probe=probe("clamd", period_seconds=20, failure_threshold=3),
        )
        self.deployment = k8s.apps.v1.Deployment(
            "clamd",
            metadata=self._metadata(CLAMD_SERVICE),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=scanner.replicas,
                selector=meta.LabelSelectorArgs(match_labels=LABELS),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                ),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(
                        labels=LABELS,
                        annotations={"auxip.esa.int/config-sha256": checksum("\n".join(config.values()))},
                    ),
                    spec=core.PodSpecArgs(
                        # Ingestion waits for it: as important as the ingest pods.
                        priority_class_name=WORKLOAD_HIGH,
                        service_account_name=CLAMD_SERVICE,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod_security,
                        init_containers=[freshclam],
                        containers=[clamd],
                        volumes=[
                            core.VolumeArgs(
                                name="config", config_map=core.ConfigMapVolumeSourceArgs(name="clamd-config")
                            ),
                            scratch_volume("database", DATABASE_SIZE),
                            scratch_volume("tmp", SPOOL_SIZE),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account, self.config_map]),
        )
        self.service = core.Service(
            "clamd",
            metadata=self._metadata(CLAMD_SERVICE),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=LABELS,
                ports=[core.ServicePortArgs(name="clamd", port=CLAMD_PORT, target_port="clamd", protocol="TCP")],
            ),
            opts=child,
        )
        net.NetworkPolicy(
            "clamd",
            metadata=self._metadata(CLAMD_SERVICE),
            spec=net.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=LABELS),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    net.NetworkPolicyIngressRuleArgs(
                        from_=[
                            net.NetworkPolicyPeerArgs(
                                pod_selector=meta.LabelSelectorArgs(match_labels=args.client_labels)
                            )
                        ],
                        ports=[net.NetworkPolicyPortArgs(protocol="TCP", port=CLAMD_PORT)],
                    )
                ],
                egress=[
                    net.NetworkPolicyEgressRuleArgs(
                        to=[net.NetworkPolicyPeerArgs(ip_block=net.IPBlockArgs(cidr=str(scanner.mirror_cidr)))],
                        ports=[net.NetworkPolicyPortArgs(protocol="TCP", port=default_port(scanner.mirror_url))],
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs({"service": f"{CLAMD_SERVICE}.{namespace}.svc:{CLAMD_PORT}"})

    def _metadata(self, name: str) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(name=name, namespace=self._namespace, labels=LABELS)
