"""Pod pieces every workload of the apps layer shares: the restricted security contexts, resources, probes, scratch
volumes and images through the registry prefix. One definition each, so that a hosted application, an AUXIP role and
clamd cannot drift apart on what "hardened" means."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from auxip.deploy.fields import AppResources

core = k8s.core.v1

#: The UID and GID of the project image (Containerfile: user `auxip`), above every node account.
IMAGE_USER = 10001


def image(registry_prefix: str, reference: str) -> str:
    """A repository path with its tag or digest, pulled through the stack's registry prefix."""
    return f"{registry_prefix.rstrip('/')}/{reference}"


def security_contexts(run_as: int | None) -> tuple[core.PodSecurityContextArgs, core.SecurityContextArgs]:
    """The restricted Pod Security profile for the pod and its containers, running as `run_as` (UID and GID).

    `run_as=None` leaves the user to the image (an exempt baseline namespace, for images that must run as their own
    user): no privilege escalation, no capability, a read-only root and RuntimeDefault seccomp stay."""
    seccomp = core.SeccompProfileArgs(type="RuntimeDefault")
    non_root = True if run_as is not None else None
    pod = core.PodSecurityContextArgs(
        run_as_non_root=non_root, run_as_user=run_as, run_as_group=run_as, fs_group=run_as, seccomp_profile=seccomp
    )
    container = core.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=non_root,
        run_as_user=run_as,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=seccomp,
    )
    return pod, container


def resource_requirements(resources: AppResources) -> core.ResourceRequirementsArgs:
    return core.ResourceRequirementsArgs(
        requests={"cpu": resources.requests.cpu, "memory": resources.requests.memory},
        limits={"cpu": resources.limits.cpu, "memory": resources.limits.memory},
    )


def probe(
    port: int | str,
    path: str | None = None,
    *,
    period_seconds: int,
    initial_delay_seconds: int | None = None,
    timeout_seconds: int | None = None,
    failure_threshold: int | None = None,
) -> core.ProbeArgs:
    """An HTTP GET of `path` on `port`, or a TCP connect without a path."""
    http = core.HTTPGetActionArgs(path=path, port=port) if path else None
    tcp = None if http else core.TCPSocketActionArgs(port=port)
    return core.ProbeArgs(
        http_get=http,
        tcp_socket=tcp,
        period_seconds=period_seconds,
        initial_delay_seconds=initial_delay_seconds,
        timeout_seconds=timeout_seconds,
        failure_threshold=failure_threshold,
    )


def scratch_volume(name: str, size: str) -> core.VolumeArgs:
    """A private, size-bounded emptyDir: what a container with a read-only root filesystem writes to."""
    return core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=size))
