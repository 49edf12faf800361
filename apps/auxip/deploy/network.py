"""What each AUXIP role may reach, and who may reach it, on top of its namespace's default-deny and DNS policies
(the baseline's `default-deny` and `allow-dns`).

| role | ingress (http port) | egress |
|---|---|---|
| api | reverse proxy, monitoring | catalog, products storage, Keycloak |
| ingest | monitoring | catalog, Kafka, products storage, clamd, the AUXIP's sources |
| route | monitoring | catalog, Kafka, products storage |
| notify | monitoring | catalog, subscription endpoints (matching and the outbox are in the catalog) |
| evict | monitoring | catalog, products storage |
| migration Job | none | catalog |

The hosted applications' exchanges add their own rules (`hosted_app.py`): the exchange storage for ingest and
route, each inbound exchange's peer for ingest (a source), each outbound one's for route (a target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from auxip.deploy.auxip_config import CLAMD_PORT, HTTP_PORT
from auxip.deploy.auxip_service import KAFKA_ROLES, MIGRATE, selector
from auxip.deploy.clamd import LABELS as CLAMD_LABELS
from auxip.deploy.context import ClusterContext
from auxip.deploy.fields import default_port
from auxip.deploy.service_config import AuxipServiceConfig, Role

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.platform.services.common import (  # type: ignore[import-not-found]
    namespaces_peer,
    network_policy,
    tcp,
)

Rule = dict[str, Any]


def _to(cidr: object, port: int) -> Rule:
    return {"to": [{"ipBlock": {"cidr": str(cidr)}}], "ports": tcp(port)}


def ingress_rules(role: Role, service: AuxipServiceConfig, reverse_proxy: str) -> list[Rule]:
    sources = [service.monitoring_namespace, *([reverse_proxy] if role == "api" else [])]
    return [{"from": [namespaces_peer(sources)], "ports": tcp(HTTP_PORT)}]


def egress_rules(role: Role, service: AuxipServiceConfig, context: ClusterContext) -> list[Rule]:
    rules: list[Rule] = [context.catalog_egress] if context.catalog_egress else []
    if role in KAFKA_ROLES and context.kafka is not None:
        rules.append(context.kafka.egress)
    if role in ("api", "ingest", "route", "evict"):
        rules.append(_to(service.storage.cidr, service.storage.port))
    if role == "api":
        rules += [_to(realm.cidr, default_port(realm.jwks_url)) for realm in service.auth.keycloak]
    if role == "ingest":
        rules.append({"to": [{"podSelector": {"matchLabels": dict(CLAMD_LABELS)}}], "ports": tcp(CLAMD_PORT)})
        rules += [_to(source.cidr, source.port or 443) for source in service.sources]
    if role == "notify":
        rules += [_to(endpoint.cidr, endpoint.port) for endpoint in service.subscription_endpoints]
    return rules


@dataclass(frozen=True)
class AuxipNetworkArgs:
    service: AuxipServiceConfig
    namespace: str
    context: ClusterContext
    #: The ingress controller's namespace: the only way in to the API from outside.
    reverse_proxy_namespace: str


class AuxipNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, args: AuxipNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:AuxipNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service, namespace = args.service, args.namespace
        self.policies = {
            role: network_policy(
                f"auxip-{role}",
                namespace,
                selector(role),
                child,
                ingress=ingress_rules(role, service, args.reverse_proxy_namespace),
                egress=egress_rules(role, service, args.context),
            )
            for role, _ in service.roles.items()
        }
        if args.context.catalog_egress:
            network_policy(
                f"auxip-{MIGRATE}", namespace, selector(MIGRATE), child, egress=[args.context.catalog_egress]
            )
        self.register_outputs({"policies": [f"auxip-{role}" for role in self.policies]})
