"""A real Kubernetes control plane on loopback, envtest-style: etcd, kube-apiserver and a kube-controller-manager
running only the controllers an API server without nodes needs. One per test session (`kube_control_plane`).

What it is: the API server of `go_tools.KUBERNETES_VERSION` configured as production: the `kubernetes_control_plane`
role's API-server arguments (CIS flags, Node+RBAC authorisation, the admission plugins) and the three files it writes
(admission configuration with the Pod Security defaults and EventRateLimit, audit policy, Secrets encryption at rest
with a key generated per run), rendered by the role's own templates, with TLS from a CA generated per run. Only what
names a node's files is replaced (certificates, keys, the audit log path), and the etcd and kubelet client
settings are left out: etcd listens on loopback in plain HTTP, and there are no kubelets.
The controller manager runs `namespace` (namespaces are really deleted), `garbagecollector` (foreground deletion,
Pulumi's default, completes), `serviceaccount` and `serviceaccount-token` (default accounts), `resourcequota` (quota
status, which Pulumi waits for) and `clusterrole-aggregation`.

What it is not: no kubelet, scheduler or workload controllers, so no pod ever runs; admission webhooks are off
(`ValidatingAdmissionWebhook`, `MutatingAdmissionWebhook`), since the charts' webhook servers would be pods that
never start and every call to them would fail or time out. One stand-in for the missing nodes: Helm's pre-delete and
post-delete hook Jobs are marked succeeded as soon as they appear (`HookJobStandIn`). The Pulumi provider cannot
skip uninstall hooks (its `disableWebhooks` only covers install and upgrade) and Helm waits for a hook Job without
a time limit, so `pulumi destroy` of a chart with such a hook (tigera-operator's cleanup Job) would hang forever.
`run_control_plane()` works outside pytest too (`python -m auxip_testing.kube_control_plane` keeps one running).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import secrets
import shutil
import signal
import ssl
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auxip_testing import go_tools
from auxip_testing.process import ManagedProcess, free_port, running
from auxip_testing.role_templates import render_role_template
from auxip_testing.tls import ClientCertificate, TlsMaterial, make_ca_server_and_clients

ADMIN = "auxip-admin"
#: `O=system:masters`: the group RBAC always authorises (the bootstrap administrator, as kubeadm's admin.conf).
ADMIN_GROUPS = ("system:masters",)
CONTROLLER_MANAGER = "system:kube-controller-manager"
ROLE = "kubernetes_control_plane"
#: API-server flag -> the role template that writes the file it names.
ROLE_FILES = {
    "admission-control-config-file": "admission-config.yaml.j2",
    "audit-policy-file": "audit-policy.yaml.j2",
    "encryption-provider-config": "encryption-config.yaml.j2",
}
#: The role's arguments about etcd's client TLS and the kubelets: nothing here for them to point at.
NODE_ONLY_ARGUMENTS = ("etcd-", "kubelet-")
SERVICE_CIDR = "10.96.0.0/16"
CONTROLLERS = (
    "namespace",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "resourcequota",
    "clusterrole-aggregation",
)


@dataclass(frozen=True)
class ControlPlane:
    url: str
    kubeconfig: Path
    ca: Path
    admin: ClientCertificate
    version: str
    log_dir: Path
    #: etcd's client URL (plain HTTP on loopback): tests read what the API server really stored.
    etcd_url: str

    @property
    def audit_log(self) -> Path:
        return self.log_dir / "audit.log"

    def etcd_value(self, key: str) -> bytes | None:
        """The raw value etcd holds under `key` (`/registry/secrets/<ns>/<name>`), through etcd's JSON gateway."""
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        request = urllib.request.Request(f"{self.etcd_url}/v3/kv/range", data=body, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            kvs = json.loads(response.read()).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def api_client(self):  # type: ignore[no-untyped-def]  # the kubernetes package is untyped
        """A `kubernetes.client.ApiClient` authenticated as the administrator."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def get(self, path: str) -> bytes:
        """GET `path` as the administrator (readiness, discovery)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        with urllib.request.urlopen(f"{self.url}{path}", context=context, timeout=5) as response:  # noqa: S310
            return bytes(response.read())


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public = directory / "sa.pub"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _kubeconfig(path: Path, url: str, ca: Path, client: ClientCertificate, user: str) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "auxip-test", "cluster": {"server": url, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": "auxip-test", "context": {"cluster": "auxip-test", "user": user}}],
        "current-context": "auxip-test",
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def production_api_server_files(directory: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """The role's API-server arguments and its admission, audit and encryption files written into `directory`.

    Rendered with the role's templates and defaults, exactly as a play writes them on a control-plane node; the
    Secrets encryption key (from Vault in production) is generated here.
    """
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    overrides = {f"{ROLE}_encryption_key": key, "inventory_hostname": "auxip-test-control-plane"}
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = {}
    for flag, template in ROLE_FILES.items():
        path = directory / template.removesuffix(".j2")
        path.write_text(render_role_template(ROLE, template, overrides))
        path.chmod(0o600)
        files[flag] = path
    documents = yaml.safe_load_all(render_role_template(ROLE, "kubeadm-config.yaml.j2", overrides))
    cluster = next(doc for doc in documents if doc and doc.get("kind") == "ClusterConfiguration")
    extra = cluster["apiServer"]["extraArgs"]
    # kubeadm.k8s.io/v1beta4 lists {name, value}; v1beta3 (before 1.31) a mapping.
    arguments = {a["name"]: a["value"] for a in extra} if isinstance(extra, list) else dict(extra)
    return arguments, files


def _etcd(root: Path, client_port: int, peer_port: int) -> ManagedProcess:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    argv = [
        str(go_tools.binary("etcd")),
        "--name=auxip-test",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=auxip-test={peer}",
        # A throw-away store: durability costs seconds per `pulumi up` and buys nothing here.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    return ManagedProcess(name=f"etcd:{client_port}", argv=argv, log_path=root / "etcd.log")


def _api_server(root: Path, port: int, etcd_port: int, tls: TlsMaterial, sa_key: Path, sa_pub: Path) -> ManagedProcess:
    arguments, files = production_api_server_files(root / "apiserver-config")
    for name in list(arguments):
        if name.startswith(NODE_ONLY_ARGUMENTS):
            del arguments[name]
    arguments.update({flag: str(path) for flag, path in files.items()})
    arguments.update(
        {
            "etcd-servers": f"http://127.0.0.1:{etcd_port}",
            "bind-address": "127.0.0.1",
            "advertise-address": "127.0.0.1",
            "secure-port": str(port),
            "tls-cert-file": str(tls.cert),
            "tls-private-key-file": str(tls.key),
            "client-ca-file": str(tls.ca),
            "service-account-key-file": str(sa_pub),
            "service-account-signing-key-file": str(sa_key),
            "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
            "service-cluster-ip-range": SERVICE_CIDR,
            "audit-log-path": str(root / "audit.log"),
            # 127.0.0.1 is not a valid endpoint address for the `kubernetes` Service.
            "endpoint-reconciler-type": "none",
            # As kubeadm sets it: Pod Security admission, not this flag, is what refuses privileged pods.
            "allow-privileged": "true",
            "disable-admission-plugins": "ValidatingAdmissionWebhook,MutatingAdmissionWebhook",
            "cert-dir": str(root / "generated-certs"),
        }
    )
    argv = [str(go_tools.binary("kube-apiserver")), *(f"--{name}={value}" for name, value in sorted(arguments.items()))]
    return ManagedProcess(name=f"kube-apiserver:{port}", argv=argv, log_path=root / "kube-apiserver.log")


def _controller_manager(root: Path, kubeconfig: Path, ca: Path, sa_key: Path) -> ManagedProcess:
    argv = [
        str(go_tools.binary("kube-controller-manager")),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        f"--service-account-private-key-file={sa_key}",
        f"--root-ca-file={ca}",
        # Each controller acts as its own service account with its bootstrap role, as kubeadm sets it up.
        "--use-service-account-credentials=true",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        # Namespaces and quotas are reconciled within seconds, not minutes.
        "--concurrent-namespace-syncs=4",
        "--resource-quota-sync-period=10s",
    ]
    return ManagedProcess(name="kube-controller-manager", argv=argv, log_path=root / "kube-controller-manager.log")


class HookJobStandIn:
    """Marks Helm's uninstall hook Jobs succeeded in place of the kubelet that would run them (see the module doc).

    Only Jobs annotated `helm.sh/hook` with a pre-delete or post-delete hook are touched; `completed` lists them,
    so a test can tell which hooks a destroy went through.
    """

    HOOKS = frozenset({"pre-delete", "post-delete"})

    def __init__(self, plane: ControlPlane, interval: float = 0.5) -> None:
        self.plane, self.interval = plane, interval
        self.completed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hook-job-stand-in", daemon=True)

    def __enter__(self) -> HookJobStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from kubernetes import client

        batch = client.BatchV1Api(self.plane.api_client())
        while not self._stop.wait(self.interval):
            with contextlib.suppress(client.ApiException, OSError):
                for job in batch.list_job_for_all_namespaces().items:
                    hooks = set(((job.metadata.annotations or {}).get("helm.sh/hook") or "").split(","))
                    if hooks & self.HOOKS and not job.status.completion_time:
                        self._succeed(batch, job.metadata.namespace, job.metadata.name)

    def _succeed(self, batch: Any, namespace: str, name: str) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [
            {"type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
            for kind in ("SuccessCriteriaMet", "Complete")
        ]
        status = {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": conditions}
        batch.patch_namespaced_job_status(name, namespace, {"status": status})
        self.completed.append(f"{namespace}/{name}")


def _ready(plane: ControlPlane) -> bool:
    return plane.get("/readyz") == b"ok"


def _default_service_account(plane: ControlPlane) -> bool:
    # The serviceaccount controller has run once the `default` namespace has its account.
    with contextlib.suppress(Exception):
        plane.get("/api/v1/namespaces/default/serviceaccounts/default")
        return True
    return False


@contextlib.contextmanager
def run_control_plane(timeout: float = 120.0) -> Iterator[ControlPlane]:
    """Start etcd, kube-apiserver and the controller manager on free loopback ports; stop them all on exit."""
    root = Path(tempfile.mkdtemp(prefix="auxip-kube-"))
    try:
        pki = root / "pki"
        tls, clients = make_ca_server_and_clients(
            pki,
            ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            {ADMIN: ADMIN_GROUPS, CONTROLLER_MANAGER: ()},
        )
        sa_key, sa_pub = _service_account_keys(pki)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        url = f"https://127.0.0.1:{api_port}"
        kubeconfig = _kubeconfig(root / "kubeconfig", url, tls.ca, clients[ADMIN], ADMIN)
        kcm_kubeconfig = _kubeconfig(root / "kcm.kubeconfig", url, tls.ca, clients[CONTROLLER_MANAGER], "kcm")
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        plane = ControlPlane(url, kubeconfig, tls.ca, clients[ADMIN], go_tools.KUBERNETES_VERSION, root, etcd_url)
        etcd = _etcd(root, etcd_port, peer_port)
        with running(etcd, lambda: _etcd_healthy(etcd_port), timeout):
            api = _api_server(root, api_port, etcd_port, tls, sa_key, sa_pub)
            with running(api, lambda: _ready(plane), timeout):
                kcm = _controller_manager(root, kcm_kubeconfig, tls.ca, sa_key)
                with running(kcm, lambda: _default_service_account(plane), timeout), HookJobStandIn(plane):
                    yield plane
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _etcd_healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return b'"health":"true"' in response.read()


@pytest.fixture(scope="session")
def kube_control_plane() -> Iterator[ControlPlane]:
    with run_control_plane() as plane:
        yield plane


if __name__ == "__main__":
    with run_control_plane() as plane:
        print(f"KUBECONFIG={plane.kubeconfig}  ({plane.url}, Kubernetes {plane.version}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
