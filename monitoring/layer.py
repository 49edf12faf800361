"""Monitoring layer: Prometheus with Thanos, Alertmanager, Grafana, EFK and the AUXIP KPIs."""

from __future__ import annotations

import pulumi


class Monitoring(pulumi.ComponentResource):
    """Parent of the monitoring stack; its services arrive with their issues."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:monitoring:Monitoring", name, None, opts)
        self.register_outputs({})
