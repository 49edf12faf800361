"""The upstream charts each stack installs, rendered with the exact values the Pulumi program computes.

The program registers its operators as Helm `Release` resources, which the offline render skips (Pulumi machinery,
not API objects). Here every release is rendered as Helm would install it: `helm template` of the packaged chart in
`../shared/charts/` (`charts_directory()`, never copied into the repository) at the pinned version, with the values
of the release, the stack's Kubernetes version, CRDs included and test hooks skipped. Each object then gets what
Helm adds at install time: the release namespace when a namespaced object names none, and on the objects of the
release manifest (neither the `crds/` directory nor hooks) the ownership label and annotations.

A values key the chart does not know is silently ignored by Helm unless the chart ships `values.schema.json`
(Helm then refuses the render). `unknown_values()` checks every chart: each key we pass must be a path of the
chart's `values.yaml` (a subchart's under its name or alias), of a `.Values.…` reference in its templates, or of
its schema; below a path whose content goes to Kubernetes as it is (an empty default map or a list, a
`toYaml .Values.…`, a schema object without properties, a Kubernetes-typed field such as `resources`) anything goes.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate.utils
import yaml

from auxip_platform.infra.stack_config import load_stack_file
from auxip_testing import go_tools
from auxip_testing.pulumi_mocks import REPO_ROOT, RegisteredResource, run_program

#: The shared directory (holding `charts/`) when it is not `../shared` beside the repository.
SHARED_DIR_ENV = "AUXIP_SHARED_DIR"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"

#: What Helm writes on every object of a release it installs (helm.sh/helm/v3/pkg/action, setMetadataVisitor).
MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "Helm")
RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
HOOK_ANNOTATION = "helm.sh/hook"

#: Cluster-scoped kinds of the Kubernetes API that charts render (everything else built in is namespaced).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        *("APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "CSINode"),
        *("CustomResourceDefinition", "FlowSchema", "IngressClass", "MutatingWebhookConfiguration", "Namespace"),
        *("Node", "PersistentVolume", "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration"),
        *("RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"),
        *("ValidatingWebhookConfiguration", "VolumeAttachment"),
    }
)

#: Kinds of every API group's schema that are messages, not resources.
API_META_KINDS = frozenset({"APIGroup", "APIVersions", "DeleteOptions", "Status", "WatchEvent"})

#: `# Source: <chart>/[charts/<subchart>/]crds/<file>`: a CRD Helm installs before the release, untracked by it.
CRDS_DIRECTORY = re.compile(r"^[^/]+(?:/charts/[^/]+)*/crds/")
#: libyaml's loader when PyYAML has it: the CRDs alone are 3 MB of YAML (2 s with the pure-Python loader).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SOURCE_COMMENT = re.compile(r"^# Source: (.+)$", re.MULTILINE)


class ChartError(RuntimeError):
    """A release cannot be rendered: its chart is missing, or Helm refused the values (the message says which)."""


def charts_directory() -> Path:
    """`$AUXIP_SHARED_DIR/charts`, else `../shared/charts` beside the repository: the packaged upstream charts."""
    shared = Path(os.environ.get(SHARED_DIR_ENV) or REPO_ROOT.parent / "shared")
    directory = shared / "charts"
    if not directory.is_dir():
        raise ChartError(
            f"{directory} does not exist: the upstream charts (<chart>-<version>.tgz) are read from there; "
            f"point {SHARED_DIR_ENV} at the directory holding charts/"
        )
    return directory


def example_stacks() -> list[str]:
    return sorted(path.name.split(".")[1] for path in REPO_ROOT.glob("Pulumi.*.yaml"))


def kubernetes_version(stack: str) -> str:
    return load_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml").kubernetes.version


def normalise(value: Any) -> Any:
    """Numbers cross the Pulumi RPC boundary as floats: turn integral ones back into ints (ports, replicas)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


# Releases ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: str
    version: str
    values: dict[str, Any] = field(compare=False)

    @property
    def archive(self) -> Path:
        """The packaged chart, `<chart>-<version>.tgz` in `charts_directory()`."""
        path = charts_directory() / f"{self.chart}-{self.version}.tgz"
        if not path.is_file():
            raise ChartError(f"release {self.name}: {path.name} is not in {path.parent} (chart or version not pinned?)")
        return path


