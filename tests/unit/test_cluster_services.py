"""Cluster services (platform/services) under the SDK's mocks: pinned releases, images through the prefix, and the
custom resources we own (KRaft Kafka, the catalog's backups, the internal CA, Calico, Kong), with value assertions.

The releases' values are checked here, and what they make of the charts: each release is rendered from the upstream
chart in ../shared/charts (`auxip_testing.charts`), so pods, images and ports are asserted as the cluster gets them;
tests/render validates all of it (schemas, security policy, checkov) and checks the values keys.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from auxip_platform.infra.stack_config import StackConfigError, load_stack_config, load_stack_file, read_stack_file
from auxip_platform.platform.policy import image_problems
from auxip_platform.platform.services.common import ChartSource, api_server_egress
from auxip_platform.platform.services.config import ClusterServicesConfig, api_server_cidrs
from auxip_platform.platform.services.kafka import client_egress_rule as kafka_client_rule
from auxip_platform.platform.services.postgres import client_egress_rule as catalog_client_rule
from auxip_platform.platform.services.registry_mirror import containerd_mirrors
from auxip_platform.platform.services.versions import CHARTS, IMAGES, image_ref, mirrored_images
from auxip_testing.charts import RenderedRelease, chart_metadata, charts_directory, program, stack_charts
from auxip_testing.pulumi_mocks import REPO_ROOT, RegisteredResource
from auxip_testing.render import kubernetes_objects

RELEASE = "kubernetes:helm.sh/v3:Release"
UPSTREAM_REGISTRIES = ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "cgr.dev")
STACKS = ("dev", "prod")
CONFIGS = {stack: load_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml") for stack in STACKS}


@pytest.fixture(scope="module")
def programs() -> dict[str, list[RegisteredResource]]:
    return {stack: program(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def objects(programs: dict[str, list[RegisteredResource]]) -> dict[str, list[dict[str, Any]]]:
    return {stack: kubernetes_objects(resources) for stack, resources in programs.items()}


@pytest.fixture(scope="module")
def charts() -> dict[str, dict[str, RenderedRelease]]:
    """Per stack, each release (by name) rendered from its chart with its values."""
    return {stack: {r.release.name: r for r in stack_charts(stack)} for stack in STACKS}


#: Releases that run pods (calico-crds installs CRDs only).
OPERATORS = ("tigera-operator", "cert-manager", "kong", "strimzi", "cnpg")


def releases(resources: list[RegisteredResource]) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in resources if r.type == RELEASE}


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def policy(objects: list[dict[str, Any]], namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == namespace and o["metadata"]["name"] == name
    ]
    return found


def image_refs(values: Any, key: str = "") -> Iterator[str]:
    """Every image a chart's values name, in the shapes these charts use."""
    if isinstance(values, dict):
        if isinstance(values.get("repository"), str) and "tag" in values:
            yield f"{values['repository']}:{values['tag']}"
        if {"registry", "image", "version"} <= set(values):  # tigera-operator
            yield f"{values['registry']}/{values['image']}:{values['version']}"
        if isinstance(values.get("image"), str) and "tag" in values:  # calicoctl
            yield f"{values['image']}:{values['tag']}"
        if "defaultImageRegistry" in values:  # Strimzi: <registry>/<repository>/<name>:<tag> for every image
            registry, repository = values["defaultImageRegistry"], values["defaultImageRepository"]
            yield f"{registry}/{repository}/operator:{values['defaultImageTag']}"
        for name, value in values.items():
            yield from image_refs(value, name)
    elif isinstance(values, list):
        for value in values:
            yield from image_refs(value, key)
    elif isinstance(values, str) and key.endswith("IMAGE_NAME"):
        yield values


