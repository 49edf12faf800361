"""Security layer: Wazuh, Suricata, FreeIPA, ClamAV, Keycloak, Vault integration."""

from __future__ import annotations

import pulumi


class Security(pulumi.ComponentResource):
    """Parent of the security services; the services themselves arrive with their issues."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:security:Security", name, None, opts)
        self.register_outputs({})
