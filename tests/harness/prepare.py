"""Fetch and build every cached artifact the suite needs, one step at a time with progress and timings.

`make test` runs this first so that a fresh machine shows what it is downloading instead of a silent first fixture,
and so that a broken download fails fast with its own message. Everything lands in `cache_root()` or ~/.m2 and is
reused by later runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from auxip_testing import app_image, go_tools
from auxip_testing.cache import cache_root, maven_artifact
from auxip_testing.collections_cache import collections_path
from auxip_testing.host_image import ensure_image
from auxip_testing.kafka import kafka_classpath
from auxip_testing.keycloak import keycloak_home
from auxip_testing.newman import newman_binary
from auxip_testing.render import checkov_python
from auxip_testing.s3 import S3PROXY_COORDINATES

STEPS: list[tuple[str, Callable[[], object]]] = [
    ("Ansible collections (from the ansible wheel on PyPI)", collections_path),
    ("S3Proxy jar (Maven Central)", lambda: maven_artifact(S3PROXY_COORDINATES)),
    ("Kafka broker classpath (Maven Central)", kafka_classpath),
    ("Keycloak distribution, built and with a template database (Maven Central)", keycloak_home),
    ("newman, the Postman CLI runner for ESA's conformance suite (npm registry)", newman_binary),
    ("checkov in its own venv (PyPI; its pins conflict with the project's)", checkov_python),
    (
        "Go-built tools: kube-apiserver and kube-controller-manager, etcd, helm, the Pulumi CLI and its Kubernetes "
        "provider (Go module proxy; about 25 min of two cores on a cold machine)",
        go_tools.build_all,
    ),
    ("Debian 12 systemd test-host image (debootstrap + podman import)", ensure_image),
    ("AUXIP apps base image (debootstrap minbase + podman import)", app_image.ensure_base),
    ("Wheelhouse of the apps image's runtime dependencies (PyPI)", app_image.dependency_wheelhouse),
]


def main() -> int:
    print(f"==> preparing cached test artifacts in {cache_root()}", file=sys.stderr)
    total = time.monotonic()
    for index, (what, step) in enumerate(STEPS, start=1):
        print(f"[{index}/{len(STEPS)}] {what} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = step()
        elapsed = time.monotonic() - started
        print(f"[{index}/{len(STEPS)}] done in {elapsed:.1f}s: {result}", file=sys.stderr, flush=True)
    print(f"==> artifacts ready in {time.monotonic() - total:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
