"""An external scanner, checkov's Kubernetes checks, on every object each example stack renders: ours and those of
its Helm releases (the upstream charts rendered with our values, CRDs included).

Zero failed checks are allowed except those listed in `checkov-waivers.yaml`, each with a written reason, and a
waiver that no longer matches a finding fails too, so the file cannot silently accumulate stale exceptions.
checkov runs offline from its own venv in the artifact cache (`auxip_testing.render.run_checkov`); the tests that
run it are `slow` (about 20 s for the two stacks, scanned in parallel, plus about 25 s to build the venv the first
time).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_platform.infra.stack_config import load_stack_file
from auxip_testing.charts import example_stacks
from auxip_testing.pulumi_mocks import REPO_ROOT
from auxip_testing.render import CHECKOV_VERSION, StackRender, render_stack, run_checkov, write_objects

STACKS = example_stacks()
WAIVERS_FILE = Path(__file__).with_name("checkov-waivers.yaml")
CHECK_ID = re.compile(r"^CKV2?_K8S_[0-9]+$")
#: A reason must say something: "n/a" or "accepted" is not a reason.
MIN_REASON_WORDS = 5


@dataclass(frozen=True, order=True)
class Finding:
    check: str
    resource: str  # checkov's `Kind.namespace.name`

    @property
    def namespace(self) -> str:
        # Kinds and namespaces cannot contain dots, names can: split from the left.
        return self.resource.split(".", 2)[1]


@dataclass(frozen=True)
class Waiver:
    check: str
    reason: str
    resource: str | None = None
    namespace: str | None = None
    stacks: tuple[str, ...] = tuple(STACKS)

    def matches(self, finding: Finding) -> bool:
        if finding.check != self.check:
            return False
        if self.resource is not None:
            return finding.resource == self.resource
        return finding.namespace == self.namespace


#: checkov counts the pod template of each workload as a resource of its own, besides the workload.
POD_TEMPLATE_KINDS = {"Deployment", "DaemonSet", "Job", "ReplicaSet", "ReplicationController", "StatefulSet"}


def checkov_resources(objects: list[dict[str, Any]]) -> int:
    return len(objects) + sum(obj["kind"] in POD_TEMPLATE_KINDS for obj in objects)


def _one_or_many(entry: dict[str, Any], key: str) -> list[str]:
    value = entry.get(key)
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def load_waivers(text: str) -> list[Waiver]:
    """Parse and check the waivers file; every mistake is an error naming the entry, never a silent no-op.

    `check` and `resource` may each be a list: the entry then waives every check for every resource listed, with
    one reason, and each of these pairs must match a finding (a stale pair fails like a stale entry).
    """
    document = yaml.safe_load(text) or {}
    if set(document) != {"waivers"} or not isinstance(document["waivers"], list):
        raise ValueError("the waivers file must hold exactly one key, `waivers`, a list")
    waivers = []
    for index, entry in enumerate(document["waivers"]):
        where = f"waivers[{index}]"
        unknown = set(entry) - {"check", "resource", "namespace", "stacks", "reason"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        checks = _one_or_many(entry, "check")
        if not all(CHECK_ID.match(check) for check in checks):
            raise ValueError(f"{where}: `check` must be checkov Kubernetes check ids such as CKV_K8S_16")
        if ("resource" in entry) == ("namespace" in entry):
            raise ValueError(f"{where}: give exactly one of `resource` (Kind.namespace.name) or `namespace`")
        if len(str(entry.get("reason") or "").split()) < MIN_REASON_WORDS:
            raise ValueError(f"{where}: `reason` must explain why the finding is accepted ({MIN_REASON_WORDS}+ words)")
        stacks = tuple(entry.get("stacks") or STACKS)
        if not set(stacks) <= set(STACKS):
            raise ValueError(f"{where}: unknown stacks {sorted(set(stacks) - set(STACKS))}")
        resources: list[str | None] = [*_one_or_many(entry, "resource")] if "resource" in entry else [None]
        waivers += [
            Waiver(check, entry["reason"], resource, entry.get("namespace"), stacks)
            for check in checks
            for resource in resources
        ]
    return waivers


def apply_waivers(findings: list[Finding], waivers: list[Waiver], stack: str) -> tuple[list[Finding], list[Waiver]]:
    """(findings no waiver accepts, waivers for `stack` that accept no finding)."""
    applicable = [w for w in waivers if stack in w.stacks]
    unwaived = sorted(f for f in findings if not any(w.matches(f) for w in applicable))
    stale = [w for w in applicable if not any(w.matches(f) for f in findings)]
    return unwaived, stale


def failed_checks(report: dict[str, Any]) -> list[Finding]:
    return sorted({Finding(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]})


# The waivers file and the matching logic (no checkov needed) -----------------------------------------------------


def test_waivers_file_is_well_formed() -> None:
    waivers = load_waivers(WAIVERS_FILE.read_text())
    assert all(len(w.reason.split()) >= MIN_REASON_WORDS for w in waivers)


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"check": "CKV_K8S_16", "resource": "Pod.auxip.x"}, "reason"),
        ({"check": "CKV_K8S_16", "resource": "Pod.auxip.x", "reason": "accepted"}, "reason"),
        ({"check": "CKV_AWS_1", "resource": "Pod.auxip.x", "reason": "one two three four five"}, "check"),
        ({"check": "CKV_K8S_16", "reason": "one two three four five"}, "exactly one of"),
        ({"check": "CKV_K8S_16", "namespace": "a", "resource": "Pod.a.x", "reason": "one two three four five"}, "one"),
        ({"check": "CKV_K8S_16", "namespace": "a", "stacks": ["qa"], "reason": "one two three four five"}, "stacks"),
        ({"check": "CKV_K8S_16", "namespace": "a", "reasn": "typo", "reason": "one two three four five"}, "unknown"),
    ],
)
def test_malformed_waivers_are_refused(entry: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_waivers(yaml.safe_dump({"waivers": [entry]}))


def test_waivers_accept_only_what_they_name_and_stale_ones_are_reported() -> None:
    reason = "the log collector needs the node's log directory"
    findings = [
        Finding("CKV_K8S_16", "DaemonSet.logging.fluent-bit"),
        Finding("CKV_K8S_22", "DaemonSet.logging.fluent-bit"),
        Finding("CKV_K8S_16", "Deployment.auxip.api"),
    ]
    by_resource = Waiver("CKV_K8S_16", reason, resource="DaemonSet.logging.fluent-bit")
    by_namespace = Waiver("CKV_K8S_22", reason, namespace="logging")
    stale = Waiver("CKV_K8S_8", reason, resource="DaemonSet.logging.fluent-bit")
    prod_only = Waiver("CKV_K8S_16", reason, resource="Deployment.auxip.api", stacks=("prod",))
    waivers = [by_resource, by_namespace, stale, prod_only]
    # The privileged API deployment is only accepted in prod, and CKV_K8S_8 matches nothing anywhere.
    assert apply_waivers(findings, waivers, "dev") == ([Finding("CKV_K8S_16", "Deployment.auxip.api")], [stale])
    assert apply_waivers(findings, waivers, "prod") == ([], [stale])


def test_a_waiver_of_several_checks_and_resources_is_one_waiver_per_pair() -> None:
    reason = "the operator chart gives its pods no security context value"
    entry = {"check": ["CKV_K8S_16", "CKV_K8S_22"], "resource": ["Deployment.a.x", "Job.a.y"], "reason": reason}
    waivers = load_waivers(yaml.safe_dump({"waivers": [entry]}))
    assert {(w.check, w.resource, w.reason) for w in waivers} == {
        (check, resource, reason) for check in entry["check"] for resource in entry["resource"]
    }
    # Every pair must still match a finding: the one the Job no longer has is reported stale.
    findings = [Finding("CKV_K8S_16", "Deployment.a.x"), Finding("CKV_K8S_22", "Deployment.a.x")]
    findings.append(Finding("CKV_K8S_16", "Job.a.y"))
    unwaived, stale = apply_waivers(findings, waivers, "prod")
    assert (unwaived, [(w.check, w.resource) for w in stale]) == ([], [("CKV_K8S_22", "Job.a.y")])
    with pytest.raises(ValueError, match="check ids"):
        load_waivers(yaml.safe_dump({"waivers": [{**entry, "check": ["CKV_K8S_16", "CKV_AWS_1"]}]}))


# checkov on the rendered stacks ----------------------------------------------------------------------------------


def scan(objects: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    write_objects(objects, out_dir)
    return run_checkov(out_dir, timeout=600)


def crd_name(obj: dict[str, Any]) -> str | None:
    return str(obj["metadata"]["name"]) if obj["kind"] == "CustomResourceDefinition" else None


def scanned_objects(renders: dict[str, StackRender]) -> dict[str, list[dict[str, Any]]]:
    """Per stack, what is scanned: everything, except CRDs an earlier stack installs identically.

    checkov takes about 17 s to read the charts' 7 MB of CRDs and has no check for the kind: scanning each distinct
    CRD once (with the first stack that installs it) keeps every rendered object scanned without paying twice.
    """
    seen: dict[str, dict[str, Any]] = {}
    scanned = {}
    for stack, render in renders.items():
        objects = []
        for obj in render.all_objects:
            name = crd_name(obj)
            if name is None or seen.setdefault(name, obj) is obj:
                objects.append(obj)
            else:
                assert seen[name] == obj, f"{stack} installs CRD {name} differently from an earlier stack"
        scanned[stack] = objects
    return scanned


@pytest.fixture(scope="module")
def renders() -> dict[str, StackRender]:
    return {stack: render_stack(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def reports(
    renders: dict[str, StackRender], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """(objects scanned, checkov's report) per stack; the stacks are scanned in parallel (one process each)."""
    scanned = scanned_objects(renders)
    root = tmp_path_factory.mktemp("checkov")
    with ThreadPoolExecutor(max_workers=len(scanned)) as pool:
        futures = {stack: pool.submit(scan, objects, root / stack) for stack, objects in scanned.items()}
        return {stack: (scanned[stack], future.result()) for stack, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_no_unwaived_checkov_failures(
    reports: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]], stack: str
) -> None:
    objects, report = reports[stack]
    summary = report["summary"]
    # A YAML checkov cannot parse would otherwise look like a clean scan; every object scanned is counted.
    assert (summary["checkov_version"], summary["parsing_errors"]) == (CHECKOV_VERSION, 0)
    assert summary["resource_count"] == checkov_resources(objects)
    unwaived, stale = apply_waivers(failed_checks(report), load_waivers(WAIVERS_FILE.read_text()), stack)
    assert unwaived == [], "checkov findings not in checkov-waivers.yaml (fix them, or waive them with a reason)"
    assert stale == [], "waivers matching no finding any more: remove them from checkov-waivers.yaml"