#: `<chart>-<version>.tgz` as `helm package` names it: the version is the trailing semver (`v` allowed).
PACKAGE_NAME = re.compile(r"^(?P<chart>.+)-(?P<version>v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)\.tgz$")


def chart_and_version(inputs: Mapping[str, Any]) -> tuple[str, str]:
    """The chart name and version of a Release's inputs, whether `chart` names a repository chart, an `oci://` path,
    or a packaged chart file (`<dir>/<chart>-<version>.tgz`, which carries no separate version)."""
    chart = str(inputs["chart"]).rstrip("/").rsplit("/", 1)[-1]
    if chart.endswith(".tgz"):
        match = PACKAGE_NAME.match(chart)
        if match is None:
            raise ChartError(f"cannot tell chart and version apart in {inputs['chart']!r}")
        return match["chart"], match["version"]
    return chart, str(inputs["version"])


def releases(resources: list[RegisteredResource]) -> list[Release]:
    """The Helm releases the program registered, with their values as the program computed them."""
    found = []
    for resource in resources:
        if resource.type != RELEASE_TYPE:
            continue
        inputs = resource.inputs
        chart, version = chart_and_version(inputs)
        values = normalise(inputs.get("values") or {})
        found.append(Release(str(inputs["name"]), str(inputs["namespace"]), chart, version, values))
    return found


# Rendering -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedRelease:
    release: Release
    #: Every object Helm would create, in the order `helm template` prints them (CRDs first).
    objects: list[dict[str, Any]]


def helm_template(release: Release, kube_version: str) -> list[tuple[str, dict[str, Any]]]:
    """(`# Source:` path, object) for every document of `helm template` with the release's exact values."""
    with tempfile.TemporaryDirectory(prefix="helm-values-") as scratch:
        values_file = Path(scratch) / "values.json"  # JSON is YAML: no re-encoding can change a value
        values_file.write_text(json.dumps(release.values))
        command = [
            str(go_tools.helm()),
            *("template", release.name, str(release.archive), "--namespace", release.namespace),
            *("--kube-version", kube_version, "--api-versions", ",".join(served_api_versions(kube_version))),
            *("--include-crds", "--skip-tests", "-f", str(values_file)),
        ]
        # A private HOME: no repository list, cache or plugin of the user's can change the render.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch}
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=scratch)
    if result.returncode != 0:
        raise ChartError(f"helm template of release {release.name} ({release.archive.name}):\n{result.stderr.strip()}")
    return list(_documents(result.stdout))


@functools.cache
def served_api_versions(kube_version: str) -> tuple[str, ...]:
    """`group/version/Kind` of every kind the API server of `kube_version` serves in a GA version.

    Without a cluster, `helm template` only knows bare group/versions, while charts test kinds
    (`.Capabilities.APIVersions.Has "networking.k8s.io/v1/IngressClass"`): these make the render take the branches a
    real install takes. API groups of CRDs are not added: none of our releases' templates is gated on one with our
    values (Kong's cert-manager certificates and ServiceMonitor are off).
    """
    definitions = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{kube_version}.0-local/_definitions.json", kube_version
    )
    served = set()
    for definition in definitions["$defs"].values():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            kind = gvk["kind"]
            if re.fullmatch(r"v\d+", gvk["version"]) and kind not in API_META_KINDS and not kind.endswith("List"):
                served.add("/".join(filter(None, (gvk["group"], gvk["version"], kind))))
    return tuple(sorted(served))


