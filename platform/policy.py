"""Our security policy for Kubernetes objects, as pure functions over rendered objects (plain dicts).

`check_objects(objects, registry_prefix)` returns every violation of every rule; an empty list means compliant. The
rules are checked offline on what a stack would create (`auxip_testing.render`), so a mistake is caught before
`pulumi up` rather than by admission in a live cluster. Rule ids (`P3.privileged`, ...) are stable: tests and
reports refer to them.

- P1 namespaces: Pod Security `enforce` is `restricted` unless the namespace carries a written exemption; `audit`
  and `warn` are at least as strict as `enforce`; a system namespace (`platform/system_namespaces.py`) enforces
  exactly the level declared there.
- P2 network: every namespace has a default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules).
- P3 workloads: the Pod Security profile of their namespace (restricted, or baseline), checked here rather than only
  at admission; a workload in a namespace the stack does not create is a violation (its policy is unknown).
- P4 images: pinned (a digest, or a tag other than `latest`) and pulled through the configured registry prefix.
- P5 RBAC: no wildcard verbs, resources, API groups or non-resource URLs; no service account bound to
  `cluster-admin`; no ClusterRoleBinding for a workload's service account (one outside the system namespaces): a
  workload that needs the API gets a Role and RoleBinding in its own namespace.
- P6 resources: every container sets CPU and memory requests and limits.
- P7 quotas: every namespace has a ResourceQuota without scopes bounding CPU and memory requests and limits and the
  number of pods, and a LimitRange giving containers default CPU and memory requests and limits.
- P8 priority: every workload names its PriorityClass; the class is one the stack declares, or a built-in `system-*`
  class admitted in its namespace (kube-system, or a ResourceQuota scoped to that class); classes reserved for the
  cluster services (`auxip-platform-critical`, `system-*`) are used in system namespaces only; of the declared
  classes exactly one is the global default.

Only rules relevant to the objects present apply: a stack without workloads is checked by P1, P2 and P7 alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from auxip_platform.platform.priority import BUILT_IN_CLASSES, PLATFORM_CRITICAL
from auxip_platform.platform.system_namespaces import KUBE_SYSTEM, SYSTEM_NAMESPACES

EXEMPTION_ANNOTATION = "auxip.esa.int/pod-security-exemption"
PSA_LABEL = "pod-security.kubernetes.io/{mode}"
#: Pod Security levels from the least to the most strict.
LEVELS = ("privileged", "baseline", "restricted")

#: Kinds carrying a pod spec, and where it is: Pods directly, controllers in a template, CronJobs one level deeper.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Pod Security Standards, https://kubernetes.io/docs/concepts/security/pod-security-standards/ (v1.31).
BASELINE_CAPABILITIES = frozenset(
    {
        *("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"),
        *("NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"),
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
RESTRICTED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
#: Keys of a volume that are not its type.
VOLUME_META_KEYS = frozenset({"name"})


@dataclass(frozen=True, order=True)
class Violation:
    object_id: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.object_id}: [{self.rule}] {self.message}"


def object_id(obj: dict[str, Any]) -> str:
    """`Kind/namespace/name` (`Kind/name` when cluster-scoped), the same ids as the render harness."""
    metadata = obj.get("metadata") or {}
    return "/".join(filter(None, [obj.get("kind", "?"), metadata.get("namespace"), metadata.get("name", "?")]))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _namespace_of(obj: dict[str, Any]) -> str:
    # A namespaced object without metadata.namespace lands in `default` (kubectl and Pulumi both do that).
    return _get(obj, "metadata", "namespace") or "default"


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return _get(obj, "metadata", "labels") or {}


def _exemption(obj: dict[str, Any]) -> str:
    return str((_get(obj, "metadata", "annotations") or {}).get(EXEMPTION_ANNOTATION) or "").strip()


# P1 ------------------------------------------------------------------------------------------------------------------


def enforce_level(namespace: dict[str, Any]) -> str | None:
    """The namespace's Pod Security enforce level, None if the label is missing or not a level."""
    level = _labels(namespace).get(PSA_LABEL.format(mode="enforce"))
    return level if level in LEVELS else None


