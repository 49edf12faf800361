"""Hosted applications (MP, SRA): what each renders, what its network policies open, and the routes they compile to.

The prod stack runs under the SDK's mocks (`run_program`); variants (an exchange removed, a VM-hosted application, an
exempt namespace) run as derived stacks or as the component alone under `pulumi.runtime.set_mocks`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from auxip.deploy.auxip_service import ROUTES_ANNOTATION
from auxip.deploy.config import AppsConfig, HostedAppConfig
from auxip.deploy.exchanges import compile_exchanges, routing_document
from auxip.deploy.hosted_app import EXCHANGE_SOURCE_LABELS, EXCHANGE_TARGET_LABELS, HostedApp, HostedAppArgs
from auxip.ingest.sources.settings import SourceSettings
from auxip.routing.settings import PublishedTrigger, RouteSettings, SourceTrigger
from auxip_platform.infra.stack_config import NamespaceConfig, StackConfigError, load_stack_config, load_stack_file
from auxip_platform.platform.policy import check_objects
from auxip_platform.platform.priority import WORKLOAD_DEFAULT
from auxip_testing.pulumi_mocks import REPO_ROOT, ProgramError, RegisteredResource, run_program
from auxip_testing.render import kubernetes_objects, normalise, validate_objects

PROD_FILE = REPO_ROOT / "Pulumi.prod.yaml"
PROD = load_stack_file(PROD_FILE)
STORAGE = PROD.apps.exchange_storage
assert STORAGE is not None
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
STORAGE_RULE = {"to": [{"ipBlock": {"cidr": "203.0.113.32/28"}}], "ports": [{"protocol": "TCP", "port": 443}]}


def app_config(name: str) -> HostedAppConfig:
    return next(app for app in PROD.apps.hosted if app.name == name)


def objects_of(resources: list[RegisteredResource]) -> list[dict[str, Any]]:
    return kubernetes_objects(resources)


def in_namespace(objects: list[dict[str, Any]], namespace: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"].get("namespace") == namespace and (kind is None or o["kind"] == kind)]


def egress_rules(objects: list[dict[str, Any]], namespace: str, exchanges_only: bool = False) -> list[dict[str, Any]]:
    """Every egress rule any NetworkPolicy of `namespace` opens, in a stable order (policies by name); with
    `exchanges_only`, those of the policies the hosted applications' exchanges add (not the AUXIP's own roles')."""
    policies = sorted(in_namespace(objects, namespace, "NetworkPolicy"), key=lambda p: p["metadata"]["name"])
    if exchanges_only:
        policies = [
            p for p in policies
            if p["metadata"]["name"] in ("allow-dns", "allow-exchange-storage")
            or p["metadata"]["name"].startswith("exchange-")
        ]  # fmt: skip
    return [rule for p in policies for rule in p["spec"].get("egress") or []]


def exchange_policies(objects: list[dict[str, Any]], app: str) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in in_namespace(objects, "auxip", "NetworkPolicy")
        if o["metadata"].get("labels", {}).get("auxip.esa.int/hosted-app") == app
    }


