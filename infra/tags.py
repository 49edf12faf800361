"""How every resource says which stack and role it belongs to (what the tagging policy checks).

Neutron and Octavia resources take `tags` (strings), Nova instances, Cinder volumes and Swift containers take
`metadata` (a map). Security group rules take neither, so their `description` starts with `<role>: `.
"""

from __future__ import annotations

#: Roles of security groups and VMs. `internal-lb` fronts the Kubernetes API, `ingress-lb` is the public HTTPS entry.
ROLES = ("network", "bastion", "control-plane", "worker", "ipa", "monitoring", "hosted", "internal-lb", "ingress-lb")
#: Roles whose VMs hold state that must survive a VM replacement (etcd, the IPA directory, metrics, app data).
STATEFUL_ROLES = frozenset({"control-plane", "ipa", "monitoring", "hosted"})


def tags(stack: str, role: str) -> list[str]:
    return [f"stack={stack}", f"role={role}"]


def metadata(stack: str, role: str) -> dict[str, str]:
    return {"stack": stack, "role": role}


def rule_description(role: str, why: str) -> str:
    return f"{role}: {why}"


def labels_of(inputs: dict[str, object]) -> dict[str, str]:
    """Stack and role of a resource from whichever of tags, metadata or rule description it carries."""
    found: dict[str, str] = {}
    for tag in inputs.get("tags") or []:
        key, sep, value = str(tag).partition("=")
        if sep:
            found[key] = value
    for key, value in dict(inputs.get("metadata") or {}).items():  # type: ignore[call-overload]
        found.setdefault(str(key), str(value))
    description = str(inputs.get("description") or "")
    role, sep, _ = description.partition(": ")
    if sep and role in ROLES:
        found.setdefault("role", role)
    return found