def check_namespaces(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    for ns in (o for o in objects if o.get("kind") == "Namespace"):
        oid, labels = object_id(ns), _labels(ns)
        enforce = enforce_level(ns)
        if enforce is None:
            raw = labels.get(PSA_LABEL.format(mode="enforce"))
            detail = "is missing" if raw is None else f"is {raw!r}, not one of {', '.join(LEVELS)}"
            yield Violation(oid, "P1.enforce-label", f"label {PSA_LABEL.format(mode='enforce')} {detail}")
            continue
        if enforce != "restricted" and not _exemption(ns):
            yield Violation(
                oid,
                "P1.not-restricted",
                f"enforces {enforce!r} without a written reason in annotation {EXEMPTION_ANNOTATION}",
            )
        declared = SYSTEM_NAMESPACES.get(str(_get(ns, "metadata", "name")))
        if declared is not None and enforce != declared.pod_security:
            yield Violation(
                oid,
                "P1.system-level",
                f"enforces {enforce!r}, but platform/system_namespaces.py declares {declared.pod_security!r}",
            )
        for mode in ("audit", "warn"):
            # A missing audit/warn label means no audit/warning at all, i.e. as weak as `privileged`.
            level = labels.get(PSA_LABEL.format(mode=mode), "privileged")
            if level not in LEVELS or LEVELS.index(level) < LEVELS.index(enforce):
                yield Violation(oid, "P1.mode-weaker", f"{mode} level {level!r} is weaker than enforce {enforce!r}")


# P2 ------------------------------------------------------------------------------------------------------------------


def _selects_all_pods(selector: Any) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def _denied_directions(policy: dict[str, Any]) -> set[str]:
    """The directions this NetworkPolicy denies to every pod of its namespace (selected, with no allow rule)."""
    spec = policy.get("spec") or {}
    if not _selects_all_pods(spec.get("podSelector")):
        return set()
    # Without policyTypes the API server assumes Ingress, plus Egress when egress rules are present.
    types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    return {t for t in types if not spec.get(t.lower())}


def check_network_policies(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    objects = list(objects)
    denied: dict[str, set[str]] = {}
    for policy in (o for o in objects if o.get("kind") == "NetworkPolicy"):
        denied.setdefault(_namespace_of(policy), set()).update(_denied_directions(policy))
    for ns in (o for o in objects if o.get("kind") == "Namespace"):
        missing = sorted({"Ingress", "Egress"} - denied.get(_get(ns, "metadata", "name"), set()))
        if missing:
            yield Violation(
                object_id(ns),
                "P2.default-deny",
                f"no NetworkPolicy with an empty podSelector denies {' and '.join(missing)} by default",
            )


# P3 ------------------------------------------------------------------------------------------------------------------


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    return (_get(obj, *path) or {}) if path else None


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in CONTAINER_LISTS:
        for container in spec.get(key) or []:
            yield key, container


def _baseline(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield "P3.host-namespaces", f"{field} is true"
    pod_sc = spec.get("securityContext") or {}
    if _get(pod_sc, "seccompProfile", "type") == "Unconfined":
        yield "P3.seccomp", "pod seccompProfile is Unconfined"
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            yield "P3.host-path", f"volume {volume.get('name')!r} is a hostPath"
    for _, c in _containers(spec):
        name, sc = c.get("name"), c.get("securityContext") or {}
        if sc.get("privileged"):
            yield "P3.privileged", f"container {name!r} is privileged"
        added = set(_get(sc, "capabilities", "add") or []) - BASELINE_CAPABILITIES
        if added:
            yield "P3.capabilities", f"container {name!r} adds {', '.join(sorted(added))}"
        if _get(sc, "seccompProfile", "type") == "Unconfined":
            yield "P3.seccomp", f"container {name!r} seccompProfile is Unconfined"
        if sc.get("procMount", "Default") != "Default":
            yield "P3.proc-mount", f"container {name!r} procMount is {sc['procMount']!r}"
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                yield "P3.host-port", f"container {name!r} uses hostPort {port['hostPort']}"


def _restricted(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in spec.get("volumes") or []:
        # hostPath is already a baseline violation (P3.host-path).
        types = set(volume) - VOLUME_META_KEYS - RESTRICTED_VOLUME_TYPES - {"hostPath"}
        if types:
            yield "P3.volume-type", f"volume {volume.get('name')!r} is of type {', '.join(sorted(types))}"
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        yield "P3.run-as-user", "pod runAsUser is 0 (root)"
    for _, c in _containers(spec):
        name, sc = c.get("name"), c.get("securityContext") or {}
        # runAsNonRoot and seccompProfile may be set once for the pod; a container's own setting wins.
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            yield "P3.run-as-non-root", f"container {name!r} does not set runAsNonRoot: true"
        if sc.get("runAsUser") == 0:
            yield "P3.run-as-user", f"container {name!r} runAsUser is 0 (root)"
        seccomp = _get(sc, "seccompProfile", "type") or _get(pod_sc, "seccompProfile", "type")
        # Unconfined is already a baseline violation: report only what baseline lets through (unset).
        if seccomp not in RESTRICTED_SECCOMP and seccomp != "Unconfined":
            yield "P3.seccomp", f"container {name!r} seccompProfile is {seccomp!r}, not RuntimeDefault or Localhost"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield "P3.privilege-escalation", f"container {name!r} does not set allowPrivilegeEscalation: false"
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield "P3.capabilities", f"container {name!r} does not drop ALL capabilities"
        # Capabilities beyond the baseline set are already baseline violations; these are the ones baseline allows.
        added = (set(caps.get("add") or []) & BASELINE_CAPABILITIES) - RESTRICTED_CAPABILITIES
        if added:
            yield "P3.capabilities", f"container {name!r} adds {', '.join(sorted(added))} (only NET_BIND_SERVICE)"


def check_workloads(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    objects = list(objects)
    levels = {_get(ns, "metadata", "name"): enforce_level(ns) for ns in objects if ns.get("kind") == "Namespace"}
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        oid, namespace = object_id(obj), _namespace_of(obj)
        if namespace not in levels:
            yield Violation(oid, "P3.unknown-namespace", f"namespace {namespace!r} is not created by this stack")
            continue
        level = levels[namespace] or "restricted"  # a namespace without a valid level is already a P1 violation
        found: list[tuple[str, str]] = []
        if level in ("baseline", "restricted"):
            found += _baseline(spec)
        if level == "restricted":
            found += _restricted(spec)
        yield from (Violation(oid, rule, f"{message} (namespace {namespace!r} is {level})") for rule, message in found)


# P4 ------------------------------------------------------------------------------------------------------------------


def image_problems(image: str, registry_prefix: str) -> Iterator[tuple[str, str]]:
    if not image.startswith(registry_prefix.rstrip("/") + "/"):
        yield "P4.registry", f"image {image!r} is not pulled through {registry_prefix}/"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]  # a registry port (host:5000/...) is not a tag
    tag = last.partition(":")[2]
    if not digest.startswith("sha256:") and tag in ("", "latest"):
        yield "P4.unpinned", f"image {image!r} has no digest and {'no tag' if not tag else 'the latest tag'}"


def check_images(objects: Iterable[dict[str, Any]], registry_prefix: str) -> Iterator[Violation]:
    for obj in objects:
        spec = pod_spec(obj)
        for _, container in _containers(spec or {}):
            for rule, message in image_problems(str(container.get("image") or ""), registry_prefix):
                yield Violation(object_id(obj), rule, f"container {container.get('name')!r}: {message}")


# P5 ------------------------------------------------------------------------------------------------------------------


#: Rule fields where `*` grants everything there is, including what a later API version or CRD adds.
WILDCARD_FIELDS = ("verbs", "resources", "apiGroups", "nonResourceURLs")


def check_rbac(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    for obj in objects:
        kind, oid = obj.get("kind"), object_id(obj)
        if kind in ("Role", "ClusterRole"):
            for index, rule in enumerate(obj.get("rules") or []):
                for field in WILDCARD_FIELDS:
                    if "*" in (rule.get(field) or []):
                        yield Violation(oid, "P5.wildcard", f"rules[{index}].{field} contains '*'")
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            role = obj.get("roleRef") or {}
            for subject in obj.get("subjects") or []:
                if subject.get("kind") != "ServiceAccount":
                    continue  # people and groups are reviewed in the identity provider, not here
                # A RoleBinding's subject without a namespace is in the binding's namespace.
                account_ns = subject.get("namespace") or _namespace_of(obj)
                account = f"{account_ns}/{subject.get('name')}"
                if role.get("kind") == "ClusterRole" and role.get("name") == "cluster-admin":
                    yield Violation(oid, "P5.cluster-admin", f"service account {account} is bound to cluster-admin")
                if kind == "ClusterRoleBinding" and account_ns not in SYSTEM_NAMESPACES:
                    yield Violation(
                        oid,
                        "P5.cluster-binding",
                        f"binds workload service account {account} cluster-wide; "
                        "grant a Role and RoleBinding in its namespace instead",
                    )


# P6 ------------------------------------------------------------------------------------------------------------------


def check_resources(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    for obj in objects:
        spec = pod_spec(obj)
        for key, container in _containers(spec or {}):
            if key == "ephemeralContainers":
                continue  # the API forbids resources on ephemeral (debug) containers
            resources = container.get("resources") or {}
            missing = [
                f"{kind}.{resource}"
                for kind in ("requests", "limits")
                for resource in ("cpu", "memory")
                if not (resources.get(kind) or {}).get(resource)
            ]
            if missing:
                yield Violation(
                    object_id(obj), "P6.resources", f"container {container.get('name')!r} has no {', '.join(missing)}"
                )


# P7 ------------------------------------------------------------------------------------------------------------------

#: What the namespace's quota must bound: with these, no set of pods can take more than the namespace was sized for.
QUOTA_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods")


def _in_namespace(objects: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for obj in (o for o in objects if o.get("kind") == kind):
        found.setdefault(_namespace_of(obj), []).append(obj)
    return found


def _unscoped(quota: dict[str, Any]) -> bool:
    # A scoped quota (a PriorityClass, BestEffort pods...) only counts the pods it selects: it bounds nothing else.
    spec = quota.get("spec") or {}
    return not spec.get("scopes") and not spec.get("scopeSelector")


def check_quotas(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    objects = list(objects)
    quotas, limit_ranges = _in_namespace(objects, "ResourceQuota"), _in_namespace(objects, "LimitRange")
    for ns in (o for o in objects if o.get("kind") == "Namespace"):
        oid, name = object_id(ns), str(_get(ns, "metadata", "name"))
        unscoped = [q for q in quotas.get(name, []) if _unscoped(q)]
        bounded = {key for q in unscoped for key in (_get(q, "spec", "hard") or {})}
        if not unscoped:
            yield Violation(oid, "P7.quota", "no ResourceQuota without scopes bounds the namespace")
        elif missing := [key for key in QUOTA_KEYS if key not in bounded]:
            yield Violation(oid, "P7.quota", f"no ResourceQuota bounds {', '.join(missing)}")
        # Both a default limit and a default request: a quota on limits (or requests) rejects any container without
        # one, and a default limit alone would also become the request, reserving the whole limit.
        given = {
            f"{field}.{resource}"
            for lr in limit_ranges.get(name, [])
            for item in (_get(lr, "spec", "limits") or [])
            if item.get("type") == "Container"
            for field in ("default", "defaultRequest")
            for resource in (item.get(field) or {})
        }
        wanted = [f"{field}.{resource}" for field in ("defaultRequest", "default") for resource in ("cpu", "memory")]
        if name not in limit_ranges:
            yield Violation(oid, "P7.limit-range", "no LimitRange gives containers default requests and limits")
        elif missing := [key for key in wanted if key not in given]:
            yield Violation(oid, "P7.limit-range", f"no LimitRange gives containers {', '.join(missing)}")


# P8 ------------------------------------------------------------------------------------------------------------------

#: Classes that preempt workloads: only the cluster services may use them.
RESERVED_CLASSES = frozenset({PLATFORM_CRITICAL, *BUILT_IN_CLASSES})


def _admitted_classes(quotas: list[dict[str, Any]]) -> set[str]:
    """The PriorityClasses a namespace's scoped quotas admit (`scopeSelector: PriorityClass In [...]`)."""
    admitted = set()
    for quota in quotas:
        for expression in _get(quota, "spec", "scopeSelector", "matchExpressions") or []:
            if expression.get("scopeName") == "PriorityClass" and expression.get("operator") == "In":
                admitted.update(expression.get("values") or [])
    return admitted


def check_priorities(objects: Iterable[dict[str, Any]]) -> Iterator[Violation]:
    objects = list(objects)
    classes = {str(_get(pc, "metadata", "name")): pc for pc in objects if pc.get("kind") == "PriorityClass"}
    defaults = sorted(name for name, pc in classes.items() if pc.get("globalDefault"))
    if classes and len(defaults) != 1:
        # Without one, a pod naming no class gets priority 0, below every batch job; with two, admission fails.
        where = "PriorityClass/" + ",".join(defaults or sorted(classes))
        yield Violation(where, "P8.global-default", f"{len(defaults)} global defaults among the declared classes")
    quotas = _in_namespace(objects, "ResourceQuota")
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        oid, namespace = object_id(obj), _namespace_of(obj)
        name = spec.get("priorityClassName")
        if not name:
            yield Violation(oid, "P8.priority-class", "sets no priorityClassName (say which class it runs at)")
            continue
        if name in BUILT_IN_CLASSES:
            if namespace != KUBE_SYSTEM and name not in _admitted_classes(quotas.get(namespace, [])):
                why = f"built-in class {name!r} needs a ResourceQuota scoped to it in namespace {namespace!r}"
                yield Violation(oid, "P8.unknown-class", why)
        elif name not in classes:
            yield Violation(oid, "P8.unknown-class", f"PriorityClass {name!r} is not declared by this stack")
        if name in RESERVED_CLASSES and namespace not in SYSTEM_NAMESPACES:
            why = f"class {name!r} is reserved for the cluster services; namespace {namespace!r} is not a system one"
            yield Violation(oid, "P8.reserved-class", why)


def check_objects(
    objects: Iterable[dict[str, Any]],
    registry_prefix: str,
    accepted: Mapping[tuple[str, str], str] | None = None,
) -> list[Violation]:
    """Every violation of P1..P8 in `objects`, sorted and without duplicates, except those `accepted` lists by
    (object id, rule) with a reason (upstream charts' findings no value can fix, `versions.accepted_violations`)."""
    objects = list(objects)
    found = {
        *check_namespaces(objects),
        *check_network_policies(objects),
        *check_workloads(objects),
        *check_images(objects, registry_prefix),
        *check_rbac(objects),
        *check_resources(objects),
        *check_quotas(objects),
        *check_priorities(objects),
    }
    return sorted(v for v in found if (v.object_id, v.rule) not in (accepted or {}))