# Helm releases -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_operator_is_a_release_of_an_exactly_pinned_chart(
    programs: dict[str, list[RegisteredResource]], stack: str
) -> None:
    found = releases(programs[stack])
    # Calico's CRDs are a chart of their own, installed before the operator (whose chart no longer carries them).
    assert set(found) == {"calico-crds", *OPERATORS}
    assert found["calico-crds"]["values"] == {}
    assert found["tigera-operator"]["values"]["manageCRDs"] is False
    by_chart = {pin.chart: pin for pin in CHARTS.values()}
    mirror = CONFIGS[stack].cluster_services.chart_repository
    for name, inputs in found.items():
        chart = inputs["chart"].rsplit("/", 1)[-1]
        pin = by_chart[chart]
        assert inputs["version"] == pin.version, name
        assert inputs["version"][0].isdigit() or inputs["version"].startswith("v")  # an exact version, not a range
        assert not set(inputs["version"]) & set("^~*<>= x"), name
        if mirror:  # prod: every chart from Harbor's OCI chart project, no upstream repository at all
            assert inputs["chart"] == f"{mirror}/{chart}"
            assert "repositoryOpts" not in inputs
        else:
            assert inputs["repositoryOpts"] == {"repo": pin.repository.rstrip("/")}
        # The baseline creates the namespace (Pod Security labels, default-deny): Helm must not.
        assert (inputs["createNamespace"], inputs["atomic"]) == (False, True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_in_the_releases_is_pinned_and_pulled_through_the_prefix(
    programs: dict[str, list[RegisteredResource]], stack: str
) -> None:
    prefix = CONFIGS[stack].registry_prefix
    for name, inputs in releases(programs[stack]).items():
        if name not in OPERATORS:
            continue
        values = inputs["values"]
        refs = list(image_refs(values))
        assert refs, f"{name}: no image found in the values"
        for ref in refs:
            assert [rule for rule, _ in image_problems(ref, prefix)] == [], f"{name}: {ref}"
        # No upstream registry is named anywhere in the values: nothing bypasses the mirror.
        text = json.dumps(values)
        assert not [host for host in UPSTREAM_REGISTRIES if host in text], name


def test_release_images_are_the_pinned_versions(programs: dict[str, list[RegisteredResource]]) -> None:
    prefix = CONFIGS["prod"].registry_prefix
    values = {name: inputs["values"] for name, inputs in releases(programs["prod"]).items()}
    cert_manager = values["cert-manager"]
    assert {cert_manager[c]["image"]["tag"] for c in ("webhook", "cainjector", "startupapicheck")} == {"v1.21.1"}
    assert f"{cert_manager['image']['repository']}:{cert_manager['image']['tag']}" == (
        f"{prefix}/jetstack/cert-manager-controller:v1.21.1"
    )
    assert values["tigera-operator"]["tigeraOperator"] == {
        "registry": "harbor.auxip.internal",
        "image": "mirror/tigera/operator",
        "version": "v1.42.3",
    }
    strimzi = values["strimzi"]
    assert (strimzi["defaultImageRegistry"], strimzi["defaultImageRepository"], strimzi["defaultImageTag"]) == (
        "harbor.auxip.internal",
        "mirror/strimzi",
        "1.2.0",
    )
    assert values["cnpg"]["config"]["data"]["POSTGRES_IMAGE_NAME"] == f"{prefix}/cloudnative-pg/postgresql:17.2"
    kong = values["kong"]
    assert kong["image"] == {"repository": f"{prefix}/library/kong", "tag": "3.9.0", "pullPolicy": "Always"}
    assert kong["ingressController"]["image"] == {
        "repository": f"{prefix}/kong/kubernetes-ingress-controller",
        "tag": "3.5.0",
    }
    assert kong["env"]["database"] == "off"


@pytest.mark.parametrize(
    ("image", "chart", "default"),
    [
        # The operators' images are their charts' own (appVersion, or the value the chart defaults to) ...
        ("tigera-operator", "calico", ("tigeraOperator", "version")),
        ("cert-manager-controller", "cert-manager", "appVersion"),
        ("strimzi-operator", "strimzi", ("defaultImageTag",)),
        ("cloudnative-pg", "cloudnative-pg", "appVersion"),
        # ... Kong's two pinned to the patch release of the floating tag the chart defaults to.
        ("kong", "kong", ("image", "tag")),
        ("kong-ingress-controller", "kong", ("ingressController", "image", "tag")),
    ],
)
def test_pinned_images_are_those_of_the_pinned_charts(image: str, chart: str, default: str | tuple[str, ...]) -> None:
    pin = CHARTS[chart]
    metadata, values = chart_metadata(charts_directory() / f"{pin.chart}-{pin.version}.tgz")
    if default == "appVersion":
        expected = str(metadata["appVersion"])
    else:
        expected = values
        for key in default:
            expected = expected[key]
    tag = IMAGES[image].tag
    assert tag == expected or tag.startswith(f"{expected}."), f"{image}: {tag}, the chart says {expected}"


def test_release_pods_are_restricted_with_resources_and_priority(programs: dict[str, list[RegisteredResource]]) -> None:
    values = {name: inputs["values"] for name, inputs in releases(programs["prod"]).items() if name in OPERATORS}
    containers = [
        values["cert-manager"]["containerSecurityContext"],
        values["cert-manager"]["webhook"]["containerSecurityContext"],
        values["kong"]["containerSecurityContext"],
        values["strimzi"]["securityContext"],
        values["cnpg"]["containerSecurityContext"],
    ]
    for context in containers:
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
    for name, chart in values.items():
        limits = chart["resources"]["limits"]
        assert set(limits) == {"cpu", "memory"}, name
    assert values["strimzi"]["extraEnvs"] == [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}]
    assert values["cert-manager"]["global"]["priorityClassName"] == "auxip-platform-critical"
    assert values["tigera-operator"]["priorityClassName"] == "system-node-critical"
    # Kong: our IngressClass only, and the admin API on localhost for the controller in the same pod.
    assert values["kong"]["ingressController"]["createIngressClass"] is False
    assert values["kong"]["admin"]["enabled"] is False


