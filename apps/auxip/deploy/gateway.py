"""The AUXIP's public face: the OData API (`/odata`) and the token URL (`/auth/token`) through the reverse proxy
(Kong), on TLS with a certificate from cert-manager, with a request size limit and a rate limit of its own.

Nothing else of the api pods is routed: `/metrics` and `/health/*` stay inside the cluster (scraped over the pod
network), and the other roles have no Service at all. The plugins are KongPlugins in the AUXIP namespace, attached
to the Ingress by its `konghq.com/plugins` annotation; they take precedence over the platform's global rate limit
on these routes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from auxip.deploy.service_config import IngressConfig

# mypy cannot follow the editable install of `auxip_platform` (an import hook).
from auxip_platform.platform.services.common import custom_object  # type: ignore[import-not-found]

meta, net = k8s.meta.v1, k8s.networking.v1

#: What the Ingress routes, and how (`/auth/token` exactly: `/auth/jwks` and others stay internal).
ROUTES = (("/odata", "Prefix"), ("/auth/token", "Exact"))
TLS_SECRET = "auxip-api-tls"  # noqa: S105 (a Secret's name)
REQUEST_SIZE_PLUGIN = "auxip-api-request-size"
RATE_LIMIT_PLUGIN = "auxip-api-rate-limit"
KONG_API = "configuration.konghq.com/v1"


@dataclass(frozen=True)
class GatewayArgs:
    ingress: IngressConfig
    namespace: str
    ingress_class: str
    #: The api role's Service and its port name.
    service_name: str
    service_port: str


class Gateway(pulumi.ComponentResource):
    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("auxip:apps:Gateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, namespace = args.ingress, args.namespace
        labels = {"app.kubernetes.io/name": "auxip", "app.kubernetes.io/part-of": "auxip"}
        self.certificate = k8s.apiextensions.CustomResource(
            TLS_SECRET,
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": TLS_SECRET, "namespace": namespace, "labels": labels},
            spec={
                "secretName": TLS_SECRET,
                "dnsNames": [config.host],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["server auth", "digital signature"],
                "issuerRef": {"name": config.tls_issuer, "kind": config.tls_issuer_kind, "group": "cert-manager.io"},
            },
            opts=child,
        )
        plugin_meta = {"namespace": namespace, "labels": labels}
        plugins = [
            custom_object(
                REQUEST_SIZE_PLUGIN,
                KONG_API,
                "KongPlugin",
                {"name": REQUEST_SIZE_PLUGIN, **plugin_meta},
                {
                    "plugin": "request-size-limiting",
                    "config": {"allowed_payload_size": config.max_request_kilobytes, "size_unit": "kilobytes"},
                },
                child,
            ),
            custom_object(
                RATE_LIMIT_PLUGIN,
                KONG_API,
                "KongPlugin",
                {"name": RATE_LIMIT_PLUGIN, **plugin_meta},
                {
                    "plugin": "rate-limiting",
                    # `local`: counters per Kong pod (no Redis); the effective limit is per pod and client address.
                    "config": {"minute": config.rate_limit_per_minute, "policy": "local", "limit_by": "ip"},
                },
                child,
            ),
        ]
        backend = net.IngressBackendArgs(
            service=net.IngressServiceBackendArgs(
                name=args.service_name, port=net.ServiceBackendPortArgs(name=args.service_port)
            )
        )
        self.ingress = net.Ingress(
            "auxip-api",
            metadata=meta.ObjectMetaArgs(
                name="auxip-api",
                namespace=namespace,
                labels=labels,
                annotations={
                    "konghq.com/plugins": f"{REQUEST_SIZE_PLUGIN},{RATE_LIMIT_PLUGIN}",
                    "konghq.com/protocols": "https",
                    "konghq.com/https-redirect-status-code": "308",
                },
            ),
            spec=net.IngressSpecArgs(
                ingress_class_name=args.ingress_class,
                tls=[net.IngressTLSArgs(hosts=[config.host], secret_name=TLS_SECRET)],
                rules=[
                    net.IngressRuleArgs(
                        host=config.host,
                        http=net.HTTPIngressRuleValueArgs(
                            paths=[
                                net.HTTPIngressPathArgs(path=path, path_type=kind, backend=backend)
                                for path, kind in ROUTES
                            ]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.certificate, *plugins]),
        )
        self.register_outputs({"url": f"https://{config.host}/odata/v1/"})
