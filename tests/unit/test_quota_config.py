"""The quota part of the stack configuration: sane defaults, and every mistake refused naming its key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auxip_platform.infra.stack_config import DEFAULT_QUOTA_PROFILES, StackConfigError, load_stack_config
from auxip_platform.platform.system_namespaces import SYSTEM_NAMESPACES


def stack(**overrides: Any) -> dict[str, str]:
    config = {"auxip-platform:environment": "dev", "auxip-platform:registryPrefix": "harbor.example/mirror"}
    config.update({f"auxip-platform:{key}": json.dumps(value) for key, value in overrides.items()})
    return config


def profile(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
        "pods": 10,
        "container": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "max": {"cpu": "1", "memory": "1Gi"},
        },
    }
    return {**base, **changes}


#: Quota limits below the container maximum: no container at its maximum could ever be admitted.
SMALL_LIMITS = profile(limits={"cpu": "2", "memory": "512Mi"}, requests={"cpu": "1", "memory": "256Mi"})
#: A container maximum below the container default limit.
LOW_MAX = {**profile(), "container": {**profile()["container"], "max": {"cpu": "100m", "memory": "1Gi"}}}


def test_defaults_cover_every_system_namespace_and_are_consistent() -> None:
    config = load_stack_config(stack())
    assert set(config.kubernetes.quota_profiles) == {"default", "operator", "node-agent", "ingress", "data"}
    assert {ns.quota_profile for ns in SYSTEM_NAMESPACES.values()} <= set(config.kubernetes.quota_profiles)
    default = DEFAULT_QUOTA_PROFILES["default"]
    assert (default.pods, default.load_balancers, default.node_ports) == (50, 0, 0)


def test_a_stack_profile_is_added_and_an_override_replaces_only_its_own() -> None:
    config = load_stack_config(stack(kubernetes={"quotaProfiles": {"small": profile(), "data": profile(pods=3)}}))
    profiles = config.kubernetes.quota_profiles
    assert profiles["small"].pods == 10
    assert profiles["data"].pods == 3
    assert profiles["operator"] == DEFAULT_QUOTA_PROFILES["operator"]


@pytest.mark.parametrize(
    ("kubernetes", "key", "words"),
    [
        (
            {"namespaces": [{"name": "auxip", "quota": "huge"}]},
            "kubernetes.namespaces.0.quota",
            "unknown quota profile 'huge'",
        ),
        (
            {"namespaces": [{"name": "auxip"}, {"name": "kong"}]},
            "kubernetes.namespaces.1.name",
            "system namespace declared in platform/system_namespaces.py",
        ),
        (
            {"quotaProfiles": {"x": profile(requests={"cpu": "two", "memory": "2Gi"})}},
            "kubernetes.quotaProfiles.x.requests.cpu",
            "pattern",
        ),
        (
            {"quotaProfiles": {"x": profile(requests={"cpu": "4", "memory": "2Gi"})}},
            "kubernetes.quotaProfiles.x",
            "requests must not exceed limits",
        ),
        (
            {"quotaProfiles": {"x": SMALL_LIMITS}},
            "kubernetes.quotaProfiles.x",
            "container.max must fit in limits",
        ),
        (
            {"quotaProfiles": {"x": profile(persistentVolumeClaims=3)}},
            "kubernetes.quotaProfiles.x",
            "needs storage",
        ),
        (
            {"quotaProfiles": {"x": profile(pods=0)}},
            "kubernetes.quotaProfiles.x.pods",
            "greater than or equal to 1",
        ),
        (
            {"quotaProfiles": {"x": profile(loadBalancer=1)}},
            "kubernetes.quotaProfiles.x.loadBalancer",
            "unknown key",
        ),
        (
            {"quotaProfiles": {"x": LOW_MAX}},
            "kubernetes.quotaProfiles.x.container",
            "container.limits must not exceed container.max",
        ),
    ],
)  # fmt: skip
def test_mistakes_name_the_key(kubernetes: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(StackConfigError) as error:
        load_stack_config(stack(kubernetes=kubernetes))
    line = next(line for line in str(error.value).splitlines() if f"auxip-platform:{key}:" in line)
    assert words in line


def test_hosted_namespace_is_sized_by_its_application_not_a_profile() -> None:
    apps = {
        "exchangeStorage": {
            "bucket": "auxip-hosted",
            "prefix": "hosted",
            "endpointUrl": "https://s3.example.eu",
            "cidr": "203.0.113.32/28",
            "region": "r",
            "credentials": "vault:kv/x",
        },
        "hosted": [
            {
                "name": "mp",
                "kind": "kubernetes",
                "image": "esa/mp:1.0",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "quota": {
                    "requests": {"cpu": "1", "memory": "1Gi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                    "pods": 2,
                },
            }
        ],
    }
    namespaces = [{"name": "auxip"}, {"name": "hosted-mp", "quota": "default"}]
    with pytest.raises(StackConfigError, match=r"kubernetes\.namespaces\.1\.quota: a hosted application's namespace"):
        load_stack_config(stack(kubernetes={"namespaces": namespaces}, apps=apps))