def opened(policies: dict[str, dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {
        (peer["ipBlock"]["cidr"], port["protocol"], port["port"])
        for p in policies.values()
        for rule in p["spec"]["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }


def routes_document(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "auxip-routes"]
    assert configmap["metadata"]["namespace"] == "auxip"
    return dict(yaml.safe_load(configmap["data"]["routes.yaml"]))


@pytest.fixture(scope="module")
def prod_resources() -> list[RegisteredResource]:
    return run_program("prod")


@pytest.fixture(scope="module")
def prod(prod_resources: list[RegisteredResource]) -> list[dict[str, Any]]:
    return objects_of(prod_resources)


def derived_stack(tmp_path: Path, document: dict[str, Any], name: str = "t") -> list[RegisteredResource]:
    shutil.copy(REPO_ROOT / "__main__.py", tmp_path)
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return run_program(name, project_dir=tmp_path)


def prod_document() -> dict[str, Any]:
    return dict(yaml.safe_load(PROD_FILE.read_text()))


# The prod stack: MP ------------------------------------------------------------------------------------------------


def test_components_and_their_children(prod_resources: list[RegisteredResource]) -> None:
    apps = next(r for r in prod_resources if r.type == "auxip:apps:Apps")
    hosted = {r.name: r for r in prod_resources if r.type == "auxip:apps:HostedApp"}
    assert set(hosted) == {"prod-apps-mp", "prod-apps-sra"}
    assert all(r.parent == apps.urn for r in hosted.values())
    namespace = next(r for r in prod_resources if r.type == "kubernetes:core/v1:Namespace" and r.name == "hosted-mp")
    assert namespace.parent == hosted["prod-apps-mp"].urn
    # Everything inside the namespace is its child, so it is created after it and deleted before it.
    inside = [
        r for r in prod_resources if r.custom and (r.inputs.get("metadata") or {}).get("namespace") == "hosted-mp"
    ]
    assert len(inside) == 10
    assert {r.parent for r in inside} == {namespace.urn}


def test_mp_namespace_is_restricted_and_labelled(prod: list[dict[str, Any]]) -> None:
    (namespace,) = [o for o in prod if o["kind"] == "Namespace" and o["metadata"]["name"] == "hosted-mp"]
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.31"
    assert labels["auxip.esa.int/hosted-app"] == "mp"
    assert "annotations" not in namespace["metadata"]


def test_mp_quota_and_limit_range_are_the_configured_values(prod: list[dict[str, Any]]) -> None:
    (quota,) = in_namespace(prod, "hosted-mp", "ResourceQuota")
    assert quota["spec"]["hard"] == {
        "requests.cpu": "2",
        "requests.memory": "4Gi",
        "limits.cpu": "4",
        "limits.memory": "8Gi",
        "pods": "4",
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    (limits,) = in_namespace(prod, "hosted-mp", "LimitRange")
    assert limits["spec"]["limits"] == [
        {
            "type": "Container",
            "default": {"cpu": "2", "memory": "4Gi"},
            "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
            "max": {"cpu": "2", "memory": "4Gi"},
        }
    ]


def test_mp_namespace_opens_only_dns_storage_and_the_reverse_proxy(prod: list[dict[str, Any]]) -> None:
    policies = {p["metadata"]["name"]: p for p in in_namespace(prod, "hosted-mp", "NetworkPolicy")}
    assert set(policies) == {"default-deny", "allow-dns", "allow-exchange-storage", "allow-reverse-proxy"}
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # The application itself never reaches an exchange peer: DNS and its inbox/outbox endpoint, nothing else.
    assert egress_rules(prod, "hosted-mp") == [DNS_RULE, STORAGE_RULE]
    ingress = [rule for p in policies.values() for rule in p["spec"].get("ingress") or []]
    assert ingress == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kong"}}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]


def test_mp_exchanges_open_exactly_their_peers_from_the_exchange_pods(prod: list[dict[str, Any]]) -> None:
    policies = exchange_policies(prod, "mp")
    # Two exchanges have external peers; the two with auxip-ingestion open nothing.
    assert set(policies) == {"exchange-mp-plans-to-fos", "exchange-mp-orbits-from-pod"}
    assert opened(policies) == {("198.51.100.128/29", "TCP", 2222), ("203.0.113.64/28", "TCP", 443)}
    # The pods of the AUXIP that reach the peer: ingest polls the inbound one (a source), route delivers to the
    # outbound one (a target).
    selectors = {name: p["spec"]["podSelector"]["matchLabels"] for name, p in policies.items()}
    assert selectors == {
        "exchange-mp-plans-to-fos": EXCHANGE_TARGET_LABELS,
        "exchange-mp-orbits-from-pod": EXCHANGE_SOURCE_LABELS,
    }
    for policy in policies.values():
        assert policy["spec"]["policyTypes"] == ["Egress"]
        assert "ingress" not in policy["spec"]


def test_auxip_namespace_opens_storage_and_the_declared_peers_only(prod: list[dict[str, Any]]) -> None:
    peers = {
        ("198.51.100.128/29", "TCP", 2222),
        ("203.0.113.64/28", "TCP", 443),
        ("203.0.113.96/28", "TCP", 21),
        ("203.0.113.112/29", "TCP", 443),
    }
    rules = egress_rules(prod, "auxip", exchanges_only=True)
    assert DNS_RULE in rules
    assert STORAGE_RULE in rules
    others = [rule for rule in rules if rule not in (DNS_RULE, STORAGE_RULE)]
    assert {(r["to"][0]["ipBlock"]["cidr"], r["ports"][0]["protocol"], r["ports"][0]["port"]) for r in others} == peers
    assert len(others) == len(peers)


def test_mp_service_account_has_no_token_and_no_rbac(prod: list[dict[str, Any]]) -> None:
    (account,) = in_namespace(prod, "hosted-mp", "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    kinds = {o["kind"] for o in prod}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    (deployment,) = in_namespace(prod, "hosted-mp", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("mp", False)


def test_mp_deployment_runs_the_pinned_image_restricted(prod: list[dict[str, Any]]) -> None:
    (deployment,) = in_namespace(prod, "hosted-mp", "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["image"] == (
        "harbor.auxip.internal/mirror/esa/s1-mission-planning:4.2.1"
        "@sha256:41a47cf11b51085a37e735be9e122558d88759ffb40378b85382cf540efd7ed9"
    )
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AUXIP_INBOX_URL"] == "s3://auxip-prod-products/hosted/mp/inbox/"
    assert env["AUXIP_OUTBOX_URL"] == "s3://auxip-prod-products/hosted/mp/outbox/"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    # No volume claim anywhere: the only volumes are a scratch emptyDir and the S3 credentials file.
    assert [sorted(set(v) - {"name"}) for v in pod["volumes"]] == [["emptyDir"], ["secret"]]


def test_mp_ingress_uses_the_reverse_proxy_with_tls(prod: list[dict[str, Any]]) -> None:
    (ingress,) = in_namespace(prod, "hosted-mp", "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "kong"
    assert spec["tls"] == [{"hosts": ["mp.auxip.example.eu"], "secretName": "mp-tls"}]
    backend = spec["rules"][0]["http"]["paths"][0]["backend"]["service"]
    (service,) = in_namespace(prod, "hosted-mp", "Service")
    assert (backend["name"], backend["port"]["name"]) == (service["metadata"]["name"], "app")
    assert service["spec"]["type"] == "ClusterIP"


# The prod stack: SRA -----------------------------------------------------------------------------------------------


def test_sra_is_restricted_with_its_quota_and_peers_and_no_ingress(prod: list[dict[str, Any]]) -> None:
    (namespace,) = [o for o in prod if o["kind"] == "Namespace" and o["metadata"]["name"] == "hosted-sra"]
    assert {
        namespace["metadata"]["labels"][f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "audit", "warn")
    } == {"restricted"}
    (quota,) = in_namespace(prod, "hosted-sra", "ResourceQuota")
    hard = quota["spec"]["hard"]
    assert (hard["requests.cpu"], hard["requests.memory"], hard["limits.cpu"], hard["limits.memory"]) == (
        "3", "6Gi", "6", "12Gi",
    )  # fmt: skip
    assert hard["pods"] == "3"
    assert egress_rules(prod, "hosted-sra") == [DNS_RULE, STORAGE_RULE]
    assert {p["metadata"]["name"] for p in in_namespace(prod, "hosted-sra", "NetworkPolicy")} == {
        "default-deny",
        "allow-dns",
        "allow-exchange-storage",
    }
    assert not in_namespace(prod, "hosted-sra", "Ingress")
    assert not in_namespace(prod, "hosted-sra", "Service")
    (account,) = in_namespace(prod, "hosted-sra", "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    (deployment,) = in_namespace(prod, "hosted-sra", "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 10}
    policies = exchange_policies(prod, "sra")
    assert set(policies) == {"exchange-sra-tec-from-feed", "exchange-sra-products-to-archive"}
    assert opened(policies) == {("203.0.113.96/28", "TCP", 21), ("203.0.113.112/29", "TCP", 443)}


def test_hosted_objects_are_valid_and_compliant(prod: list[dict[str, Any]]) -> None:
    hosted = [o for o in prod if o["metadata"].get("namespace", "").startswith("hosted-")]
    assert {o["kind"] for o in hosted} >= {"Deployment", "ResourceQuota", "LimitRange", "ServiceAccount", "Ingress"}
    assert validate_objects(prod, PROD.kubernetes.version) == []
    assert check_objects(prod, PROD.registry_prefix) == []


# Routes --------------------------------------------------------------------------------------------------------------


def test_routes_configmap_validates_and_has_the_expected_triggers_and_targets(prod: list[dict[str, Any]]) -> None:
    document = routes_document(prod)
    sources = {s["name"]: SourceSettings.model_validate(s) for s in document["sources"]}
    routes = {r["name"]: RouteSettings.model_validate(r) for r in document["routes"]}
    outbox = "s3://auxip-prod-products/hosted/mp/outbox"
    assert {name: s.url for name, s in sources.items() if name.startswith("mp-")} == {
        "mp-plans-to-fos": f"{outbox}/plans-to-fos/",
        "mp-plans-to-auxip": f"{outbox}/plans-to-auxip/",
        "mp-orbits-from-pod": "https://pod.example.int/s1/orbits/",
    }
    # MP -> AUXIP ingestion is a source of the AUXIP, and nothing else: no route, no target.
    assert sources["mp-plans-to-auxip"].product_types == ["MPL_ORBPRE", "MPL_ORBRES", "MPL_ORBSCT"]
    assert sources["mp-plans-to-auxip"].endpoint_url == STORAGE.endpoint_url
    assert "mp-plans-to-auxip" not in routes
    fos = routes["mp-plans-to-fos"]
    assert fos.trigger == SourceTrigger(source="mp-plans-to-fos")
    assert [(t.name, t.url, t.credentials) for t in fos.targets] == [
        ("plans-to-fos", "sftp://fos-gateway.example.int:2222/incoming/s1/", "vault:kv/auxip/hosted/mp/fos")
    ]
    pod = routes["mp-orbits-from-pod"]
    assert pod.trigger == SourceTrigger(source="mp-orbits-from-pod")
    assert [t.url for t in pod.targets] == ["inbox://mp"]
    assert sources["mp-orbits-from-pod"].credentials == "vault:kv/auxip/hosted/mp/pod"
    poeorb = routes["mp-poeorb-from-auxip"]
    assert poeorb.trigger == PublishedTrigger(product_types=["AUX_POEORB"], name_pattern="^S1[ABCD]_")
    assert [t.url for t in poeorb.targets] == ["inbox://mp"]
    assert set(routes) == {
        "mp-plans-to-fos",
        "mp-orbits-from-pod",
        "mp-poeorb-from-auxip",
        "sra-met-from-auxip",
        "sra-tec-from-feed",
        "sra-products-to-archive",
    }
    assert document["inboxes"]["mp"]["url"] == "s3://auxip-prod-products/hosted/mp/inbox/"
    assert document == routing_document(PROD.apps)


def test_compile_exchanges_one_of_each_kind() -> None:
    push = {"url": "ftps://peer.example:990/in/", "cidr": "192.0.2.0/28"}
    pull = {"url": "odatas://prip.example/odata/v1", "cidr": "192.0.2.16/28", "credentials": "env:PRIP"}
    exchanges = [
        {"name": "push", "direction": "out", "peer": push},
        {"name": "ingest", "direction": "out", "peer": "auxip-ingestion", "namePattern": "_OPER_"},
        {"name": "pull", "direction": "in", "peer": pull},
        {"name": "published", "direction": "in", "peer": "auxip-ingestion", "productTypes": ["AUX_CAL"]},
    ]
    app = HostedAppConfig.model_validate({"name": "demo", "kind": "vm", "exchanges": exchanges})
    sources, routes = compile_exchanges(app, STORAGE)
    access = {"credentials": STORAGE.credentials, "endpoint_url": STORAGE.endpoint_url, "region": "waw3-1"}
    outbox = "s3://auxip-prod-products/hosted/demo/outbox"
    assert sources == [
        {"name": "demo-push", "url": f"{outbox}/push/", "include": [], "product_types": [], **access},
        {"name": "demo-ingest", "url": f"{outbox}/ingest/", "include": ["_OPER_"], "product_types": [], **access},
        {"name": "demo-pull", "url": "odatas://prip.example/odata/v1", "include": [], "product_types": [],
         "credentials": "env:PRIP"},
    ]  # fmt: skip
    assert routes == [
        {"name": "demo-push", "trigger": {"source": "demo-push"},
         "targets": [{"name": "push", "url": "ftps://peer.example:990/in/"}]},
        {"name": "demo-pull", "trigger": {"source": "demo-pull"},
         "targets": [{"name": "demo-inbox", "url": "inbox://demo"}]},
        {"name": "demo-published", "trigger": {"event": "product.published", "product_types": ["AUX_CAL"]},
         "targets": [{"name": "demo-inbox", "url": "inbox://demo"}]},
    ]  # fmt: skip
    for source in sources:
        SourceSettings.model_validate(source)
    for route in routes:
        RouteSettings.model_validate(route)


# Derived stacks ------------------------------------------------------------------------------------------------------


def test_removing_an_exchange_removes_its_policy_and_route(tmp_path: Path, prod: list[dict[str, Any]]) -> None:
    document = prod_document()
    apps = copy.deepcopy(document["config"]["auxip-platform:apps"])
    mp = next(app for app in apps["hosted"] if app["name"] == "mp")
    mp["exchanges"] = [e for e in mp["exchanges"] if e["name"] != "plans-to-fos"]
    document["config"]["auxip-platform:apps"] = apps
    objects = objects_of(derived_stack(tmp_path, document))
    assert set(exchange_policies(objects, "mp")) == {"exchange-mp-orbits-from-pod"}
    assert ("198.51.100.128/29", "TCP", 2222) not in opened(exchange_policies(objects, "auxip"))
    routes = {r["name"] for r in routes_document(objects)["routes"]}
    assert "mp-plans-to-fos" not in routes
    assert "mp-orbits-from-pod" in routes

    # The routing document changed: the roles that read it (ingest, route) roll, and only those.
    def routes_checksums(objs: list[dict[str, Any]]) -> dict[str, str | None]:
        return {
            o["metadata"]["name"]: o["spec"]["template"]["metadata"]["annotations"].get(ROUTES_ANNOTATION)
            for o in in_namespace(objs, "auxip", "Deployment")
        }

    before, after = routes_checksums(prod), routes_checksums(objects)
    assert {name for name in after if after[name] != before[name]} == {"auxip-ingest", "auxip-route"}
    assert sorted(name for name, value in after.items() if value is not None) == ["auxip-ingest", "auxip-route"]

    # Nothing else moved: every other object is identical (but for that annotation).
    def ids(objs: list[dict[str, Any]]) -> set[str]:
        kept = []
        for o in copy.deepcopy(objs):
            if o["kind"] == "ConfigMap":
                continue
            if o["kind"] == "Deployment":
                o["spec"]["template"]["metadata"].get("annotations", {}).pop(ROUTES_ANNOTATION, None)
            kept.append(json.dumps(o, sort_keys=True))
        return set(kept)

    assert ids(prod) - ids(objects) == {
        json.dumps(exchange_policies(prod, "mp")["exchange-mp-plans-to-fos"], sort_keys=True)
    }


EXISTING_HOSTS_STACK: dict[str, Any] = {
    "config": {
        "auxip-platform:environment": "staging",
        "auxip-platform:registryPrefix": "harbor.example/mirror",
        "auxip-platform:kubernetes": {"namespaces": [{"name": "auxip"}]},
        "auxip-platform:infra": {
            "provider": "existing",
            "adminCidrs": ["192.0.2.0/24"],
            "sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheHostedAppsTest000000000000 t@x"],
            "existingHosts": [
                {"name": "jump", "role": "bastion", "address": "10.0.0.10", "publicAddress": "198.51.100.5"},
                {"name": "cp1", "role": "control-plane", "address": "10.0.0.11"},
                {"name": "w1", "role": "worker", "address": "10.0.0.21", "group": "general"},
                {"name": "sra1", "role": "hosted", "address": "10.0.0.31", "group": "sra"},
            ],
        },
        "auxip-platform:apps": {
            "exchangeStorage": {
                "bucket": "auxip-staging-products",
                "endpointUrl": "https://s3.example.eu",
                "cidr": "203.0.113.32/28",
                "credentials": "vault:kv/auxip/exchange-storage",
            },
            "hosted": [
                {
                    "name": "sra",
                    "kind": "vm",
                    "exchanges": [
                        {"name": "met-from-auxip", "direction": "in", "peer": "auxip-ingestion"},
                        {
                            "name": "to-archive",
                            "direction": "out",
                            "peer": {"url": "https://archive.example.int/s1/", "cidr": "203.0.113.112/29"},
                        },
                    ],
                }
            ],
        },
    }
}


def test_vm_hosted_application_gets_routes_and_exchange_policies_only(tmp_path: Path) -> None:
    resources = derived_stack(tmp_path, EXISTING_HOSTS_STACK)
    objects = objects_of(resources)
    component = next(r for r in resources if r.type == "auxip:apps:HostedApp")
    assert component.name.endswith("-sra")
    # No Kubernetes workload and no namespace: the machine is the infra layer's existing host.
    assert not [o for o in objects if o["metadata"].get("namespace") == "hosted-sra" or o["kind"] == "Deployment"]
    assert "hosted-sra" not in {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    infra_hosts = next(r for r in resources if r.type == "auxip:infra:ExistingHosts")
    assert infra_hosts is not None
    policies = exchange_policies(objects, "sra")
    assert set(policies) == {"exchange-sra-to-archive"}
    assert opened(policies) == {("203.0.113.112/29", "TCP", 443)}
    document = routes_document(objects)
    assert [r["name"] for r in document["routes"]] == ["sra-met-from-auxip", "sra-to-archive"]
    assert document["sources"][0]["url"] == "s3://auxip-staging-products/apps/sra/outbox/to-archive/"
    assert document["inboxes"]["sra"]["url"] == "s3://auxip-staging-products/apps/sra/inbox/"
    assert validate_objects(objects, "1.31") == []


def test_bad_hosted_app_fails_the_program_naming_the_key(tmp_path: Path) -> None:
    document = prod_document()
    document["config"]["auxip-platform:apps"]["hosted"][0]["image"] = "esa/s1-mission-planning"
    with pytest.raises(
        ProgramError, match=r"auxip-platform:apps\.hosted\.0\.image: 'esa/s1-mission-planning' is not pinned"
    ):
        derived_stack(tmp_path, document)


# The component alone, under the SDK's mocks --------------------------------------------------------------------------


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith("kubernetes:"):
            self.objects.append(normalise(dict(args.inputs)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def render_component(app: HostedAppConfig, namespace: NamespaceConfig | None) -> list[dict[str, Any]]:
    recorder = Recorder()
    # The mocks run on the thread's current event loop; async tests before this one may have closed it.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(recorder, project="auxip-platform", stack="unit", preview=False)
    args = HostedAppArgs(app, namespace, PROD.registry_prefix, "1.31", "auxip", STORAGE, PROD.apps.reverse_proxy)

    @pulumi.runtime.test
    def build() -> None:
        HostedApp("unit", args)

    build()
    return recorder.objects


def test_component_in_an_exempt_namespace_leaves_only_the_user_to_the_image() -> None:
    reason = "the vendor image of SRA runs as root and cannot be rebuilt"
    namespace = NamespaceConfig(name="hosted-sra", pod_security="baseline", exemption_reason=reason)
    objects = render_component(app_config("sra"), namespace)
    (ns,) = [o for o in objects if o["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["metadata"]["annotations"] == {"auxip.esa.int/pod-security-exemption": reason}
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # The PriorityClass the Deployment names is the baseline's (platform/priority.py), not the component's.
    priority = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": WORKLOAD_DEFAULT},
                "value": 10000, "globalDefault": True}  # fmt: skip
    exchanges = exchange_policies(objects, "sra").values()
    assert check_objects([*objects, *exchanges, priority], PROD.registry_prefix) == []


def test_component_for_a_vm_renders_only_the_exchange_policies() -> None:
    app = app_config("mp").model_copy(
        update={"kind": "vm", "image": None, "resources": None, "quota": None, "port": None, "ingress_host": None}
    )
    objects = render_component(app, None)
    assert {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects} == {
        ("NetworkPolicy", "auxip", "exchange-mp-plans-to-fos"),
        ("NetworkPolicy", "auxip", "exchange-mp-orbits-from-pod"),
    }


# Bad configuration -----------------------------------------------------------------------------------------------


def engine_config(apps: dict[str, Any], **extra: Any) -> dict[str, str]:
    document = prod_document()["config"]
    document["auxip-platform:apps"] = apps
    document.update(extra)
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}


def prod_apps() -> dict[str, Any]:
    return copy.deepcopy(prod_document()["config"]["auxip-platform:apps"])


def mutate(path: str, value: Any) -> dict[str, Any]:
    """prod's apps section with `value` at the dotted `path` (list indices as numbers); None deletes the key."""
    apps = prod_apps()
    *parents, last = path.split(".")
    node: Any = apps
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return apps


@pytest.mark.parametrize(
    ("path", "value", "key", "words"),
    [
        ("hosted.0.image", "esa/s1-mission-planning", "apps.hosted.0.image", "is not pinned"),
        ("hosted.0.image", "esa/s1-mission-planning:latest", "apps.hosted.0.image", "is not pinned"),
        ("hosted.0.image", "docker.io/esa/mp:4.2.1", "apps.hosted.0.image", "names a registry"),
        ("hosted.0.image", None, "apps.hosted.0.image", "required for kind kubernetes"),
        ("hosted.0.exchanges.0.direction", "both", "apps.hosted.0.exchanges.0.direction", "'in' or 'out'"),
        ("hosted.0.exchanges.0.peer", "somewhere", "apps.hosted.0.exchanges.0.peer.auxip", "'auxip-ingestion'"),
        ("hosted.0.exchanges.0.peer.cidr", "0.0.0.0/0", "apps.hosted.0.exchanges.0.peer.external.cidr", "not allowed"),
        ("hosted.0.exchanges.0.peer.url", "sftp://u:pw@fos.example.int/in/", "apps.hosted.0.exchanges.0.peer",
         "credentials do not belong in the URL"),
        ("hosted.0.exchanges.0.peer.url", "webdav://fos.example.int/in/", "apps.hosted.0.exchanges.0.peer",
         "unsupported scheme 'webdav'"),
        ("hosted.0.exchanges.0.port", 22, "apps.hosted.0.exchanges.0.port", "differs from the port of the peer URL"),
        ("hosted.0.exchanges.1.port", 443, "apps.hosted.0.exchanges.1.port", "opens no network path"),
        ("hosted.0.exchanges.0.productTypes", ["aux_*"], "apps.hosted.0.exchanges.0.productTypes.0", "pattern"),
        ("hosted.0.exchanges.1.name", "plans-to-fos", "apps.hosted.0.exchanges", "duplicate exchange names"),
        ("hosted.0.quota.pods", 1, "apps.hosted.0", "quota.pods 1 is below 2"),
        ("hosted.0.quota.limits.memory", "6Gi", "apps.hosted.0", "quota.limits cannot hold 2 pods"),
        ("hosted.0.resources.requests.cpu", "3", "apps.hosted.0.resources", "requests must not exceed limits"),
        ("hosted.0.port", None, "apps.hosted.0", "ingressHost needs `port`"),
        ("hosted.1.name", "mp", "apps.hosted", "duplicate application names"),
        ("exchangeStorage", None, "apps", "configure it"),
        ("hosted.0.kind", "vm", "apps.hosted.0.image", "has no image"),
    ],
)  # fmt: skip
def test_bad_apps_config_names_the_key(path: str, value: Any, key: str, words: str) -> None:
    with pytest.raises(StackConfigError) as error:
        load_stack_config(engine_config(mutate(path, value)))
    lines = [line.strip() for line in str(error.value).splitlines()[1:]]
    assert any(line.startswith(f"auxip-platform:{key}: ") and words in line for line in lines), lines


def test_exemption_without_reason_names_the_namespace_key() -> None:
    document = prod_document()["config"]
    namespaces = document["auxip-platform:kubernetes"]["namespaces"]
    index = next(i for i, ns in enumerate(namespaces) if ns["name"] == "hosted-sra")
    namespaces[index]["podSecurity"] = "baseline"
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}
    with pytest.raises(StackConfigError, match=rf"auxip-platform:kubernetes\.namespaces\.{index}: .*exemptionReason"):
        load_stack_config(config)


def test_cross_section_problems_name_the_entry() -> None:
    document = prod_document()["config"]
    document["auxip-platform:kubernetes"]["namespaces"] = [
        ns for ns in document["auxip-platform:kubernetes"]["namespaces"] if ns["name"] not in ("hosted-mp", "auxip")
    ]
    document["auxip-platform:apps"]["hosted"][1] = {"name": "sra", "kind": "vm"}
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}
    with pytest.raises(StackConfigError) as error:
        load_stack_config(config)
    assert str(error.value).splitlines()[1:] == [
        "  auxip-platform:apps.auxipNamespace: 'auxip' is not in kubernetes.namespaces (the routes go there)",
        "  auxip-platform:apps.hosted.0.name: declare its namespace 'hosted-mp' in kubernetes.namespaces "
        "(with its Pod Security level)",
        "  auxip-platform:apps.hosted.1.kind: vm, but the infra layer has no hosted VM 'sra' "
        "(openstack.hostedVms[].name, or an existing host with role hosted and that group)",
    ]


def test_vm_without_egress_to_the_exchange_storage_is_refused() -> None:
    document = prod_document()["config"]
    document["auxip-platform:infra"]["openstack"]["hostedVms"].append(
        {"name": "sra", "flavor": "eo2a.large", "count": 1, "ports": [8443]}
    )
    document["auxip-platform:apps"]["hosted"][1] = {"name": "sra", "kind": "vm"}
    document["auxip-platform:kubernetes"]["namespaces"].remove({"name": "hosted-sra"})

    def engine(document: dict[str, Any]) -> dict[str, str]:
        return {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}

    # prod's egress already reaches the object storage endpoint: the VM variant is accepted as is.
    assert load_stack_config(engine(document)).apps.hosted[1].kind == "vm"
    document["auxip-platform:infra"]["openstack"]["egress"] = [
        rule for rule in document["auxip-platform:infra"]["openstack"]["egress"] if rule["cidr"] != "203.0.113.32/28"
    ]
    config = engine(document)
    with pytest.raises(StackConfigError, match=r"apps\.hosted\.1\.kind: vm, but no infra\.openstack\.egress rule"):
        load_stack_config(config)
    assert AppsConfig.model_validate(document["auxip-platform:apps"]).hosted[1].kind == "vm"
