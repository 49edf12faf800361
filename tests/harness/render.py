"""Render every Kubernetes object a stack would create to YAML, and validate them against the Kubernetes schemas.

The objects are ours (every Kubernetes resource the Pulumi program registers) and those of its Helm releases, each
chart rendered with the values the program computes (`auxip_testing.charts`). `make render STACK=dev` runs
`python -m auxip_testing.render dev`, writing ours to `build/render/<stack>/*.yaml` and each release's to
`build/render/<stack>/helm/<release>/*.yaml`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml

from auxip_testing import charts, crd_schemas
from auxip_testing.cache import cached_dir
from auxip_testing.charts import RenderedRelease, normalise
from auxip_testing.pulumi_mocks import REPO_ROOT, RegisteredResource

#: checkov pins its own dependencies (boto3 1.35, packaging 23) below what requirements.lock holds, so it cannot share
#: the project's virtualenv: it gets a venv of its own in the artifact cache, keyed by this version.
CHECKOV_VERSION = "3.3.30"

#: Environment for an offline checkov run (read in checkov/common/util/env_vars_config.py): no guideline/mapping
#: download, no PyPI update check (done at import time otherwise). Nothing else of the caller's environment is passed,
#: so a developer's BC_API_KEY or proxy settings never make it talk to Prisma Cloud.
CHECKOV_OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "WARNING"}

# kubernetes-validate reads and parses the 1.3 MB definitions file again for every object it validates (10 ms each):
# the files never change, so their parsed contents are kept (a stack with its charts: 0.5 s instead of 2.7 s).
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)

#: libyaml's emitter when PyYAML has it (the charts' CRDs are megabytes of YAML).
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: Types that are Pulumi machinery rather than objects sent to the API server.
NOT_API_OBJECTS = ("pulumi:providers:", "kubernetes:helm.sh/", "kubernetes:yaml:", "kubernetes:kustomize:")


@dataclass(frozen=True)
class InvalidObject:
    object_id: str
    error: str

    def __str__(self) -> str:
        return f"{self.object_id}: {self.error}"


def kubernetes_objects(resources: list[RegisteredResource]) -> list[dict[str, Any]]:
    return [
        normalise(resource.inputs)
        for resource in resources
        if resource.custom and resource.type.startswith("kubernetes:") and not resource.type.startswith(NOT_API_OBJECTS)
    ]


@dataclass(frozen=True)
class StackRender:
    """Everything a stack creates: our objects and those of each of its Helm releases."""

    stack: str
    kubernetes_version: str
    objects: list[dict[str, Any]]
    releases: list[RenderedRelease]

    @property
    def chart_objects(self) -> list[dict[str, Any]]:
        return [obj for rendered in self.releases for obj in rendered.objects]

    @property
    def all_objects(self) -> list[dict[str, Any]]:
        return [*self.objects, *self.chart_objects]


def render_stack(stack: str) -> StackRender:
    """The stack's objects and its releases' objects (the program runs once per process, see `charts.program`)."""
    return StackRender(
        stack, charts.kubernetes_version(stack), kubernetes_objects(charts.program(stack)), charts.stack_charts(stack)
    )


def object_id(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return "/".join(filter(None, [obj.get("kind", "?"), namespace, metadata.get("name", "?")]))


def validate_objects(objects: list[dict[str, Any]], kubernetes_version: str) -> list[InvalidObject]:
    """Strict schema validation: unknown fields, wrong types and missing required fields are all errors.

    Core kinds are checked by kubernetes-validate; custom resources of the groups whose CRDs the cluster services'
    charts install, against those CRDs (`auxip_testing.crd_schemas`).
    """
    invalid = []
    for obj in objects:
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        # The Kubernetes API groups have no dot or end in .k8s.io: anything else is a custom resource, and only then
        # are the charts rendered for their CRDs (a few seconds, once per process). A few CRD groups end in .k8s.io
        # too (Calico installs policy.networking.k8s.io): those are looked up when kubernetes-validate has no schema.
        if "." in group and not group.endswith(".k8s.io") and group in crd_schemas.custom_groups():
            invalid += _custom_resource_problems(obj, kubernetes_version)
            continue
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            if group in crd_schemas.custom_groups():
                invalid += _custom_resource_problems(obj, kubernetes_version)
            else:
                invalid.append(InvalidObject(object_id(obj), getattr(exc, "message", None) or str(exc)))
        except kubernetes_validate.ValidationError as exc:
            message = getattr(exc, "message", None) or str(exc).splitlines()[0]
            invalid.append(InvalidObject(object_id(obj), message))
    return invalid


def _custom_resource_problems(obj: dict[str, Any], kubernetes_version: str) -> list[InvalidObject]:
    return [InvalidObject(object_id(obj), p) for p in crd_schemas.validate_custom_resource(obj, kubernetes_version)]


def ownership_conflicts(render: StackRender) -> list[InvalidObject]:
    """Objects both we and a release create (or two releases): Helm refuses to install over an object it does not
    own, and two owners would undo each other's changes."""
    owners: dict[tuple[str, str], list[str]] = {}
    for owner, objects in [("pulumi", render.objects), *((r.release.name, r.objects) for r in render.releases)]:
        for obj in objects:
            group = str(obj.get("apiVersion")).rpartition("/")[0]
            owners.setdefault((group, object_id(obj)), []).append(owner)
    return [
        InvalidObject(oid, f"created by {' and '.join(names)}")
        for (_, oid), names in sorted(owners.items())
        if len(names) > 1
    ]