def _documents(manifest: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # Helm heads each file's output with `# Source:`; the other documents of a multi-document file carry none.
    source = "?"
    for text in re.split(r"^---\s*$", manifest, flags=re.MULTILINE):
        if found := SOURCE_COMMENT.search(text):
            source = found.group(1)
        obj = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 (a safe loader, C or Python)
        if isinstance(obj, dict) and obj:
            yield source, obj


def custom_scopes(objects: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """(group, kind) → namespaced, for the CRDs among `objects`."""
    return {
        (crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd["spec"]["scope"] == "Namespaced"
        for crd in objects
        if crd.get("kind") == "CustomResourceDefinition"
    }


def _namespaced(obj: dict[str, Any], scopes: Mapping[tuple[str, str], bool]) -> bool:
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    kind = str(obj.get("kind"))
    if "." in group and not group.endswith(".k8s.io"):
        if (group, kind) not in scopes:
            raise ChartError(f"{kind} ({group}): no chart of the stack installs its CRD, so its scope is unknown")
        return scopes[(group, kind)]
    return kind not in CLUSTER_SCOPED_KINDS


def as_installed(
    release: Release, documents: list[tuple[str, dict[str, Any]]], scopes: Mapping[tuple[str, str], bool]
) -> list[dict[str, Any]]:
    """The objects as Helm creates them: namespaced ones in the release namespace unless they name one, and those
    of the release manifest marked as the release's (CRDs of `crds/` and hooks are created outside it)."""
    installed = []
    for source, obj in documents:
        metadata = obj.setdefault("metadata", {})
        if _namespaced(obj, scopes) and not metadata.get("namespace"):
            metadata["namespace"] = release.namespace
        annotations = metadata.get("annotations") or {}
        if not CRDS_DIRECTORY.match(source) and HOOK_ANNOTATION not in annotations:
            metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL[0]: MANAGED_BY_LABEL[1]}
            metadata["annotations"] = {
                **annotations,
                RELEASE_NAME_ANNOTATION: release.name,
                RELEASE_NAMESPACE_ANNOTATION: release.namespace,
            }
        installed.append(obj)
    return installed


def render_releases(found: list[Release], kube_version: str) -> list[RenderedRelease]:
    """Every release rendered; custom resources a chart renders get their scope from the CRDs of all releases."""
    documents = {release: helm_template(release, kube_version) for release in found}
    scopes = custom_scopes([obj for docs in documents.values() for _, obj in docs])
    return [RenderedRelease(release, as_installed(release, docs, scopes)) for release, docs in documents.items()]


@functools.cache
def _program(stack: str) -> tuple[RegisteredResource, ...]:
    return tuple(run_program(stack))


def program(stack: str) -> list[RegisteredResource]:
    """`run_program(stack)`, run once per process (each run is a fresh interpreter, a couple of seconds)."""
    return copy.deepcopy(list(_program(stack)))


@functools.cache
def _stack_charts(stack: str) -> tuple[RenderedRelease, ...]:
    return tuple(render_releases(releases(program(stack)), kubernetes_version(stack)))


def stack_charts(stack: str) -> list[RenderedRelease]:
    """The Helm releases of `Pulumi.<stack>.yaml`, rendered once per process (callers get their own copies)."""
    return copy.deepcopy(list(_stack_charts(stack)))


def chart_objects(stack: str) -> list[dict[str, Any]]:
    """Every object the stack's Helm releases create, CRDs included."""
    return [obj for rendered in stack_charts(stack) for obj in rendered.objects]


# Values keys ---------------------------------------------------------------------------------------------------------

#: A values path, key by key.
KeyPath = tuple[str, ...]

#: Fields whose content is a Kubernetes structure passed through as it is, whatever the chart's default holds.
KUBERNETES_TYPED = frozenset({"resources", "affinity", "tolerations", "nodeSelector", "env", "labels", "annotations"})
KUBERNETES_TYPED_SUFFIXES = ("SecurityContext", "securityContext", "Labels", "Annotations")

VALUES_REFERENCE = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
TO_YAML = re.compile(
    r"toYaml\s+\(?\s*\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)"
    r"|\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\|\s*toYaml"
)


@dataclass
class ChartKeys:
    """The values paths a chart (with its subcharts) knows, and those below which any key is accepted."""

    known: set[KeyPath] = field(default_factory=set)
    opaque: set[KeyPath] = field(default_factory=set)

    def add_known(self, path: KeyPath) -> None:
        for end in range(1, len(path) + 1):
            self.known.add(path[:end])

    def unknown(self, values: Any, prefix: KeyPath = ()) -> list[str]:
        """Dotted paths of `values` the chart does not know (the first unknown key of each branch)."""
        if not isinstance(values, dict) or prefix in self.opaque:
            return []
        problems = []
        for key, value in values.items():
            path = (*prefix, str(key))
            if path not in self.known and path not in self.opaque:
                problems.append(".".join(path))
            else:
                problems += self.unknown(value, path)
        return problems


def _is_typed(key: str) -> bool:
    return key in KUBERNETES_TYPED or key.endswith(KUBERNETES_TYPED_SUFFIXES)


def _from_defaults(keys: ChartKeys, values: Any, prefix: KeyPath) -> None:
    if prefix:
        keys.add_known(prefix)
        if isinstance(values, list) or values == {} or (isinstance(values, dict) and _is_typed(prefix[-1])):
            keys.opaque.add(prefix)
            return
    if isinstance(values, dict):
        for key, value in values.items():
            _from_defaults(keys, value, (*prefix, str(key)))


def _from_schema(keys: ChartKeys, schema: Any, root: dict[str, Any], prefix: KeyPath, depth: int = 0) -> None:
    if not isinstance(schema, dict) or depth > 40:
        return
    while "$ref" in schema and str(schema["$ref"]).startswith("#/"):
        target: Any = root
        for part in str(schema["$ref"])[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    for combined in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combined) or []:
            _from_schema(keys, sub, root, prefix, depth + 1)
    properties = schema.get("properties")
    if prefix:
        keys.add_known(prefix)
        extra = schema.get("additionalProperties")  # true or a schema: any key is accepted there
        if (schema.get("type") == "object" and not properties) or extra not in (None, False):
            keys.opaque.add(prefix)
    for name, sub in (properties or {}).items():
        _from_schema(keys, sub, root, (*prefix, name), depth + 1)


def _from_templates(keys: ChartKeys, text: str, prefix: KeyPath) -> None:
    for match in VALUES_REFERENCE.finditer(text):
        keys.add_known((*prefix, *match.group(1)[1:].split(".")))
    for match in TO_YAML.finditer(text):
        keys.opaque.add((*prefix, *(match.group(1) or match.group(2))[1:].split(".")))


def _archive_files(package: tarfile.TarFile) -> tuple[str, dict[str, bytes]]:
    """(the chart's directory in the archive, path → content of every file), read without extracting anything."""
    files = {}
    for member in package.getmembers():
        extracted = package.extractfile(member) if member.isfile() else None
        if extracted is not None:
            files[member.name] = extracted.read()
    (root,) = {name.split("/", 1)[0] for name in files}
    return root, files


def _load(files: dict[str, bytes], path: str) -> Any:
    return yaml.safe_load(files.get(path, b"{}")) or {}


def _collect(keys: ChartKeys, files: dict[str, bytes], root: str, prefix: KeyPath) -> None:
    """The keys of the chart at `root` (a directory inside the archive), its values under `prefix`, then those of
    its subcharts (directories or nested archives in `charts/`) under their name or alias."""
    _from_defaults(keys, _load(files, f"{root}/values.yaml"), prefix)
    if f"{root}/values.schema.json" in files:
        schema = json.loads(files[f"{root}/values.schema.json"])
        _from_schema(keys, schema, schema, prefix)
    for name, content in files.items():
        if name.startswith(f"{root}/templates/"):
            _from_templates(keys, content.decode(errors="replace"), prefix)
    dependencies = _load(files, f"{root}/Chart.yaml").get("dependencies") or []
    aliases = {dep["name"]: dep.get("alias") or dep["name"] for dep in dependencies}
    depth = len(PurePosixPath(root).parts)
    subcharts = {PurePosixPath(name).parts[depth + 1] for name in files if name.startswith(f"{root}/charts/")}
    for sub in sorted(subcharts):
        sub_root, sub_files = f"{root}/charts/{sub}", files
        if sub.endswith(".tgz"):
            with tarfile.open(fileobj=io.BytesIO(files[sub_root])) as nested:
                sub_root, sub_files = _archive_files(nested)
        name = _load(sub_files, f"{sub_root}/Chart.yaml").get("name", sub)
        _collect(keys, sub_files, sub_root, (*prefix, aliases.get(name, name)))


def chart_metadata(archive: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`Chart.yaml`, `values.yaml`) of the packaged chart at `archive`: its versions and its default values."""
    with tarfile.open(archive) as package:
        root, files = _archive_files(package)
    return _load(files, f"{root}/Chart.yaml"), _load(files, f"{root}/values.yaml")


@functools.cache
def chart_keys(archive: Path) -> ChartKeys:
    """What the packaged chart at `archive` knows of its values."""
    with tarfile.open(archive) as package:
        root, files = _archive_files(package)
    keys = ChartKeys()
    _collect(keys, files, root, ())
    return keys


def unknown_values(release: Release) -> list[str]:
    """The keys of the release's values that its chart does not know, as dotted paths."""
    return chart_keys(release.archive).unknown(release.values)
