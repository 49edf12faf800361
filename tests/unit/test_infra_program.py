"""The infra layer under mocks, for the dev and prod stacks: what is created, how it is wired, what is left closed."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_platform.infra.policies import violations
from auxip_testing.pulumi_mocks import REPO_ROOT, RegisteredResource, _fake_ip, run_program

RULE = "openstack:networking/secGroupRule:SecGroupRule"
GROUP = "openstack:networking/secGroup:SecGroup"
INSTANCE = "openstack:compute/instance:Instance"


class Stack:
    """The resources of one stack run in a scratch project directory, and the inventory file it wrote."""

    def __init__(self, name: str, project: Path) -> None:
        shutil.copy(REPO_ROOT / "__main__.py", project)
        shutil.copy(REPO_ROOT / f"Pulumi.{name}.yaml", project)
        self.name = name
        self.resources = run_program(name, project_dir=project)
        self.inventory_file = project / "build" / "inventory" / f"{name}.yml"

    def of(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str) -> RegisteredResource:
        return next(r for r in self.of(type_token) if r.name == name)

    def role(self, resource: RegisteredResource) -> str:
        return dict(resource.inputs.get("metadata") or {}).get("role") or _tag(resource, "role")

    def group_id(self, role: str) -> str:
        return f"{self.name}-{role}-id"  # the mocks' id for the security group resource `<stack>-<role>`

    def rules(self, role: str, direction: str = "ingress") -> list[dict[str, Any]]:
        gid = self.group_id(role)
        return [
            r.inputs for r in self.of(RULE) if r.inputs["securityGroupId"] == gid and r.inputs["direction"] == direction
        ]


def _tag(resource: RegisteredResource, key: str) -> str:
    return next((t.split("=", 1)[1] for t in resource.inputs.get("tags") or [] if t.startswith(f"{key}=")), "")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return Stack("dev", tmp_path_factory.mktemp("dev"))


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return Stack("prod", tmp_path_factory.mktemp("prod"))


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dev", {"bastion": 1, "control-plane": 1, "worker": 2, "ipa": 1}),
        ("prod", {"bastion": 1, "control-plane": 3, "worker": 5, "ipa": 2, "monitoring": 1, "hosted": 2}),
    ],
)
def test_vm_count_per_role(name: str, expected: dict[str, int], request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(name)
    assert Counter(stack.role(vm) for vm in stack.of(INSTANCE)) == expected


def test_every_resource_passes_every_policy(stack: Stack) -> None:
    found = {r.name: violations(r.type, r.inputs) for r in stack.resources}
    assert {name: v for name, v in found.items() if v} == {}
    assert len(stack.of(RULE)) > 50  # the check above really walked the rules


def test_every_cloud_resource_is_a_child_of_an_infra_component(stack: Stack) -> None:
    components = {r.urn: r.type for r in stack.resources if not r.custom}
    for resource in stack.resources:
        if resource.type.startswith("openstack:"):
            assert components.get(resource.parent, "").startswith("auxip:infra:"), resource.name
    infra = next(r for r in stack.resources if r.type == "auxip:infra:Infra")
    assert components[next(r for r in stack.resources if r.type == "auxip:infra:OpenStackInfra").parent] == (
        "auxip:infra:Infra"
    )
    assert infra.parent.endswith(f"pulumi:pulumi:Stack::auxip-platform-{stack.name}")


def test_ssh_only_to_the_bastion_from_admin_networks(prod: Stack) -> None:
    ssh = [r.inputs for r in prod.of(RULE) if r.inputs["direction"] == "ingress" and r.inputs.get("portRangeMin") == 22]
    from_addresses = sorted((r["securityGroupId"], r["remoteIpPrefix"]) for r in ssh if r.get("remoteIpPrefix"))
    assert from_addresses == [
        ("prod-bastion-id", "192.0.2.0/24"),
        ("prod-bastion-id", "198.51.100.0/28"),
    ]
    from_groups = {r["securityGroupId"]: r["remoteGroupId"] for r in ssh if not r.get("remoteIpPrefix")}
    assert from_groups == {
        prod.group_id(role): "prod-bastion-id" for role in ("control-plane", "worker", "ipa", "monitoring", "hosted")
    }


def test_only_the_ingress_https_listener_is_world_open(stack: Stack) -> None:
    world = [
        r.inputs
        for r in stack.of(RULE)
        if r.inputs["direction"] == "ingress"
        and not r.inputs.get("remoteGroupId")
        and r.inputs.get("remoteIpPrefix") in (None, "0.0.0.0/0")
    ]
    assert [(w["securityGroupId"], w["protocol"], w["portRangeMin"], w["portRangeMax"]) for w in world] == [
        (stack.group_id("ingress-lb"), "tcp", 443, 443)
    ]


def test_kubernetes_api_only_from_bastion_and_internal_lb(dev: Stack) -> None:
    api = [r for r in dev.rules("control-plane") if r.get("portRangeMin") == 6443]
    assert sorted(r.get("remoteGroupId") or r.get("remoteIpPrefix") for r in api) == ["10.10.1.0/24", "dev-bastion-id"]
    vip = dev.rules("internal-lb")
    assert sorted(r["remoteGroupId"] for r in vip) == ["dev-bastion-id", "dev-control-plane-id", "dev-worker-id"]
    assert {r["portRangeMin"] for r in vip} == {6443}
    listeners = {
        r.name: (r.inputs["protocolPort"], r.inputs.get("allowedCidrs"))
        for r in dev.of("openstack:loadbalancer/listener:Listener")
    }
    assert listeners == {"dev-internal-lb": (6443, ["10.10.0.0/24"]), "dev-ingress-lb": (443, None)}


def test_egress_is_restricted_to_private_network_dns_and_declared_destinations(prod: Stack) -> None:
    assert all(g.inputs["deleteDefaultRules"] is True for g in prod.of(GROUP))
    destinations = {
        (r.get("protocol"), r.get("portRangeMin"), r["remoteIpPrefix"]) for r in prod.rules("worker", "egress")
    }
    assert destinations == {
        (None, None, "10.20.0.0/22"),
        (None, None, "10.20.4.0/24"),
        ("udp", 53, "10.20.0.2/32"),
        ("tcp", 53, "10.20.0.2/32"),
        ("udp", 53, "10.20.0.3/32"),
        ("tcp", 53, "10.20.0.3/32"),
        ("tcp", 443, "203.0.113.16/28"),
        ("tcp", 443, "203.0.113.32/28"),
        ("udp", 123, "203.0.113.48/29"),
    }


def test_control_plane_and_ipa_are_in_hard_anti_affinity_groups(prod: Stack) -> None:
    groups = {g.name: g.inputs["policies"] for g in prod.of("openstack:compute/serverGroup:ServerGroup")}
    assert groups == {
        "prod-control-plane": "anti-affinity",
        "prod-ipa": "anti-affinity",
        "prod-worker-general": "soft-anti-affinity",
        "prod-worker-ingest": "soft-anti-affinity",
        "prod-monitoring": "soft-anti-affinity",
        "prod-app-sftp-gateway": "soft-anti-affinity",
    }
    for vm in prod.of(INSTANCE):
        hints = vm.inputs.get("schedulerHints")
        if prod.role(vm) == "control-plane":
            assert hints == [{"group": "prod-control-plane-id"}]
        if prod.role(vm) == "bastion":
            assert hints is None


def test_floating_ips_only_on_bastion_and_public_lb(stack: Stack) -> None:
    fips = {_tag(f, "role"): f.inputs["portId"] for f in stack.of("openstack:networking/floatingIp:FloatingIp")}
    assert fips == {"bastion": f"{stack.name}-bastion-1-id", "ingress-lb": f"{stack.name}-ingress-lb-vip-port-id"}


def test_stateful_boot_volumes_survive_termination(prod: Stack) -> None:
    kept = {prod.role(vm): vm.inputs["blockDevices"][0]["deleteOnTermination"] for vm in prod.of(INSTANCE)}
    assert kept == {
        "bastion": True,
        "worker": True,
        "control-plane": False,
        "ipa": False,
        "monitoring": False,
        "hosted": False,
    }
    assert {vm.inputs["blockDevices"][0]["uuid"] for vm in prod.of(INSTANCE)} == {"getImage-Debian-12-id"}
    data = Counter(v.inputs["metadata"]["role"] for v in prod.of("openstack:blockstorage/volume:Volume"))
    assert data == {"control-plane": 3, "ipa": 2, "monitoring": 1, "hosted": 2}


def test_load_balancer_members_are_the_nodes(dev: Stack) -> None:
    members = {
        (m.name.rsplit("-", 1)[0], m.inputs["address"], m.inputs["protocolPort"])
        for m in dev.of("openstack:loadbalancer/member:Member")
    }
    assert members == {
        ("dev-internal-lb", _fake_ip("dev-control-plane-1"), 6443),
        ("dev-ingress-lb", _fake_ip("dev-worker-general-1"), 30443),
        ("dev-ingress-lb", _fake_ip("dev-worker-general-2"), 30443),
    }
    balancers = {b.name: b.inputs["vipSubnetId"] for b in dev.of("openstack:loadbalancer/loadBalancer:LoadBalancer")}
    assert balancers == {"dev-internal-lb": "dev-services-id", "dev-ingress-lb": "dev-services-id"}


def test_network_router_and_buckets(dev: Stack) -> None:
    subnets = {
        s.name: (s.inputs["cidr"], s.inputs["dnsNameservers"]) for s in dev.of("openstack:networking/subnet:Subnet")
    }
    assert subnets == {"dev-nodes": ("10.10.0.0/24", ["10.10.0.2"]), "dev-services": ("10.10.1.0/24", ["10.10.0.2"])}
    router = dev.of("openstack:networking/router:Router")[0]
    assert router.inputs["externalNetworkId"] == "getNetwork-Ext-Net-id"
    containers = {
        c.inputs["name"]: c.inputs["metadata"]["role"] for c in dev.of("openstack:objectstorage/container:Container")
    }
    assert containers == {
        "auxip-dev-products": "bucket-products",
        "auxip-dev-backups": "bucket-backups",
        "auxip-dev-thanos": "bucket-thanos",
        "auxip-dev-logs": "bucket-logs",
    }
    assert "openstack:dns/zone:Zone" not in {r.type for r in dev.resources}


def test_prod_dns_names_the_public_addresses(prod: Stack) -> None:
    records = {r.inputs["name"]: r.inputs["records"] for r in prod.of("openstack:dns/recordSet:RecordSet")}
    assert records == {
        "ingress.auxip.example.eu.": [_fake_ip("fip-prod-ingress-lb")],
        "bastion.auxip.example.eu.": [_fake_ip("fip-prod-bastion")],
    }


def test_cloud_init_only_prepares_access(dev: Stack) -> None:
    vm = dev.named("dev-ipa-1", INSTANCE)
    assert vm.inputs["userData"].startswith("#cloud-config\n")
    document = yaml.safe_load(vm.inputs["userData"])
    assert set(document) == {"hostname", "preserve_hostname", "manage_etc_hosts", "disable_root", "ssh_pwauth", "users"}
    assert document["hostname"] == "dev-ipa-1"
    assert [u["name"] for u in document["users"]] == ["auxip-admin"]
    assert document["users"][0]["ssh_authorized_keys"][0].startswith("ssh-ed25519 ")
    assert document["ssh_pwauth"] is False


def test_dev_inventory_file_has_groups_hosts_and_jump_host(dev: Stack) -> None:
    bastion_ip = _fake_ip("fip-dev-bastion")
    inventory = yaml.safe_load(dev.inventory_file.read_text())

    def host(name: str, **extra: object) -> dict[str, object]:
        return {"ansible_host": _fake_ip(name), "private_address": _fake_ip(name), **extra}

    pool = {"node_pool": "general", "node_labels": {}, "node_taints": []}
    assert inventory == {
        "all": {
            "vars": {"ansible_user": "auxip-admin"},
            "children": {
                "bastion": {
                    "hosts": {
                        "dev-bastion-1": {"ansible_host": bastion_ip, "private_address": _fake_ip("dev-bastion-1")}
                    }
                },
                "behind_bastion": {
                    "vars": {"ansible_ssh_common_args": f"-o ProxyJump=auxip-admin@{bastion_ip}"},
                    "children": {
                        "k8s_cluster": {
                            "children": {
                                "control_plane": {"hosts": {"dev-control-plane-1": host("dev-control-plane-1")}},
                                "workers": {
                                    "hosts": {
                                        "dev-worker-general-1": host("dev-worker-general-1", **pool),
                                        "dev-worker-general-2": host("dev-worker-general-2", **pool),
                                    }
                                },
                            }
                        },
                        "ipa": {"hosts": {"dev-ipa-1": host("dev-ipa-1")}},
                    },
                },
            },
        }
    }


def test_prod_inventory_groups_pools_and_hosted_apps(prod: Stack) -> None:
    children = yaml.safe_load(prod.inventory_file.read_text())["all"]["children"]["behind_bastion"]["children"]
    assert list(children) == ["k8s_cluster", "hosted_sftp_gateway", "ipa", "monitoring"]
    workers = children["k8s_cluster"]["children"]["workers"]["hosts"]
    assert len(workers) == 5
    assert workers["prod-worker-ingest-1"]["node_taints"] == ["auxip.esa.int/ingest=true:NoSchedule"]
    assert workers["prod-worker-ingest-1"]["node_labels"] == {"auxip.esa.int/pool": "ingest"}
    assert sorted(children["hosted_sftp_gateway"]["hosts"]) == ["prod-app-sftp-gateway-1", "prod-app-sftp-gateway-2"]