def write_objects(objects: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One file per object named after it; the directory is replaced so stale files never linger.

    Registration order varies between runs (the SDK registers concurrently), so names and key order are what keep
    the output stable enough to diff.
    """
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    paths = []
    for obj in objects:
        path = out_dir / f"{object_id(obj).replace('/', '_').lower()}.yaml"
        if path.exists():
            raise ValueError(f"two objects render to {path.name}: {object_id(obj)} is declared twice")
        path.write_text(yaml.dump(obj, Dumper=YAML_DUMPER, sort_keys=True))
        paths.append(path)
    return paths


def write_render(render: StackRender, out_dir: Path) -> list[Path]:
    """Our objects in `out_dir`, each release's in `out_dir/helm/<release>/` (so every file says who creates it)."""
    paths = write_objects(render.objects, out_dir)
    for rendered in render.releases:
        paths += write_objects(rendered.objects, out_dir / "helm" / rendered.release.name)
    return paths


def checkov_python() -> Path:
    """The interpreter of a dedicated venv holding checkov, in the artifact cache; created with pip on first use."""
    version = CHECKOV_VERSION

    def build(work: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"checkov=={version}"], check=True)

    # The venv is built in a temporary directory then renamed, and a venv's scripts hard-code their interpreter path:
    # so they are run as `python -m checkov.main`, never through `bin/checkov`.
    return cached_dir(f"checkov-{version}", build) / "venv" / "bin" / "python"


def run_checkov(directory: Path, timeout: float = 300) -> dict[str, Any]:
    """checkov's Kubernetes checks on every YAML file in `directory`, offline, within `timeout` seconds.

    Returns its JSON report: `summary` (counts, `resource_count`, `parsing_errors`, `checkov_version`) and
    `results.failed_checks` (each with `check_id`, `check_name` and `resource`, as `Kind.namespace.name`).
    """
    python = checkov_python()
    # A throwaway HOME and cache directory: a run leaves nothing behind in the user's home or the repository.
    with tempfile.TemporaryDirectory(prefix="checkov-home-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "CKV_CACHE_DIR": str(Path(home) / "cache"),
            **CHECKOV_OFFLINE_ENV,
        }
        # --skip-download: no policy metadata or suppressions from Prisma Cloud; --quiet: failed checks only.
        command = ["-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet", "--skip-download"]
        result = subprocess.run(
            [str(python), "-m", "checkov.main", *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=home,
        )
    # Exit status 1 only means "some check failed"; anything else, or no JSON, is checkov itself failing.
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov exited {result.returncode}:\n{result.stderr[-4000:]}")
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one report per framework: only kubernetes was asked for
        (report,) = report
    # When no check applies to any object (Namespaces and NetworkPolicies only), checkov prints the bare summary.
    if "summary" not in report:
        report = {"check_type": "kubernetes", "results": {"failed_checks": []}, "summary": report}
    return dict(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "render")
    args = parser.parse_args()
    render = render_stack(args.stack)
    out = args.out / args.stack
    write_render(render, out)
    invalid = validate_objects(render.all_objects, render.kubernetes_version) + ownership_conflicts(render)
    unknown = [f"{r.release.name}: {key}" for r in render.releases for key in charts.unknown_values(r.release)]
    print(
        f"{len(render.objects)} objects of ours and {len(render.chart_objects)} of {len(render.releases)} Helm "
        f"releases written to {out} (Kubernetes {render.kubernetes_version})"
    )
    for problem in invalid:
        print(f"INVALID {problem}", file=sys.stderr)
    for key in unknown:
        print(f"UNKNOWN VALUES KEY {key}", file=sys.stderr)
    sys.exit(1 if invalid or unknown else 0)


if __name__ == "__main__":
    main()
