"""The apps layer of the Pulumi program."""

from __future__ import annotations

import pulumi


class Apps(pulumi.ComponentResource):
    """Parent of the AUXIP workload deployments; they arrive with the catalog, ingestion and routing issues."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:Apps", name, None, opts)
        self.register_outputs({})
