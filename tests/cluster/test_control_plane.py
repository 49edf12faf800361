"""The control plane of the cluster tier runs with the `kubernetes_control_plane` role's API-server configuration,
and that configuration does on a real kube-apiserver what the role says it does (KCP-03 audit, KCP-04 encryption at
rest, KCP-05 admission, the CIS flags): what the offline checks of the rendered files cannot show."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
from kubernetes import client

from auxip_testing.kube_control_plane import ControlPlane

pytestmark = [pytest.mark.cluster]


@pytest.fixture
def namespace(kube_control_plane: ControlPlane) -> str:
    core = client.CoreV1Api(kube_control_plane.api_client())
    name = f"cp-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def test_secrets_are_encrypted_at_rest_with_the_roles_provider(
    kube_control_plane: ControlPlane, namespace: str
) -> None:
    core = client.CoreV1Api(kube_control_plane.api_client())
    plaintext = f"not-in-etcd-{uuid.uuid4().hex}"
    core.create_namespaced_secret(namespace, {"metadata": {"name": "probe"}, "stringData": {"token": plaintext}})
    stored = kube_control_plane.etcd_value(f"/registry/secrets/{namespace}/probe")
    assert stored is not None
    assert stored.startswith(b"k8s:enc:secretbox:v1:")
    assert plaintext.encode() not in stored
    # Read back through the API: the same key decrypts it.
    assert core.read_namespaced_secret("probe", namespace).data["token"]
    # A ConfigMap is not in the role's encrypted resources: stored as it is (the check above can fail).
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "plain"}, "data": {"v": plaintext}})
    assert plaintext.encode() in (kube_control_plane.etcd_value(f"/registry/configmaps/{namespace}/plain") or b"")


def _audit_events(plane: ControlPlane) -> list[dict]:
    return [json.loads(line) for line in plane.audit_log.read_text().splitlines() if line.strip()]


def test_audit_log_keeps_secrets_at_metadata_and_rbac_changes_in_full(
    kube_control_plane: ControlPlane, namespace: str
) -> None:
    api = kube_control_plane.api_client()
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "audited"}, "data": {}})
    role = {
        "metadata": {"name": "audit-probe"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    client.RbacAuthorizationV1Api(api).create_namespaced_role(namespace, role)
    events = _audit_events(kube_control_plane)
    secret = [
        e
        for e in events
        if e.get("objectRef", {}).get("resource") == "secrets" and e["objectRef"].get("namespace") == namespace
    ]
    assert secret, "no audit event for the Secret"
    assert {e["level"] for e in secret} == {"Metadata"}
    assert not any("requestObject" in e or "responseObject" in e for e in secret)
    rbac = [e for e in events if e.get("objectRef", {}).get("name") == "audit-probe" and e["verb"] == "create"]
    assert [e["level"] for e in rbac] == ["RequestResponse"]
    assert rbac[0]["requestObject"]["rules"][0]["verbs"] == ["get"]


def test_anonymous_requests_are_refused(kube_control_plane: ControlPlane) -> None:
    context = ssl.create_default_context(cafile=str(kube_control_plane.ca))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{kube_control_plane.url}/version", context=context, timeout=5)  # noqa: S310
    assert refused.value.code == 401


def test_only_tls12_aead_ciphers_are_offered(kube_control_plane: ControlPlane) -> None:
    host, port = kube_control_plane.url.removeprefix("https://").split(":")
    legacy = ssl.create_default_context(cafile=str(kube_control_plane.ca))
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.set_ciphers("AES128-SHA:ECDHE-RSA-AES128-SHA")  # CBC suites, outside the role's list
    with pytest.raises(ssl.SSLError):
        legacy.wrap_socket(socket.create_connection((host, int(port)), 5), server_hostname=host)
    modern = ssl.create_default_context(cafile=str(kube_control_plane.ca))
    modern.maximum_version = ssl.TLSVersion.TLSv1_2
    modern.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with modern.wrap_socket(socket.create_connection((host, int(port)), 5), server_hostname=host) as tls:
        assert tls.version() == "TLSv1.2"


def test_pod_security_defaults_apply_to_unlabelled_namespaces(kube_control_plane: ControlPlane, namespace: str) -> None:
    # The role's cluster-wide default is restricted: a namespace without labels refuses a root pod.
    pod = {
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}]},
    }
    with pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(kube_control_plane.api_client()).create_namespaced_pod(namespace, pod, dry_run="All")
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]