def pod_templates(release: RenderedRelease) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(`Kind/name`, pod metadata, pod spec) of every workload a rendered release creates."""
    for obj in release.objects:
        if obj["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            template = obj["spec"]["template"]
            yield f"{obj['kind']}/{obj['metadata']['name']}", template["metadata"], template["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_release_pods_run_as_the_values_say(charts: dict[str, dict[str, RenderedRelease]], stack: str) -> None:
    prefix = CONFIGS[stack].registry_prefix
    mirror = {pair["mirror"] for pair in mirrored_images(prefix)}
    workloads = 0
    for name in OPERATORS:
        for workload, _, spec in pod_templates(charts[stack][name]):
            workloads += 1
            containers = [*spec.get("initContainers", []), *spec["containers"]]
            # Every image is a pinned one, as the registry mirror replicates it.
            assert {c["image"] for c in containers} <= mirror, workload
            # The Tigera chart hard-codes its pods (see checkov-waivers.yaml): the others follow our values.
            if name == "tigera-operator":
                continue
            assert spec["priorityClassName"] == "auxip-platform-critical", workload
            for container in containers:
                where = f"{workload} {container['name']}"
                assert container["imagePullPolicy"] == "Always", where
                user = container.get("securityContext", {}).get("runAsUser", spec["securityContext"].get("runAsUser"))
                assert user >= 10000, where
                assert set(container["resources"]["limits"]) == {"cpu", "memory"}, where
    # The Tigera operator and its uninstall hook, cert-manager's three and its startup check, Kong, Strimzi, CNPG.
    assert workloads == 9


#: Our allow policies for pods of a release, and the one workload of the release each must select.
CHART_POD_POLICIES = {
    ("kong", "allow-proxy"): ("kong", "Deployment/kong-kong"),
    ("kong", "allow-admission-webhook"): ("kong", "Deployment/kong-kong"),
    ("kong", "allow-upstreams"): ("kong", "Deployment/kong-kong"),
    ("cert-manager", "allow-webhook"): ("cert-manager", "Deployment/cert-manager-webhook"),
    ("cnpg-system", "allow-operator"): ("cnpg", "Deployment/cnpg-cloudnative-pg"),
    ("cnpg-system", "allow-webhook"): ("cnpg", "Deployment/cnpg-cloudnative-pg"),
}


@pytest.mark.parametrize("stack", STACKS)
def test_policies_select_the_chart_pods_and_open_their_ports(
    objects: dict[str, list[dict[str, Any]]], charts: dict[str, dict[str, RenderedRelease]], stack: str
) -> None:
    # The pod labels (POD_LABELS, OPERATOR_LABELS, ...) and ports are the charts': a policy selecting nothing, or
    # opening a port no container listens on, would leave the service denied by default-deny.
    for (namespace, name), (release, expected) in CHART_POD_POLICIES.items():
        spec = policy(objects[stack], namespace, name)["spec"]
        selector = spec["podSelector"]["matchLabels"]
        pods = {workload: (meta, pod) for workload, meta, pod in pod_templates(charts[stack][release])}
        selected = [w for w, (meta, _) in pods.items() if selector.items() <= meta["labels"].items()]
        assert selected == [expected], f"{namespace}/{name} selects {selected}"
        listening = {p["containerPort"] for c in pods[expected][1]["containers"] for p in c.get("ports", [])}
        opened = {p["port"] for rule in spec.get("ingress", []) for p in rule["ports"]}
        assert opened <= listening, f"{namespace}/{name} opens {sorted(opened - listening)}"


def test_mirrored_images_list_every_pin_with_its_upstream() -> None:
    prefix = "harbor.auxip.internal/mirror"
    pairs = {pair["upstream"]: pair["mirror"] for pair in mirrored_images(prefix)}
    assert pairs["quay.io/strimzi/kafka:1.2.0-kafka-4.3.1"] == f"{prefix}/strimzi/kafka:1.2.0-kafka-4.3.1"
    assert pairs["docker.io/library/kong:3.9.0"] == f"{prefix}/library/kong:3.9.0"
    assert len(pairs) == len(IMAGES)
    pinned = dataclasses.replace(IMAGES["kong"], digest="sha256:" + "a" * 64)  # a digest, once known, is carried along
    assert image_ref(prefix, pinned) == f"{prefix}/library/kong:3.9.0@sha256:{'a' * 64}"


# Custom resources --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "controllers", "brokers"), [("dev", 1, 1), ("prod", 3, 3)])
def test_kafka_is_kraft_with_controller_and_broker_pools(
    objects: dict[str, list[dict[str, Any]]], stack: str, controllers: int, brokers: int
) -> None:
    rendered = objects[stack]
    kafka = one(rendered, "Kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    # KRaft: no ZooKeeper section, and the brokers' replicas and storage come from the node pools, not the Kafka.
    assert "zookeeper" not in kafka["spec"]
    assert not {"replicas", "storage"} & set(kafka["spec"]["kafka"])
    assert kafka["spec"]["kafka"]["version"] == "4.3.1"
    pools = {p["spec"]["roles"][0]: p for p in rendered if p["kind"] == "KafkaNodePool"}
    assert {role: pool["spec"]["roles"] for role, pool in pools.items()} == {
        "controller": ["controller"],
        "broker": ["broker"],
    }
    assert (pools["controller"]["spec"]["replicas"], pools["broker"]["spec"]["replicas"]) == (controllers, brokers)
    for pool in pools.values():
        assert pool["metadata"]["labels"] == {"strimzi.io/cluster": "auxip"}
        (volume,) = pool["spec"]["storage"]["volumes"]
        assert (volume["class"], volume["deleteClaim"], volume["kraftMetadata"]) == ("auxip-retain", False, "shared")
    config = kafka["spec"]["kafka"]["config"]
    rf = min(3, brokers)
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == (rf, max(1, rf - 1))
    assert config["auto.create.topics.enable"] is False


def test_kafka_listens_on_tls_with_client_certificates_for_the_auxip_namespaces(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    rendered = objects["prod"]
    (listener,) = one(rendered, "Kafka")["spec"]["kafka"]["listeners"]
    assert (listener["port"], listener["tls"], listener["authentication"]) == (9093, True, {"type": "tls"})
    clients = ["auxip", "auxip-ingest", "auxip-routing"]
    peer = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": clients}]}
    assert listener["networkPolicyPeers"] == [{"namespaceSelector": peer}]
    allow = policy(rendered, "kafka", "allow-clients")
    assert allow["spec"]["podSelector"] == {
        "matchLabels": {"strimzi.io/cluster": "auxip", "strimzi.io/broker-role": "true"}
    }
    assert allow["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": peer}], "ports": [{"protocol": "TCP", "port": 9093}]}
    ]
    assert allow["spec"]["policyTypes"] == ["Ingress"]
    # dev has no auxip-routing namespace: the peers name only namespaces that exist.
    (dev_listener,) = one(objects["dev"], "Kafka")["spec"]["kafka"]["listeners"]
    assert dev_listener["networkPolicyPeers"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "auxip",
        "auxip-ingest",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_kafka_user_operator_watches_the_auxip_namespace_and_topics_are_the_apps_layer(
    objects: dict[str, list[dict[str, Any]]], charts: dict[str, dict[str, RenderedRelease]], stack: str
) -> None:
    rendered = objects[stack]
    # The AUXIP's topics and KafkaUser are the apps layer's (tests/unit/test_auxip_deploy.py).
    assert {o["metadata"]["namespace"] for o in rendered if o["kind"] in ("KafkaTopic", "KafkaUser")} == {
        "kafka",
        "auxip",
    }
    user_operator = one(rendered, "Kafka")["spec"]["entityOperator"]["userOperator"]
    assert user_operator["watchedNamespace"] == "auxip"
    strimzi = charts[stack]["strimzi"]
    assert strimzi.release.values["watchNamespaces"] == ["auxip"]
    bindings = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in strimzi.objects if o["kind"] == "RoleBinding"
    }
    assert ("auxip", "strimzi-cluster-operator-entity-operator-delegation") in bindings


def test_catalog_backs_up_to_the_configured_bucket_with_secret_references(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    rendered = objects["prod"]
    cluster = one(rendered, "Cluster", "auxip-catalog")
    assert cluster["metadata"]["namespace"] == "auxip-catalog"
    spec = cluster["spec"]
    assert (spec["instances"], spec["storage"]) == (3, {"size": "200Gi", "storageClass": "auxip-retain"})
    assert spec["imageName"] == "harbor.auxip.internal/mirror/cloudnative-pg/postgresql:17.2"
    store = spec["backup"]["barmanObjectStore"]
    assert store["destinationPath"] == "s3://auxip-prod-backups/cnpg"
    assert store["endpointURL"] == "https://s3.waw3-1.cloudferro.com"
    # Credentials are references to a Secret's keys: no value of any kind is in the object.
    assert store["s3Credentials"] == {
        "accessKeyId": {"name": "catalog-backup-s3", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "catalog-backup-s3", "key": "ACCESS_SECRET_KEY"},
    }
    assert spec["backup"]["retentionPolicy"] == "30d"
    assert spec["enableSuperuserAccess"] is False
    scheduled = one(rendered, "ScheduledBackup")
    assert scheduled["spec"]["cluster"] == {"name": "auxip-catalog"}
    assert (scheduled["spec"]["method"], scheduled["spec"]["schedule"]) == ("barmanObjectStore", "0 0 2 * * *")
    # dev: one instance, backed up to its own bucket (the AUXIP's roles are separate pods sharing one catalog).
    dev = one(objects["dev"], "Cluster", "auxip-catalog")["spec"]
    assert (dev["instances"], dev["backup"]["barmanObjectStore"]["destinationPath"]) == (
        1,
        "s3://auxip-dev-backups/cnpg",
    )


def test_catalog_policy_opens_replication_clients_backups_and_the_api_server_only(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    allow = policy(objects["prod"], "auxip-catalog", "allow-auxip-catalog")
    spec = allow["spec"]
    assert spec["podSelector"] == {"matchLabels": {"cnpg.io/cluster": "auxip-catalog"}}
    assert {"to": [{"ipBlock": {"cidr": "203.0.113.32/28"}}], "ports": [{"protocol": "TCP", "port": 443}]} in spec[
        "egress"
    ]
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/22"}}], "ports": [{"protocol": "TCP", "port": 6443}]} in spec[
        "egress"
    ]
    assert len(spec["egress"]) == 3
    client_rule = spec["ingress"][-1]
    assert client_rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert client_rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "auxip",
        "auxip-ingest",
        "auxip-routing",
    ]


def test_client_egress_rules_for_the_workloads_that_use_the_bus_and_the_catalog() -> None:
    config = CONFIGS["prod"].cluster_services
    assert config.postgres is not None
    assert catalog_client_rule(config.postgres)["to"][0]["podSelector"] == {
        "matchLabels": {"cnpg.io/cluster": "auxip-catalog"}
    }
    kafka = kafka_client_rule(config.kafka)
    assert kafka["ports"] == [{"protocol": "TCP", "port": 9093}]
    assert kafka["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["kafka"]


def test_internal_ca_chain_ends_in_the_auxip_internal_ca_cluster_issuer(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    rendered = objects["prod"]
    root = one(rendered, "ClusterIssuer", "auxip-selfsigned-root")
    assert root["spec"] == {"selfSigned": {}}
    ca = one(rendered, "Certificate", "auxip-internal-ca")
    assert ca["metadata"]["namespace"] == "cert-manager"  # the ClusterIssuer's cluster resource namespace
    assert ca["spec"]["isCA"] is True
    assert ca["spec"]["issuerRef"] == {
        "name": "auxip-selfsigned-root",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert ca["spec"]["privateKey"]["rotationPolicy"] == "Always"
    issuer = one(rendered, "ClusterIssuer", "auxip-internal-ca")
    assert issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}


def test_calico_installation_pulls_through_the_prefix(objects: dict[str, list[dict[str, Any]]]) -> None:
    installation = one(objects["prod"], "Installation")
    assert installation["metadata"] == {"name": "default"}
    spec = installation["spec"]
    assert (spec["registry"], spec["imagePath"]) == ("harbor.auxip.internal/mirror/", "calico")
    (pool,) = spec["calicoNetwork"]["ipPools"]
    assert (pool["cidr"], pool["encapsulation"], spec["calicoNetwork"]["bgp"]) == (
        "192.168.0.0/16",
        "VXLANCrossSubnet",
        "Disabled",
    )


def test_kong_class_and_global_plugins(objects: dict[str, list[dict[str, Any]]]) -> None:
    rendered = objects["prod"]
    assert one(rendered, "IngressClass", "kong")["spec"] == {"controller": "ingress-controllers.konghq.com/kong"}
    plugins = {p["metadata"]["name"]: p for p in rendered if p["kind"] == "KongClusterPlugin"}
    assert set(plugins) == {"auxip-rate-limit", "auxip-security-headers"}
    for plugin in plugins.values():
        assert plugin["metadata"]["labels"]["global"] == "true"
        assert plugin["metadata"]["annotations"] == {"kubernetes.io/ingress.class": "kong"}
    assert plugins["auxip-rate-limit"]["config"] == {"minute": 600, "policy": "local", "limit_by": "ip"}
    headers = plugins["auxip-security-headers"]["config"]["add"]["headers"]
    assert "X-Content-Type-Options:nosniff" in headers
    proxy = policy(rendered, "kong", "allow-proxy")
    assert proxy["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8000},
        {"protocol": "TCP", "port": 8443},
    ]
    # Kong forwards to the AUXIP's and the hosted applications' namespaces, nowhere else in the cluster.
    upstreams = policy(rendered, "kong", "allow-upstreams")["spec"]["egress"][1]["to"][0]
    assert upstreams["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "auxip",
        "auxip-ingest",
        "auxip-routing",
        "hosted-mp",
        "hosted-sra",
    ]


def test_storage_classes_one_default_and_retained_data(objects: dict[str, list[dict[str, Any]]]) -> None:
    classes = {c["metadata"]["name"]: c for c in objects["prod"] if c["kind"] == "StorageClass"}
    assert set(classes) == {"auxip-standard", "auxip-retain"}
    default = "storageclass.kubernetes.io/is-default-class"
    assert [n for n, c in classes.items() if c["metadata"]["annotations"][default] == "true"] == ["auxip-standard"]
    assert classes["auxip-retain"]["reclaimPolicy"] == "Retain"
    assert {c["volumeBindingMode"] for c in classes.values()} == {"WaitForFirstConsumer"}
    assert {c["provisioner"] for c in classes.values()} == {"cinder.csi.openstack.org"}


@pytest.mark.parametrize("stack", STACKS)
def test_service_policies_go_into_namespaces_the_stack_creates_and_keep_default_deny(
    objects: dict[str, list[dict[str, Any]]], stack: str
) -> None:
    rendered = objects[stack]
    namespaces = {o["metadata"]["name"] for o in rendered if o["kind"] == "Namespace"}
    for obj in rendered:
        namespace = obj["metadata"].get("namespace")
        assert namespace is None or namespace in namespaces, f"{obj['kind']}/{obj['metadata']['name']} in {namespace}"
    for namespace in ("kafka", "kong", "cert-manager", "cnpg-system", "calico-system"):
        assert policy(rendered, namespace, "default-deny")["spec"] == {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
        }
    # No service policy opens a whole namespace to everything (only Kong's proxy ports face the world).
    for obj in rendered:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] != "allow-within-namespace":
            for rule in obj["spec"].get("ingress", []) + obj["spec"].get("egress", []):
                assert rule.get("ports") or rule.get("to"), obj["metadata"]


def test_services_are_children_of_the_platform_layer(programs: dict[str, list[RegisteredResource]]) -> None:
    resources = programs["prod"]
    by_urn = {r.urn: r for r in resources}
    services = next(r for r in resources if r.type == "auxip:platform:ClusterServices")
    assert by_urn[services.parent].type == "auxip:platform:Baseline"
    components = {r.type for r in resources if r.parent == services.urn}
    assert components == {
        "auxip:platform:Calico",
        "auxip:platform:CertManager",
        "auxip:platform:Kong",
        "auxip:platform:Kafka",
        "auxip:platform:CloudNativePg",
        "auxip:platform:PostgresCluster",
        "auxip:platform:StorageClasses",
        "auxip:platform:RegistryMirror",
    }


# Configuration -----------------------------------------------------------------------------------------------------


def prod_config_with(services: dict[str, Any]) -> dict[str, Any]:
    config, _ = read_stack_file(REPO_ROOT / "Pulumi.prod.yaml")
    current = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]["auxip-platform:clusterServices"]
    merged = copy.deepcopy(current)
    for key, value in services.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    config["auxip-platform:clusterServices"] = json.dumps(merged)
    return config


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ({"kafka": {"controllers": 2}}, "clusterServices.kafka.controllers", "must be odd"),
        ({"kafka": {"storageSize": "100G"}}, "clusterServices.kafka.storageSize", "String should match"),
        ({"kafka": {"storageClass": "fast"}}, "clusterServices", "kafka.storageClass: 'fast' is not one of"),
        ({"postgres": {"backup": {"bucket": "b", "endpointUrl": "http://s3", "cidr": "0.0.0.0/0"}}},
         "clusterServices.postgres.backup", "0.0.0.0/0 is not allowed"),
        ({"postgres": {"backup": {"bucket": "bkt", "endpointUrl": "https://s3.x", "cidr": "10.0.0.0/8",
                                  "schedule": "0 2 * * *"}}}, "clusterServices.postgres.backup.schedule", "six fields"),
        ({"kong": {"replicass": 2}}, "clusterServices.kong.replicass", "unknown key"),
        ({"chartRepository": "ftp://charts"}, "clusterServices.chartRepository", "String should match"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(change: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(StackConfigError) as error:
        load_stack_config(prod_config_with(change))
    assert f"auxip-platform:{key}" in str(error.value)
    assert message in str(error.value)


def test_defaults_deploy_every_service_but_the_catalog() -> None:
    config = ClusterServicesConfig()
    assert (config.calico.enabled, config.cert_manager.enabled, config.kong.enabled, config.kafka.enabled) == (
        True,
        True,
        True,
        True,
    )
    assert config.cloudnative_pg.enabled
    assert config.postgres is None
    assert (config.kafka.controllers, config.kafka.brokers, config.kafka.replication_factor) == (3, 3, 3)


def test_api_server_cidrs_come_from_the_config_then_the_infra_layer() -> None:
    prod = CONFIGS["prod"]
    assert api_server_cidrs(prod) == [ipaddress.IPv4Network("10.20.0.0/22")]
    explicit = prod.model_copy(
        update={"cluster_services": ClusterServicesConfig(api_server_cidrs=[ipaddress.IPv4Network("10.20.0.8/29")])}
    )
    assert api_server_cidrs(explicit) == [ipaddress.IPv4Network("10.20.0.8/29")]
    assert api_server_cidrs(prod.model_copy(update={"infra": None})) == []
    with pytest.raises(ValueError, match=r"clusterServices\.apiServerCidrs"):
        api_server_egress([], 6443)


def test_containerd_mirrors_point_each_upstream_at_its_harbor_project() -> None:
    config = CONFIGS["prod"].cluster_services
    mirrors = containerd_mirrors(config.registry_mirror, "https://harbor.auxip.internal")
    assert mirrors["quay.io"] == {
        "endpoint": "https://harbor.auxip.internal/v2/quay-proxy",
        "capabilities": ["pull", "resolve"],
        "override_path": True,
    }
    assert set(mirrors) == {"docker.io", "quay.io", "ghcr.io", "registry.k8s.io"}


def test_existing_hosts_give_their_control_plane_addresses() -> None:
    infra = {
        "provider": "existing",
        "adminCidrs": ["192.0.2.0/24"],
        "sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheClusterServicesTest0000000 t@x"],
        "existingHosts": [
            {"name": "jump", "role": "bastion", "address": "10.0.0.10", "publicAddress": "198.51.100.5"},
            {"name": "cp1", "role": "control-plane", "address": "10.0.0.11"},
            {"name": "cp2", "role": "control-plane", "address": "10.0.0.12"},
            {"name": "w1", "role": "worker", "address": "10.0.0.21", "group": "general"},
        ],
    }
    config = load_stack_config(
        {
            "auxip-platform:environment": "staging",
            "auxip-platform:registryPrefix": "harbor.example/mirror",
            "auxip-platform:infra": json.dumps(infra),
        }
    )
    assert api_server_cidrs(config) == [ipaddress.IPv4Network("10.0.0.11/32"), ipaddress.IPv4Network("10.0.0.12/32")]


def test_chart_source_gives_each_release_its_chart(tmp_path: Path) -> None:
    pin = CHARTS["kong"]
    upstream = ChartSource().release_args(pin)
    assert (upstream["chart"], upstream["version"]) == ("kong", "3.4.1")
    assert pulumi.get(upstream["repository_opts"], "repo") == "https://charts.konghq.com"
    mirror = ChartSource(repository="https://charts.internal/stable/").release_args(pin)
    assert pulumi.get(mirror["repository_opts"], "repo") == "https://charts.internal/stable"
    assert ChartSource(repository="oci://harbor.internal/charts").release_args(pin) == {
        "chart": "oci://harbor.internal/charts/kong",
        "version": "3.4.1",
    }
    # The cluster tier: a packaged chart by file name (helm reads its version from the archive).
    assert ChartSource(directory=tmp_path).release_args(pin) == {"chart": str(tmp_path / "kong-3.4.1.tgz")}
