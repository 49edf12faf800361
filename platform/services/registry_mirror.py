"""The registry mirror (Harbor): the containerd mirror settings every node gets, and the images to replicate.

Harbor itself is not installed by this stack: every image, Harbor's own included, is pulled through it, so it runs
before the cluster does (on its own VM or an existing service). What the cluster needs from it is configuration:
- `containerdMirrors` (exported): per upstream registry, the Harbor proxy-cache project containerd pulls through
  (`/etc/containerd/certs.d/<registry>/hosts.toml`, written by the Ansible containerd role);
- `mirroredImages` (exported): every pinned image with its upstream and mirror reference, for replication rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from auxip_platform.platform.services.config import RegistryMirrorConfig
from auxip_platform.platform.services.versions import mirrored_images


@dataclass(frozen=True)
class RegistryMirrorArgs:
    config: RegistryMirrorConfig
    endpoint: str
    registry_prefix: str


def containerd_mirrors(config: RegistryMirrorConfig, endpoint: str) -> dict[str, dict[str, object]]:
    """`{upstream: {endpoint, capabilities, override_path}}`, the fields of a containerd hosts.toml `[host]`."""
    return {
        upstream: {
            "endpoint": f"{endpoint}/v2/{project}",
            "capabilities": ["pull", "resolve"],
            # Harbor serves the project under /v2/<project>/: containerd must not append its own /v2.
            "override_path": True,
        }
        for upstream, project in sorted(config.proxy_cache_projects.items())
    }


class RegistryMirror(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegistryMirrorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:platform:RegistryMirror", name, None, opts)
        self.containerd_mirrors = containerd_mirrors(args.config, args.endpoint)
        self.mirrored_images = mirrored_images(args.registry_prefix)
        self.register_outputs(
            {"endpoint": args.endpoint, "containerdMirrors": self.containerd_mirrors, "images": self.mirrored_images}
        )