@pytest.mark.slow
def test_every_chart_object_is_scanned(
    renders: dict[str, StackRender], reports: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]
) -> None:
    # Each release's objects are in its stack's scan, each CRD in one scan; and findings do name chart objects.
    for stack, render in renders.items():
        scanned = {id(obj) for obj in reports[stack][0]}
        assert [o for o in render.chart_objects if id(o) not in scanned and crd_name(o) is None] == []
    crds = {crd_name(o) for render in renders.values() for o in render.chart_objects} - {None}
    assert len(crds) > 50
    assert crds == {crd_name(o) for objects, _ in reports.values() for o in objects} - {None}
    findings = {f.resource for _, report in reports.values() for f in failed_checks(report)}
    assert "Deployment.tigera-operator.tigera-operator" in findings


@pytest.mark.slow
def test_privileged_pod_fails_checkov(renders: dict[str, StackRender], tmp_path: Path) -> None:
    prefix = load_stack_file(REPO_ROOT / "Pulumi.prod.yaml").registry_prefix
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fluent-bit", "namespace": "auxip"},
        "spec": {
            "containers": [
                {
                    "name": "fluent-bit",
                    "image": f"{prefix}/fluent/fluent-bit:3.2.4",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    # The stack without its CRDs: checkov has no check for them and takes 17 s to read them (see above).
    objects = [o for o in renders["prod"].all_objects if crd_name(o) is None]
    report = scan([*objects, pod], tmp_path / "prod")
    # checkov counts every resource it read: all the stack's objects and the pod.
    assert (report["summary"]["resource_count"], report["summary"]["parsing_errors"]) == (
        checkov_resources(objects) + 1,
        0,
    )
    findings = failed_checks(report)
    unwaived, _ = apply_waivers(findings, load_waivers(WAIVERS_FILE.read_text()), "prod")
    # Only the pod fails, and on the checks that describe it: privileged (16), privilege escalation allowed (20),
    # may run as root (23), no seccomp profile (31), no resource requests or limits (10-13).
    assert {f.resource for f in unwaived} == {"Pod.auxip.fluent-bit"}
    checks = {f.check for f in unwaived}
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_31", "CKV_K8S_10", "CKV_K8S_13"} <= checks
    # The tag is pinned, so the "latest or blank tag" check passes: checkov reads the object, not just its kind.
    assert "CKV_K8S_14" not in checks
    # Waiving the privileged check for this pod accepts exactly that finding and nothing else.
    waiver = Waiver("CKV_K8S_16", "a test waiver for the privileged pod", resource="Pod.auxip.fluent-bit")
    still, stale = apply_waivers(findings, [waiver], "prod")
    assert (sorted(set(findings) - set(still)), stale) == ([Finding("CKV_K8S_16", "Pod.auxip.fluent-bit")], [])
