"""Every third-party chart and image the cluster services install, pinned in one place.

Images are written as their upstream repository path (`quay.io/jetstack/cert-manager-controller`): in the cluster
they are pulled as `<registryPrefix>/<path without the registry host>:<tag>` (`image_ref`), the same layout as the
hosted applications' images, so one replication rule per upstream registry fills the mirror (`mirrored_images()` is
exported for it). Digests are not pinned yet: no container registry is reachable from CI to resolve them; add
`digest=` here when the mirror's replication reports them, and every reference gains `@sha256:...`.

Where each version came from (checked 2026-12):
- cert-manager v1.21.2: the newest release the Go module proxy serves for github.com/cert-manager/cert-manager; its
  CRDs (deploy/crds) are the ones the tests validate against.
- CloudNativePG 1.25.1 (chart cloudnative-pg 0.23.2, which ships that operator): the release the Go module proxy
  serves for github.com/cloudnative-pg/cloudnative-pg; CRDs from config/crd/bases. 1.25 still has the in-tree
  `barmanObjectStore` backup (the Barman Cloud plugin replaces it from 1.26).
- Strimzi 1.2.0: the newest io.strimzi:api on Maven Central; its CRDs are generated from that jar with Strimzi's own
  io.strimzi:crd-generator 1.2.0 (the arguments of the upstream build). Kafka 4.3.1: `kafka.version` of the
  io.strimzi:strimzi 1.2.0 parent POM, the version that operator release builds and defaults to. KRaft only
  (Strimzi 1.x has no ZooKeeper support).
- Calico v3.30.3 (tigera-operator chart v3.30.3, operator v1.38.6): upstream release notes. Its CRDs are not
  served by any registry reachable here (github.com/tigera/operator and github.com/projectcalico/* are refused by
  the Go module proxy): the tests use hand-written schemas for the two kinds we render.
- Kong: chart kong 2.48.0, Kong Gateway 3.9.0, Kong Ingress Controller 3.4.1 (upstream release notes); CRDs from
  github.com/kong/kubernetes-configuration v1.1.0 (the module KIC 3.4 takes its CRDs from).
- PostgreSQL 17.2 (ghcr.io/cloudnative-pg/postgresql, the operand image CloudNativePG 1.25 defaults to the 17 line).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    #: The upstream Helm repository; `clusterServices.chartRepository` replaces it with an internal mirror.
    repository: str


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


CALICO_VERSION = "v3.30.3"
CERT_MANAGER_VERSION = "v1.21.2"
CNPG_VERSION = "1.25.1"
STRIMZI_VERSION = "1.2.0"
KAFKA_VERSION = "4.3.1"
KONG_VERSION = "3.9.0"
KIC_VERSION = "3.4.1"

CHARTS = {
    "calico": ChartPin("tigera-operator", CALICO_VERSION, "https://docs.tigera.io/calico/charts"),
    "cert-manager": ChartPin("cert-manager", CERT_MANAGER_VERSION, "https://charts.jetstack.io"),
    "kong": ChartPin("kong", "2.48.0", "https://charts.konghq.com"),
    "strimzi": ChartPin("strimzi-kafka-operator", STRIMZI_VERSION, "https://strimzi.io/charts/"),
    "cloudnative-pg": ChartPin("cloudnative-pg", "0.23.2", "https://cloudnative-pg.github.io/charts"),
}

IMAGES = {
    "tigera-operator": ImagePin("quay.io/tigera/operator", "v1.38.6"),
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


def mirrored_images(registry_prefix: str) -> list[dict[str, str]]:
    """Upstream → mirror pairs for every pinned image: what the registry mirror must replicate before an install."""
    return [{"upstream": pin.upstream_ref, "mirror": image_ref(registry_prefix, pin)} for pin in IMAGES.values()]
