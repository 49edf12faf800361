"""`apiServerOnly`: the one transform that tells nothing to wait for nodes, and what it leaves alone."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from auxip_platform.platform.api_server_only import SKIP_AWAIT, WAITS_FOR_NODES, skip_node_waits


def transformed(type_: str, props: dict[str, Any], custom: bool = True) -> dict[str, Any] | None:
    result = skip_node_waits(pulumi.ResourceTransformArgs(custom, type_, "x", props, pulumi.ResourceOptions()))
    return None if result is None else dict(result.props)


@pytest.mark.parametrize("kind", sorted(WAITS_FOR_NODES))
def test_objects_that_wait_for_nodes_skip_their_await(kind: str) -> None:
    props = {"metadata": {"name": "x", "annotations": {"keep": "me"}}, "spec": {"replicas": 2}}
    changed = transformed(f"kubernetes:{kind}", props)
    assert changed is not None
    assert changed["metadata"]["annotations"] == {"keep": "me", SKIP_AWAIT: "true"}
    assert changed["spec"] == {"replicas": 2}
    assert props["metadata"]["annotations"] == {"keep": "me"}  # the original is not mutated


def test_objects_without_annotations_get_them() -> None:
    changed = transformed("kubernetes:apps/v1:Deployment", {"metadata": {"name": "x"}})
    assert changed == {"metadata": {"name": "x", "annotations": {SKIP_AWAIT: "true"}}}


@pytest.mark.parametrize(
    "type_",
    [
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ResourceQuota",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:kafka.strimzi.io/v1:Kafka",
        "auxip:platform:Kong",
    ],
)
def test_everything_else_is_left_alone(type_: str) -> None:
    # ResourceQuota's await is real here: the controller manager runs the resourcequota controller.
    assert transformed(type_, {"metadata": {"name": "x"}}) is None


def test_components_are_left_alone() -> None:
    assert transformed("kubernetes:apps/v1:Deployment", {"metadata": {}}, custom=False) is None


def test_helm_releases_neither_wait_nor_run_hooks() -> None:
    props = {"chart": "/charts/kong-3.4.1.tgz", "atomic": True, "values": {"replicaCount": 2}}
    assert transformed("kubernetes:helm.sh/v3:Release", props) == {
        "chart": "/charts/kong-3.4.1.tgz",
        "values": {"replicaCount": 2},
        "atomic": False,
        "skipAwait": True,
        "disableWebhooks": True,
    }
