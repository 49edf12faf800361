"""Every third-party chart and image the cluster services install, pinned in one place.

Images are written as their upstream repository path (`quay.io/jetstack/cert-manager-controller`): in the cluster
they are pulled as `<registryPrefix>/<path without the registry host>:<tag>` (`image_ref`), the same layout as the
hosted applications' images, so one replication rule per upstream registry fills the mirror (`mirrored_images()` is
exported for it). Digests are not pinned yet: no container registry is reachable from CI to resolve them; add
`digest=` here when the mirror's replication reports them, and every reference gains `@sha256:...`.

Where each version came from (checked 2026-12): the charts are the upstream releases in `../shared/charts/` (the
suite renders them with our values and installs them on a real API server); each operator's version is its chart's
appVersion, and the images are those the chart and the operator default to, pinned to an exact tag.
- Calico v3.32.1: charts tigera-operator v3.32.1 (Tigera operator v1.42.3) and crd.projectcalico.org.v1 v3.32.1,
  which carries the operator.tigera.io and crd.projectcalico.org CRDs (the operator chart no longer does).
- cert-manager v1.21.1 (chart v1.21.1, CRDs templated by the chart).
- Kong: chart kong 3.4.1, Kong Gateway 3.9.0 and Kong Ingress Controller 3.5.0 (the chart defaults to the floating
  `3.9` and `3.5` tags; we pin the patch release), CRDs in the chart.
- CloudNativePG 1.30.0 (chart cloudnative-pg 0.29.0). Its in-tree `barmanObjectStore` backup still exists in 1.30's
  Cluster CRD; the Barman Cloud plugin is the upstream direction and needs a plugin deployment of its own.
- Strimzi 1.2.0 (chart strimzi-kafka-operator 1.2.0) with Kafka 4.3.1, the newest Kafka that release supports. KRaft
  only (Strimzi 1.x has no ZooKeeper support).
- PostgreSQL 17.2 (ghcr.io/cloudnative-pg/postgresql), the operand image of the catalog cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AcceptedViolation:
    """A finding of our policy (`platform/policy.py`) in an object of an upstream chart that no chart value can fix,
    accepted for one pinned chart version with the reason. The render test requires exactly these findings, so a
    chart upgrade that fixes or adds one fails until this list is reviewed."""

    object_id: str
    rule: str
    reason: str


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    #: The upstream Helm repository; `clusterServices.chartRepository` replaces it with an internal mirror.
    repository: str
    accepted: tuple[AcceptedViolation, ...] = ()


@dataclass(frozen=True)
class ImagePin:
    #: Upstream reference without tag, registry host included (`quay.io/jetstack/cert-manager-controller`).
    upstream: str
    tag: str
    digest: str | None = None

    @property
    def path(self) -> str:
        """The repository path under the registry prefix: the upstream path without its registry host."""
        first, _, rest = self.upstream.partition("/")
        return rest if "." in first or ":" in first else self.upstream

    @property
    def upstream_ref(self) -> str:
        return f"{self.upstream}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def image_ref(registry_prefix: str, pin: ImagePin) -> str:
    """`<prefix>/<path>:<tag>[@digest]`: what pods pull."""
    return f"{registry_prefix.rstrip('/')}/{pin.path}:{pin.tag}" + (f"@{pin.digest}" if pin.digest else "")


def split_prefix(registry_prefix: str) -> tuple[str, str]:
    """(`harbor.auxip.internal`, `mirror`): charts that take an image registry and repository separately."""
    host, _, path = registry_prefix.rstrip("/").partition("/")
    return host, path


CALICO_VERSION = "v3.32.1"
TIGERA_OPERATOR_VERSION = "v1.42.3"
CERT_MANAGER_VERSION = "v1.21.1"
CNPG_VERSION = "1.30.0"
STRIMZI_VERSION = "1.2.0"
KAFKA_VERSION = "4.3.1"
KONG_VERSION = "3.9.0"
KIC_VERSION = "3.5.0"

CHARTS = {
    "calico-crds": ChartPin("crd.projectcalico.org.v1", CALICO_VERSION, "https://docs.tigera.io/calico/charts"),
    "calico": ChartPin(
        "tigera-operator",
        CALICO_VERSION,
        "https://docs.tigera.io/calico/charts",
        accepted=(
            AcceptedViolation(
                "Job/tigera-operator/tigera-operator-uninstall",
                "P6.resources",
                "the chart's pre-delete hook (it removes the Installation during helm uninstall) has no resources "
                "value; the namespace's LimitRange gives it default requests and limits at admission",
            ),
            AcceptedViolation(
                "Job/tigera-operator/tigera-operator-uninstall",
                "P8.priority-class",
                "the same hook has no priorityClassName value: it runs at the global default class, "
                "auxip-workload-default, which never preempts",
            ),
        ),
    ),
    "cert-manager": ChartPin("cert-manager", CERT_MANAGER_VERSION, "https://charts.jetstack.io"),
    "kong": ChartPin("kong", "3.4.1", "https://charts.konghq.com"),
    "strimzi": ChartPin("strimzi-kafka-operator", STRIMZI_VERSION, "https://strimzi.io/charts/"),
    "cloudnative-pg": ChartPin("cloudnative-pg", "0.29.0", "https://cloudnative-pg.github.io/charts"),
}

IMAGES = {
    "tigera-operator": ImagePin("quay.io/tigera/operator", TIGERA_OPERATOR_VERSION),
    # The Tigera operator pulls every Calico component as <Installation.registry><imagePath>/<name>:<Calico version>.
    "calico-node": ImagePin("quay.io/calico/node", CALICO_VERSION),
    "calico-cni": ImagePin("quay.io/calico/cni", CALICO_VERSION),
    "calico-kube-controllers": ImagePin("quay.io/calico/kube-controllers", CALICO_VERSION),
    "calico-typha": ImagePin("quay.io/calico/typha", CALICO_VERSION),
    "calico-apiserver": ImagePin("quay.io/calico/apiserver", CALICO_VERSION),
    "calico-csi": ImagePin("quay.io/calico/csi", CALICO_VERSION),
    "calico-node-driver-registrar": ImagePin("quay.io/calico/node-driver-registrar", CALICO_VERSION),
    "calico-pod2daemon-flexvol": ImagePin("quay.io/calico/pod2daemon-flexvol", CALICO_VERSION),
    "cert-manager-controller": ImagePin("quay.io/jetstack/cert-manager-controller", CERT_MANAGER_VERSION),
    "cert-manager-webhook": ImagePin("quay.io/jetstack/cert-manager-webhook", CERT_MANAGER_VERSION),
    "cert-manager-cainjector": ImagePin("quay.io/jetstack/cert-manager-cainjector", CERT_MANAGER_VERSION),
    "cert-manager-acmesolver": ImagePin("quay.io/jetstack/cert-manager-acmesolver", CERT_MANAGER_VERSION),
    "cert-manager-startupapicheck": ImagePin("quay.io/jetstack/cert-manager-startupapicheck", CERT_MANAGER_VERSION),
    "kong": ImagePin("docker.io/library/kong", KONG_VERSION),
    "kong-ingress-controller": ImagePin("docker.io/kong/kubernetes-ingress-controller", KIC_VERSION),
    "strimzi-operator": ImagePin("quay.io/strimzi/operator", STRIMZI_VERSION),
    "strimzi-kafka": ImagePin("quay.io/strimzi/kafka", f"{STRIMZI_VERSION}-kafka-{KAFKA_VERSION}"),
    "cloudnative-pg": ImagePin("ghcr.io/cloudnative-pg/cloudnative-pg", CNPG_VERSION),
    "postgresql": ImagePin("ghcr.io/cloudnative-pg/postgresql", "17.2"),
}


def accepted_violations() -> dict[tuple[str, str], str]:
    """(object id, rule) → reason, for every pinned chart."""
    return {(item.object_id, item.rule): item.reason for pin in CHARTS.values() for item in pin.accepted}


def mirrored_images(registry_prefix: str) -> list[dict[str, str]]:
    """Upstream → mirror pairs for every pinned image: what the registry mirror must replicate before an install."""
    return [{"upstream": pin.upstream_ref, "mirror": image_ref(registry_prefix, pin)} for pin in IMAGES.values()]
