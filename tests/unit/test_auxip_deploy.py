"""The AUXIP's own services on the cluster (`apps/auxip/deploy`, `auxip-platform:apps.auxip`): what each example
stack renders, with values — one Deployment per role, the migration Job, clamd, the Kafka topics and user, the
Ingress, the NetworkPolicies — the generated `auxip.yaml` validated by the program's own loader, and the stack
configuration errors that name their key.

The stacks run under the SDK's mocks (`auxip_testing.charts.program`, once per process); the component alone runs in
this process under `pulumi.runtime.set_mocks` where its resource options (dependencies) are asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from auxip.config import AuxipConfig, load_config
from auxip.deploy.auxip_config import (
    CATALOG_URL_ENV,
    PLACEHOLDER_CATALOG_URL,
    auxip_document,
    problems,
    render,
    stack_key,
)
from auxip.deploy.auxip_service import AuxipService, AuxipServiceArgs
from auxip.deploy.clamd import freshclam_conf
from auxip.deploy.context import ClusterContext, KafkaCluster, cluster_context
from auxip.deploy.exchanges import routing_document
from auxip.deploy.hosted_app import EXCHANGE_POD_LABELS, EXCHANGE_SOURCE_LABELS, EXCHANGE_TARGET_LABELS
from auxip.deploy.kafka_access import CONSUMER_GROUPS
from auxip.deploy.service_config import ROLE_NAMES
from auxip.ingest.bus import KafkaBus
from auxip_platform.infra.stack_config import StackConfigError, load_stack_config, load_stack_file
from auxip_platform.platform.api_server_only import WAITS_FOR_NODES
from auxip_platform.platform.policy import check_objects
from auxip_testing.charts import program
from auxip_testing.pulumi_mocks import REPO_ROOT, ProgramError, RegisteredResource, run_program
from auxip_testing.render import kubernetes_objects, validate_objects

STACKS = ("dev", "prod")
CONFIGS = {stack: load_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml") for stack in STACKS}
PROD = CONFIGS["prod"]
NS = "auxip"
CATALOG_RULE = {
    "to": [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["auxip-catalog"]}
                ]
            },
            "podSelector": {"matchLabels": {"cnpg.io/cluster": "auxip-catalog"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 5432}],
}
KAFKA_RULE = {
    "to": [
        {
            "namespaceSelector": {
                "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kafka"]}]
            },
            "podSelector": {"matchLabels": {"strimzi.io/cluster": "auxip", "strimzi.io/broker-role": "true"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 9093}],
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def ip_rule(cidr: str, port: int) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]}


@pytest.fixture(scope="module")
def resources() -> dict[str, list[RegisteredResource]]:
    return {stack: program(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def objects(resources: dict[str, list[RegisteredResource]]) -> dict[str, list[dict[str, Any]]]:
    return {stack: kubernetes_objects(found) for stack, found in resources.items()}


def named(objects: list[dict[str, Any]], kind: str, name: str, namespace: str = NS) -> dict[str, Any]:
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    return found


def pod(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"])


def role_deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {role: named(objects, "Deployment", f"auxip-{role}") for role in ROLE_NAMES}


def configmap_text(objects: list[dict[str, Any]], name: str, key: str) -> str:
    return str(named(objects, "ConfigMap", name)["data"][key])


def engine_config(document: dict[str, Any]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}


def prod_document() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"])


def shutil_copy_main(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())


def refused(document: dict[str, Any]) -> list[str]:
    """The lines of the stack config error for `document` (a `config:` mapping)."""
    with pytest.raises(StackConfigError) as error:
        load_stack_config(engine_config(document))
    return [line.strip() for line in str(error.value).splitlines()[1:]]


# Components --------------------------------------------------------------------------------------------------------


def test_the_auxip_components_are_children_of_the_apps_layer(resources: dict[str, list[RegisteredResource]]) -> None:
    prod = resources["prod"]
    apps = next(r for r in prod if r.type == "auxip:apps:Apps")
    components = {r.type: r for r in prod if r.parent == apps.urn and not r.custom}
    assert {t for t in components if not t.endswith("HostedApp")} == {
        "auxip:apps:AuxipService",
        "auxip:apps:Clamd",
        "auxip:apps:KafkaAccess",
        "auxip:apps:AuxipNetwork",
        "auxip:apps:Gateway",
    }
    service = components["auxip:apps:AuxipService"]
    children = {(r.type, r.name) for r in prod if r.parent == service.urn}
    assert {name for kind, name in children if kind == "kubernetes:apps/v1:Deployment"} == {
        f"auxip-{role}" for role in ROLE_NAMES
    }
    assert ("kubernetes:batch/v1:Job", "auxip-migrate-0-1-0") in children
    assert ("kubernetes:core/v1:ConfigMap", "auxip-config") in children


def test_the_roles_are_the_programs() -> None:
    # The `roles` key's default: every role the program has.
    assert list(ROLE_NAMES) == AuxipConfig.model_validate({"data_dir": "/var/lib/auxip"}).roles


# Deployments -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "replicas"),
    [
        ("dev", {"api": 1, "ingest": 1, "route": 1, "notify": 1, "evict": 1}),
        ("prod", {"api": 2, "ingest": 2, "route": 2, "notify": 1, "evict": 1}),
    ],
)
def test_one_deployment_per_role_with_its_replicas_image_and_command(
    objects: dict[str, list[dict[str, Any]]], stack: str, replicas: dict[str, int]
) -> None:
    prefix = CONFIGS[stack].registry_prefix
    deployments = role_deployments(objects[stack])
    assert {role: d["spec"]["replicas"] for role, d in deployments.items()} == replicas
    for role, deployment in deployments.items():
        (container,) = pod(deployment)["containers"]
        assert container["image"] == f"{prefix}/auxip/auxip:0.1.0"
        assert container["imagePullPolicy"] == "Always"
        assert container["args"] == ["serve", "--config", "/etc/auxip/auxip.yaml", "--role", role]
        assert "command" not in container  # the image's entrypoint: tini -- auxip
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_prod_resources_come_from_the_stack_config(objects: dict[str, list[dict[str, Any]]]) -> None:
    deployments = role_deployments(objects["prod"])
    (api,) = pod(deployments["api"])["containers"]
    assert api["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    (ingest,) = pod(deployments["ingest"])["containers"]
    assert ingest["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


@pytest.mark.parametrize("stack", STACKS)
def test_every_auxip_pod_is_restricted_with_its_own_account(
    objects: dict[str, list[dict[str, Any]]], stack: str
) -> None:
    rendered = objects[stack]
    workloads = [*role_deployments(rendered).values(), named(rendered, "Job", "auxip-migrate-0-1-0")]
    workloads.append(named(rendered, "Deployment", "clamd"))
    accounts = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ServiceAccount" and o["metadata"].get(
        "namespace") == NS}  # fmt: skip
    for workload in workloads:
        spec = pod(workload)
        assert spec["securityContext"] == POD_SECURITY, workload["metadata"]["name"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["securityContext"] == CONTAINER_SECURITY, container["name"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False
    # One account per role (and for the Job and clamd): none is shared.
    names = [pod(w)["serviceAccountName"] for w in workloads]
    assert len(set(names)) == len(names) == 7
    assert check_objects(rendered, CONFIGS[stack].registry_prefix) == []
    assert validate_objects([o for o in rendered if o["metadata"].get("namespace") == NS], "1.31") == []


def test_probes_scrape_annotations_priorities_and_scratch_volumes(objects: dict[str, list[dict[str, Any]]]) -> None:
    deployments = role_deployments(objects["prod"])
    priorities = {role: pod(d)["priorityClassName"] for role, d in deployments.items()}
    assert priorities == {
        "api": "auxip-workload-high",
        "ingest": "auxip-workload-high",
        "route": "auxip-workload-high",
        "notify": "auxip-workload-default",
        "evict": "auxip-workload-default",
    }
    for role, deployment in deployments.items():
        (container,) = pod(deployment)["containers"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "8080",
            "prometheus.io/path": "/metrics",
        }
        volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
        assert volumes["tmp"] == {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
        size = {"ingest": "100Gi", "route": "20Gi"}.get(role, "1Gi")
        assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": size}}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert (mounts["data"], mounts["tmp"], mounts["config"]) == ("/var/lib/auxip", "/tmp", "/etc/auxip")


@pytest.mark.parametrize("stack", STACKS)
def test_spread_over_nodes_and_the_ingest_pool(objects: dict[str, list[dict[str, Any]]], stack: str) -> None:
    deployments = role_deployments(objects[stack])
    for role, deployment in deployments.items():
        (spread,) = pod(deployment)["topologySpreadConstraints"]
        assert spread == {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "auxip", "app.kubernetes.io/component": role}},
        }
    ingest = pod(deployments["ingest"])
    others = [pod(d) for role, d in deployments.items() if role != "ingest"]
    assert not any("tolerations" in spec or "affinity" in spec for spec in others)
    if stack == "dev":  # no ingest pool there
        assert "tolerations" not in ingest
        assert "affinity" not in ingest
        return
    assert ingest["tolerations"] == [
        {"key": "auxip.esa.int/ingest", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    assert ingest["affinity"] == {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [{"key": "auxip.esa.int/pool", "operator": "In", "values": ["ingest"]}]
                    },
                }
            ]
        }
    }


@pytest.mark.parametrize(
    ("stack", "budgets", "hpa"), [("dev", {}, (1, 2)), ("prod", {"auxip-api": 1, "auxip-ingest": 1}, (2, 6))]
)
def test_api_rollout_disruption_budgets_and_autoscaler(
    objects: dict[str, list[dict[str, Any]]], stack: str, budgets: dict[str, int], hpa: tuple[int, int]
) -> None:
    rendered = objects[stack]
    strategy = role_deployments(rendered)["api"]["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    found = {o["metadata"]["name"]: o["spec"] for o in rendered if o["kind"] == "PodDisruptionBudget"}
    assert {name: spec["minAvailable"] for name, spec in found.items() if name.startswith("auxip-")} == budgets
    for name, spec in found.items():
        if name.startswith("auxip-"):
            component = name.removeprefix("auxip-")
            assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
    autoscaler = named(rendered, "HorizontalPodAutoscaler", "auxip-api")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    spec = autoscaler["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == hpa
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "auxip-api"}
    assert spec["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]


# Credentials: references only ----------------------------------------------------------------------------------------


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod(deployment)["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def test_credentials_come_from_secrets_by_reference(objects: dict[str, list[dict[str, Any]]]) -> None:
    rendered = objects["prod"]
    catalog = {"secretKeyRef": {"name": "auxip-catalog-url", "key": "url"}}
    s3 = {
        "AUXIP_S3_ACCESS_KEY": {"secretKeyRef": {"name": "auxip-products-s3", "key": "access-key"}},
        "AUXIP_S3_SECRET_KEY": {"secretKeyRef": {"name": "auxip-products-s3", "key": "secret-key"}},
    }
    for role, deployment in role_deployments(rendered).items():
        env = env_of(deployment)
        assert all("value" not in e for e in env.values()), role  # no literal at all
        assert env[CATALOG_URL_ENV]["valueFrom"] == catalog
        wanted = {CATALOG_URL_ENV, *(s3 if role != "notify" else {})}
        assert set(env) == wanted, role
        for name in wanted - {CATALOG_URL_ENV}:
            assert env[name]["valueFrom"] == s3[name]
    job = env_of(named(rendered, "Job", "auxip-migrate-0-1-0"))
    assert job == {CATALOG_URL_ENV: {"name": CATALOG_URL_ENV, "valueFrom": catalog}}


def test_kafka_client_certificate_is_mounted_as_files(objects: dict[str, list[dict[str, Any]]]) -> None:
    for role, deployment in role_deployments(objects["prod"]).items():
        volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
        if role in ("api", "notify", "evict"):  # notify matches and sends from the catalog: no bus
            assert "kafka-client" not in volumes
            continue
        projected = volumes["kafka-client"]["projected"]
        assert projected["defaultMode"] == 0o440
        assert [(s["secret"]["name"], [i["key"] for i in s["secret"]["items"]]) for s in projected["sources"]] == [
            ("auxip-kafka-client", ["user.crt", "user.key"]),
            ("auxip-kafka-cluster-ca", ["ca.crt"]),
        ]
        (container,) = pod(deployment)["containers"]
        assert {"name": "kafka-client", "mountPath": "/var/run/secrets/auxip/kafka", "readOnly": True} in container[
            "volumeMounts"
        ]


@pytest.mark.parametrize("stack", STACKS)
def test_no_credential_in_any_rendered_configmap_or_workload(
    objects: dict[str, list[dict[str, Any]]], stack: str
) -> None:
    rendered = [o for o in objects[stack] if o["kind"] in ("ConfigMap", "Deployment", "Job", "KafkaUser", "Ingress")]
    text = json.dumps(rendered).lower()
    for word in ("password", "passwd", "begin private key", "begin certificate", "aws_secret_access_key"):
        assert word not in text, word
    assert "postgresql" not in text  # the catalog URL (with its password) only ever arrives from the Secret
    assert not re.search(r"://[^/\s\"]+:[^/\s\"@]+@", text)  # no user:password@ in any URL
    for obj in rendered:
        if obj["kind"] in ("Deployment", "Job") and obj["metadata"]["namespace"] == NS:
            for container in [*pod(obj).get("initContainers", []), *pod(obj)["containers"]]:
                for env in container.get("env", []):
                    secretish = re.search(r"KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL|URL", env["name"])
                    assert not (secretish and "value" in env), env


# The configuration -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_generated_configuration_loads_with_the_programs_model(
    objects: dict[str, list[dict[str, Any]]], stack: str
) -> None:
    rendered = objects[stack]
    config_text = configmap_text(rendered, "auxip-config", "auxip.yaml")
    routes_text = configmap_text(rendered, "auxip-routes", "routes.yaml")
    document = yaml.safe_load(config_text)
    # As in the pods: the routing document at its path, the catalog URL from the environment.
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "routes.yaml").write_text(routes_text)
        path = Path(tmp) / "auxip.yaml"
        path.write_text(yaml.safe_dump({**document, "routing_documents": [f"{tmp}/routes.yaml"]}))
        loaded = load_config(path, environ={CATALOG_URL_ENV: PLACEHOLDER_CATALOG_URL})
    assert isinstance(loaded, AuxipConfig)
    assert document["routing_documents"] == ["/etc/auxip/routes/routes.yaml"]
    assert loaded.api.listen == "0.0.0.0:8080"
    assert loaded.catalog.migrate is False
    assert loaded.catalog.url == PLACEHOLDER_CATALOG_URL  # the override the pods get, from the Secret
    assert "url" not in document["catalog"]
    assert loaded.storage.url == f"s3://auxip-{stack}-products/products"
    assert loaded.bus.url == "kafka://auxip-kafka-bootstrap.kafka.svc:9093"
    assert loaded.bus.topic_prefix == "auxip."
    assert document["scanner"] == {"url": "tcp://clamd.auxip.svc:3310"}
    assert loaded.auth.local_users is False
    realm = f"https://iam.{'dev.' if stack == 'dev' else ''}auxip.example.eu/realms/auxip"
    assert [k.issuer for k in loaded.auth.keycloak] == [realm]
    assert loaded.auth.token_proxy_url == f"{realm}/protocol/openid-connect/token"
    assert document["storage"]["s3"]["access_key_env"] == "AUXIP_S3_ACCESS_KEY"
    if stack == "prod":
        assert [s.name for s in loaded.sources][:1] == ["ecmwf-met"]
        assert loaded.ingest.workers == 8
        assert loaded.retention.per_type == {"AUX_RESORB": 90, "AUX_PREORB": 90}
        assert {r.name for r in loaded.routes} >= {"mp-plans-to-fos", "sra-tec-from-feed"}  # from the exchanges
    else:
        assert yaml.safe_load(routes_text) == {"sources": [], "routes": [], "inboxes": {}}


@pytest.mark.parametrize("stack", STACKS)
def test_checksums_roll_the_pods_that_read_each_document(objects: dict[str, list[dict[str, Any]]], stack: str) -> None:
    rendered = objects[stack]

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    config = sha(configmap_text(rendered, "auxip-config", "auxip.yaml"))
    routes = sha(configmap_text(rendered, "auxip-routes", "routes.yaml"))
    for role, deployment in role_deployments(rendered).items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["auxip.esa.int/config-sha256"] == config
        assert annotations.get("auxip.esa.int/routes-sha256") == (routes if role in ("ingest", "route") else None)
    volume = next(v for v in pod(role_deployments(rendered)["api"])["volumes"] if v["name"] == "config")
    assert [s["configMap"]["name"] for s in volume["projected"]["sources"]] == ["auxip-config", "auxip-routes"]
    assert volume["projected"]["sources"][1]["configMap"]["items"] == [
        {"key": "routes.yaml", "path": "routes/routes.yaml"}
    ]


def test_a_changed_setting_changes_the_configuration_checksum(tmp_path: Path) -> None:
    document = prod_document()
    document["auxip-platform:apps"]["auxip"]["settings"]["ingest"]["workers"] = 16
    shutil_copy_main(tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": document}, sort_keys=False))
    changed = kubernetes_objects(run_program("t", project_dir=tmp_path))
    before = role_deployments(kubernetes_objects(program("prod")))
    after = role_deployments(changed)
    for role in ROLE_NAMES:
        old = before[role]["spec"]["template"]["metadata"]["annotations"]
        new = after[role]["spec"]["template"]["metadata"]["annotations"]
        assert old["auxip.esa.int/config-sha256"] != new["auxip.esa.int/config-sha256"]
        assert old.get("auxip.esa.int/routes-sha256") == new.get("auxip.esa.int/routes-sha256")
    assert "workers: 16" in configmap_text(changed, "auxip-config", "auxip.yaml")


# The migration Job -------------------------------------------------------------------------------------------------


def test_migration_job_runs_migrate_once_per_release(objects: dict[str, list[dict[str, Any]]]) -> None:
    job = named(objects["prod"], "Job", "auxip-migrate-0-1-0")
    spec = pod(job)
    (container,) = spec["containers"]
    assert container["args"] == ["migrate", "--config", "/etc/auxip/auxip.yaml"]
    assert container["image"] == "harbor.auxip.internal/mirror/auxip/auxip:0.1.0"
    assert spec["restartPolicy"] == "Never"
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (3, 3600)
    assert "ttlSecondsAfterFinished" not in job["spec"]  # kept: Pulumi would recreate a Job the API server deleted
    assert spec["priorityClassName"] == "auxip-workload-high"


def test_a_new_image_is_a_new_migration_job(tmp_path: Path) -> None:
    document = prod_document()
    document["auxip-platform:apps"]["auxip"]["image"] = "auxip/auxip:0.2.0@sha256:" + "ab" * 32
    shutil_copy_main(tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": document}, sort_keys=False))
    jobs = [
        o["metadata"]["name"] for o in kubernetes_objects(run_program("t", project_dir=tmp_path)) if o["kind"] == "Job"
    ]
    assert jobs == ["auxip-migrate-0-2-0"]


class Recorder(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def test_deployments_wait_for_the_migration_job_and_the_autoscaler_owns_api_replicas() -> None:
    """The component alone, in this process: a transformation (inherited by every child) records the options."""
    options: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[f"{args.type_}/{args.name}"] = args.opts

    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(Recorder(), project="auxip-platform", stack="unit", preview=False)
    service = PROD.apps.auxip
    assert service is not None
    context = cluster_context(PROD)
    routes = render(routing_document(PROD.apps))
    config_text = render(auxip_document(service, NS, context))

    @pulumi.runtime.test
    def build() -> None:
        args = AuxipServiceArgs(service, NS, PROD.registry_prefix, context, config_text, routes)
        AuxipService("unit", args, pulumi.ResourceOptions(transformations=[record]))

    build()
    job = "kubernetes:batch/v1:Job/auxip-migrate-0-1-0"
    assert options[job].delete_before_replace is True
    for role in ROLE_NAMES:
        opts = options[f"kubernetes:apps/v1:Deployment/auxip-{role}"]
        depends = [getattr(d, "_name", None) for d in opts.depends_on or []]  # type: ignore[union-attr]
        assert "auxip-migrate-0-1-0" in depends, role
        assert opts.ignore_changes == (["spec.replicas"] if role == "api" else None)


def test_the_api_server_only_transform_covers_every_workload_kind_that_waits() -> None:
    # Jobs, Deployments, Services and the Ingress would wait for pods, endpoints or a load balancer in the cluster
    # tier (no nodes): the transform marks each kind the AUXIP creates.
    assert {"batch/v1:Job", "apps/v1:Deployment", "core/v1:Service", "networking.k8s.io/v1:Ingress"} <= WAITS_FOR_NODES


# Kafka -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "replicas", "min_isr"), [("dev", 1, 1), ("prod", 3, 2)])
def test_kafka_topics_and_a_user_limited_to_the_auxip_prefix(
    objects: dict[str, list[dict[str, Any]]], stack: str, replicas: int, min_isr: int
) -> None:
    rendered = objects[stack]
    topics = {o["spec"]["topicName"]: o for o in rendered if o["kind"] == "KafkaTopic"}
    assert set(topics) == {"auxip.product.published", "auxip.product.quarantined"}
    for topic in topics.values():
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "auxip"
        assert (topic["spec"]["replicas"], topic["spec"]["config"]["min.insync.replicas"]) == (replicas, min_isr)
    (user,) = [o for o in rendered if o["kind"] == "KafkaUser"]
    assert (user["metadata"]["name"], user["metadata"]["namespace"]) == ("auxip-kafka-client", NS)
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "auxip"
    assert user["spec"]["authentication"] == {"type": "tls"}
    assert user["spec"]["authorization"] == {
        "type": "simple",
        "acls": [
            {
                "resource": {"type": "topic", "name": "auxip.", "patternType": "prefix"},
                "operations": ["Describe", "Read", "Write"],
            },
            {
                "resource": {"type": "group", "name": "auxip.", "patternType": "prefix"},
                "operations": ["Describe", "Read"],
            },
        ],
    }


def test_the_acls_cover_the_consumer_groups_the_program_uses() -> None:
    # Every `bus.consume(topic, "<group>", ...)` of the program: a group the ACLs do not grant would be refused.
    used = set()
    for path in (REPO_ROOT / "apps" / "auxip").rglob("*.py"):
        used |= set(re.findall(r"\.consume\(\s*[^,()]+,\s*\"([^\"]+)\"", path.read_text()))
    assert used == set(CONSUMER_GROUPS)
    # On Kafka they are `<prefix><group>`: under the prefix the ACL grants.
    assert KafkaBus("kafka:9093", topic_prefix="auxip.").group_id("routing") == "auxip.routing"


# clamd -------------------------------------------------------------------------------------------------------------


def test_clamd_with_signatures_from_the_configured_mirror(objects: dict[str, list[dict[str, Any]]]) -> None:
    rendered = objects["prod"]
    deployment = named(rendered, "Deployment", "clamd")
    assert deployment["spec"]["replicas"] == 2
    spec = pod(deployment)
    (freshclam,) = spec["initContainers"]
    (clamd,) = spec["containers"]
    image = "harbor.auxip.internal/mirror/clamav/clamav:1.4.3"
    assert (freshclam["image"], clamd["image"]) == (image, image)
    assert freshclam["restartPolicy"] == "Always"  # a native sidecar: keeps updating beside clamd
    assert freshclam["command"][:2] == ["freshclam", "--daemon"]
    assert "startupProbe" in freshclam  # clamd starts once a database is there
    assert clamd["readinessProbe"]["tcpSocket"] == {"port": "clamd"}
    assert clamd["resources"] == {"requests": {"cpu": "500m", "memory": "3Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    conf = named(rendered, "ConfigMap", "clamd-config")["data"]
    assert "PrivateMirror https://clamav-mirror.auxip.internal" in conf["freshclam.conf"].splitlines()
    assert conf["freshclam.conf"] == freshclam_conf("https://clamav-mirror.auxip.internal")
    assert {"AlertExceedsMax yes", "TCPSocket 3310", "MaxFileSize 2000M"} <= set(conf["clamd.conf"].splitlines())
    service = named(rendered, "Service", "clamd")
    assert service["spec"]["ports"] == [{"name": "clamd", "port": 3310, "targetPort": "clamd", "protocol": "TCP"}]
    assert service["spec"]["type"] == "ClusterIP"


# Exposure ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "host"), [("dev", "auxip.dev.auxip.example.eu"), ("prod", "auxip.example.eu")])
def test_the_odata_api_and_token_url_only_are_published_with_tls_and_limits(
    objects: dict[str, list[dict[str, Any]]], stack: str, host: str
) -> None:
    rendered = objects[stack]
    ingresses = [o for o in rendered if o["kind"] == "Ingress" and o["metadata"]["namespace"] == NS]
    (ingress,) = ingresses
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "kong"
    assert spec["tls"] == [{"hosts": [host], "secretName": "auxip-api-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == host
    backend = {"service": {"name": "auxip-api", "port": {"name": "http"}}}
    assert rule["http"]["paths"] == [
        {"path": "/odata", "pathType": "Prefix", "backend": backend},
        {"path": "/auth/token", "pathType": "Exact", "backend": backend},
    ]
    assert "metrics" not in json.dumps(spec)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["konghq.com/plugins"] == "auxip-api-request-size,auxip-api-rate-limit"
    plugins = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "KongPlugin"}
    assert {name: (p["plugin"], p["metadata"]["namespace"]) for name, p in plugins.items()} == {
        "auxip-api-request-size": ("request-size-limiting", NS),
        "auxip-api-rate-limit": ("rate-limiting", NS),
    }
    assert plugins["auxip-api-request-size"]["config"] == {"allowed_payload_size": 64, "size_unit": "kilobytes"}
    assert plugins["auxip-api-rate-limit"]["config"] == {"minute": 300, "policy": "local", "limit_by": "ip"}
    certificate = named(rendered, "Certificate", "auxip-api-tls")["spec"]
    assert certificate["dnsNames"] == [host]
    assert certificate["secretName"] == "auxip-api-tls"
    assert certificate["issuerRef"] == {
        "name": "auxip-internal-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    service = named(rendered, "Service", "auxip-api")["spec"]
    assert service["selector"] == {"app.kubernetes.io/name": "auxip", "app.kubernetes.io/component": "api"}
    # The other roles have no Service at all: only the API is reachable by name.
    services = {o["metadata"]["name"] for o in rendered if o["kind"] == "Service" and o["metadata"]["namespace"] == NS}
    assert services == {"auxip-api", "clamd"}


# NetworkPolicies ---------------------------------------------------------------------------------------------------


def policy_spec(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return dict(named(objects, "NetworkPolicy", name)["spec"])


def from_namespaces(*names: str) -> dict[str, Any]:
    expression = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(names)}
    return {
        "from": [{"namespaceSelector": {"matchExpressions": [expression]}}],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }


def test_each_role_reaches_only_what_it_needs(objects: dict[str, list[dict[str, Any]]]) -> None:
    rendered = objects["prod"]
    storage = ip_rule("203.0.113.32/28", 443)
    clamd_pods = {"app.kubernetes.io/name": "clamd", "app.kubernetes.io/part-of": "auxip"}
    clamd = {"to": [{"podSelector": {"matchLabels": clamd_pods}}], "ports": [{"protocol": "TCP", "port": 3310}]}
    expected_egress = {
        "api": [CATALOG_RULE, storage, ip_rule("203.0.113.80/29", 443)],
        "ingest": [CATALOG_RULE, KAFKA_RULE, storage, clamd, ip_rule("203.0.113.128/28", 443)],
        "route": [CATALOG_RULE, KAFKA_RULE, storage],
        "notify": [CATALOG_RULE, ip_rule("198.51.100.160/27", 443)],
        "evict": [CATALOG_RULE, storage],
    }
    for role, egress in expected_egress.items():
        spec = policy_spec(rendered, f"auxip-{role}")
        assert spec["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/name": "auxip", "app.kubernetes.io/component": role}
        }
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["egress"] == egress, role
        # Only the gateway reaches the API; Prometheus reaches every role's /metrics (the http port).
        sources = ("kong", "monitoring") if role == "api" else ("monitoring",)
        assert spec["ingress"] == [from_namespaces(*sources)], role
    migrate = policy_spec(rendered, "auxip-migrate")
    assert (migrate["policyTypes"], migrate["egress"]) == (["Egress"], [CATALOG_RULE])
    assert "ingress" not in migrate


def test_clamd_is_reached_by_the_ingest_pods_only_and_reaches_its_mirror(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    spec = policy_spec(objects["prod"], "clamd")
    ingest = role_deployments(objects["prod"])["ingest"]["spec"]["template"]["metadata"]["labels"]
    (rule,) = spec["ingress"]
    ((peer,),) = [rule["from"]]
    assert set(peer) == {"podSelector"}  # this namespace only
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ingest"
    assert peer["podSelector"]["matchLabels"].items() <= ingest.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 3310}]
    assert spec["egress"] == [ip_rule("203.0.113.16/28", 443)]


def test_exchange_peers_are_opened_for_the_roles_that_poll_or_deliver(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    labels = {
        role: d["spec"]["template"]["metadata"]["labels"] for role, d in role_deployments(objects["prod"]).items()
    }

    def selected(selector: dict[str, str]) -> set[str]:
        return {role for role, found in labels.items() if selector.items() <= found.items()}

    assert selected(EXCHANGE_POD_LABELS) == {"ingest", "route"}  # the exchange storage
    assert selected(EXCHANGE_SOURCE_LABELS) == {"ingest"}  # inbound exchanges' peers: sources
    assert selected(EXCHANGE_TARGET_LABELS) == {"route"}  # outbound exchanges' peers: targets


# Stack configuration errors ------------------------------------------------------------------------------------------


def test_a_bad_auxip_key_fails_the_program_naming_it(tmp_path: Path) -> None:
    document = prod_document()
    document["auxip-platform:apps"]["auxip"]["settings"]["ingest"]["workerz"] = 3
    shutil_copy_main(tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": document}, sort_keys=False))
    # What `pulumi preview` does first: the program refuses the stack, naming the stack key and the AUXIP key.
    with pytest.raises(
        ProgramError, match=r"auxip-platform:apps\.auxip\.settings\.ingest\.workerz: .*ingest\.workerz: unknown key"
    ):
        run_program("t", project_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda a: a["settings"].update(retention={"default_days": 0}), "apps.auxip.settings.retention.default_days",
         "retention.default_days: Input should be greater than or equal to 1"),
        (lambda a: a["settings"].update(catalog={"url": "sqlite:///x"}), "apps.auxip.settings",
         "catalog: set by the deployment"),
        (lambda a: a["settings"].update(api={"listen": "0.0.0.0:9"}), "apps.auxip.settings",
         "api.listen: set by the deployment"),
        (lambda a: a["sources"].append({**a["sources"][0], "name": "mp-plans-to-fos"}), "apps.auxip",
         "sources: names must be unique, repeated: mp-plans-to-fos"),
        (lambda a: a["sources"][0].update(url="sftp://u:pw@aux.example.int/in/"), "apps.auxip.sources.0.url",
         "credentials do not belong in the URL"),
        (lambda a: a["roles"]["api"].update(maxReplicas=1), "apps.auxip.roles.api",
         "maxReplicas 1 is below replicas 2"),
        (lambda a: a.update(image="auxip/auxip"), "apps.auxip.image", "is not pinned"),
        (lambda a: a["scanner"].update(image="docker.io/clamav/clamav:1.4.3"), "apps.auxip.scanner.image",
         "names a registry"),
        (lambda a: a["auth"].update(keycloak=[]), "apps.auxip.auth.keycloak", "at least 1 item"),
        (lambda a: a["auth"].update(tokenUrl="https://elsewhere.example.eu/token"), "apps.auxip.auth.tokenUrl",
         "must be on the host and port of an auxip.keycloak[].jwksUrl"),
        (lambda a: a["storage"].update(cidr="0.0.0.0/0"), "apps.auxip.storage.cidr", "not allowed"),
        (lambda a: a["roles"].pop("evict"), "apps.auxip.roles.evict", "Field required"),
        (lambda a: a["roles"]["ingest"].update(replicaz=2), "apps.auxip.roles.ingest.replicaz", "unknown key"),
    ],
)  # fmt: skip
def test_bad_auxip_config_names_the_key(change: Any, key: str, words: str) -> None:
    document = prod_document()
    change(document["auxip-platform:apps"]["auxip"])
    lines = refused(document)
    assert any(line.startswith(f"auxip-platform:{key}: ") and words in line for line in lines), lines


def test_what_the_auxip_needs_from_the_rest_of_the_stack_is_checked() -> None:
    document = prod_document()
    del document["auxip-platform:clusterServices"]["postgres"]
    assert (
        "auxip-platform:apps.auxip: the AUXIP's catalog is the CloudNativePG cluster: configure "
        in refused(document)[0]
    )
    document = prod_document()
    document["auxip-platform:infra"]["openstack"]["buckets"] = []
    document["auxip-platform:layers"] = {"infra": False}
    del document["auxip-platform:infra"]
    assert any(line.startswith("auxip-platform:apps.auxip.storage.bucket: no bucket") for line in refused(document))
    document = prod_document()
    document["auxip-platform:clusterServices"]["certManager"] = {"enabled": False}
    assert "auxip-platform:apps.auxip.ingress: needs clusterServices.kong and clusterServices.certManager enabled" in (
        refused(document)
    )


def test_the_namespace_quota_must_hold_the_auxip_at_full_scale() -> None:
    document = prod_document()
    document["auxip-platform:kubernetes"]["quotaProfiles"]["auxip"]["requests"] = {"cpu": "8", "memory": "32Gi"}
    document["auxip-platform:kubernetes"]["quotaProfiles"]["auxip"]["pods"] = 20
    document["auxip-platform:kubernetes"]["quotaProfiles"]["auxip"]["container"]["max"] = {"cpu": "1", "memory": "8Gi"}
    lines = refused(document)
    assert "auxip-platform:apps.auxip: up to 21 pods at once, the quota profile 'auxip' allows 20" in lines
    assert any(line.startswith("auxip-platform:apps.auxip: its pods need up to 10150m CPU") for line in lines), lines
    assert any(line.startswith("auxip-platform:apps.auxip.roles.api: a container's limits exceed") for line in lines)
    assert any(line.startswith("auxip-platform:apps.auxip.scanner: a container's limits exceed") for line in lines)


# The document, pure ------------------------------------------------------------------------------------------------


def test_document_generation_is_pure_and_problems_map_back_to_stack_keys() -> None:
    service = PROD.apps.auxip
    assert service is not None
    kafka = KafkaCluster("bus", "kafka", "bus-kafka-bootstrap.kafka.svc:9093", "s1.", 3, 3, 2, 24, {})
    context = ClusterContext(kafka=kafka, products_bucket="some-products")
    document = auxip_document(service, "aux", context)
    assert document == auxip_document(service, "aux", context)
    assert (document["bus"], document["scanner"]) == (
        {
            "url": "kafka://bus-kafka-bootstrap.kafka.svc:9093",
            "topic_prefix": "s1.",
            # Strimzi's TLS listener, with the KafkaUser's certificate as mounted in the pods (mutual TLS).
            "tls": {
                "ca_file": "/var/run/secrets/auxip/kafka/ca.crt",
                "cert_file": "/var/run/secrets/auxip/kafka/user.crt",
                "key_file": "/var/run/secrets/auxip/kafka/user.key",
            },
        },
        {"url": "tcp://clamd.aux.svc:3310"},
    )
    assert document["storage"]["url"] == "s3://some-products/products"
    assert auxip_document(service, "aux", ClusterContext(products_bucket="b"))["bus"] == {"url": "embedded"}
    assert problems(document, {"sources": [], "routes": [], "inboxes": {}}, service) == []
    # A hosted application's route to a source nobody declares: named at apps.hosted (where exchanges are).
    routing = {
        "routes": [{"name": "r", "trigger": {"source": "nowhere"}, "targets": [{"name": "t", "url": "inbox://mp"}]}]
    }
    (found,) = problems(document, routing, service)
    assert found[0] == "apps.hosted"
    assert "routes.0.trigger.source: no source named 'nowhere'" in found[1]
    assert stack_key("sources.0.url", service) == "apps.auxip.sources.0"
    assert stack_key("sources.5.url", service) == "apps.hosted"
    assert stack_key("auth.keycloak.0.issuer", service) == "apps.auxip.auth"
    assert stack_key("ingest.workers", service) == "apps.auxip.settings.ingest.workers"


def test_without_apps_auxip_nothing_of_the_auxip_is_deployed(tmp_path: Path) -> None:
    document = prod_document()
    del document["auxip-platform:apps"]["auxip"]
    shutil_copy_main(tmp_path)
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": document}, sort_keys=False))
    rendered = kubernetes_objects(run_program("t", project_dir=tmp_path))
    kinds = {o["kind"] for o in rendered if o["metadata"].get("namespace") == NS}
    assert not kinds & {"Deployment", "Job", "KafkaUser", "Ingress", "HorizontalPodAutoscaler"}
    assert "KafkaTopic" not in {o["kind"] for o in rendered}
    kafka = next(o for o in rendered if o["kind"] == "Kafka")
    assert "watchedNamespace" not in kafka["spec"]["entityOperator"]["userOperator"]
    # The hosted applications' routes are still there.
    assert named(rendered, "ConfigMap", "auxip-routes")
