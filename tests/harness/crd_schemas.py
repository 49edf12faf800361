"""Strict schemas for custom resources, from the CRDs the cluster services' charts install.

kubernetes-validate only knows the core kinds. Every CRD of the stacks comes from one of their Helm releases: the
charts in `../shared/charts/` are rendered with `--include-crds` and our values (`auxip_testing.charts`), so the
schemas are those of the chart versions we pin, as the releases install them (cert-manager's templated CRDs,
CloudNativePG's, Kong's and Strimzi's `crds/` directories, Calico's CRD chart for `operator.tigera.io` and
`crd.projectcalico.org`). The CRDs of every example stack are gathered; two releases installing different schemas
for one kind is an error.

Each version's `openAPIV3Schema` is made strict the way `kubectl --validate=strict` treats structural schemas: an
object with `properties` rejects other fields unless the CRD marks it `x-kubernetes-preserve-unknown-fields`.
CEL rules (`x-kubernetes-validations`) are not evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import kubernetes_validate

from auxip_testing import charts


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


def chart_crds() -> Iterator[tuple[str, dict[str, Any]]]:
    """(`<chart>-<version>`, CRD) for every CRD the Helm releases of every example stack install."""
    for stack in charts.example_stacks():
        for rendered in charts.stack_charts(stack):
            source = rendered.release.archive.name.removesuffix(".tgz")
            for obj in rendered.objects:
                if obj.get("kind") == "CustomResourceDefinition":
                    yield source, obj


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], CrdSchema]:
    """(apiVersion, kind) → strict schema, for every served version of every CRD the charts install."""
    found: dict[tuple[str, str], CrdSchema] = {}
    for source, crd in chart_crds():
        for item in _from_crd(crd, source):
            known = found.setdefault((item.api_version, item.kind), item)
            if (known.schema, known.namespaced) != (item.schema, item.namespaced):
                raise ValueError(f"{item.kind} ({item.api_version}): {known.source} and {item.source} differ")
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
