"""The AUXIP's configuration on the cluster (`/etc/auxip/auxip.yaml`), generated from the stack configuration.

Pure functions, no Pulumi: `auxip_document` writes the document every role's pods read, `problems` runs it through
the program's own loader (`auxip.config.load_config`, with the routing document and the environment the pods get),
so a stack whose AUXIP configuration the program would refuse fails at `pulumi preview` (and `make config-check`),
naming both the stack key and the AUXIP key. No credential is in the document: the catalog URL and the S3 keys
reach the pods as environment variables from Secrets, the Kafka client certificate as files.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from auxip.config import ConfigError, load_config
from auxip.deploy.context import ClusterContext, KafkaCluster
from auxip.deploy.service_config import AuxipServiceConfig

CONFIG_MAP = "auxip-config"
CONFIG_KEY = "auxip.yaml"
#: The ConfigMap (in the AUXIP namespace) the AUXIP reads its hosted applications' sources and routes from.
ROUTES_CONFIG_MAP = "auxip-routes"
ROUTES_KEY = "routes.yaml"
CONFIG_DIR = "/etc/auxip"
CONFIG_FILE = f"{CONFIG_DIR}/{CONFIG_KEY}"
ROUTES_FILE = f"{CONFIG_DIR}/routes/{ROUTES_KEY}"
DATA_DIR = "/var/lib/auxip"
#: Where the KafkaUser's certificate and the cluster CA are mounted in the pods that use the bus.
KAFKA_CERTS = "/var/run/secrets/auxip/kafka"
HTTP_PORT = 8080
#: clamd's Service in the AUXIP namespace.
CLAMD_SERVICE = "clamd"
CLAMD_PORT = 3310
#: Environment variables the pods get from Secrets (`valueFrom.secretKeyRef`), never values in the document.
CATALOG_URL_ENV = "AUXIP_CATALOG__URL"
S3_ACCESS_KEY_ENV = "AUXIP_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "AUXIP_S3_SECRET_KEY"  # noqa: S105 (the name of a variable)
#: What `problems` puts in the catalog URL variable: the shape of the real one, without a password.
PLACEHOLDER_CATALOG_URL = "postgresql+psycopg://auxip@catalog.invalid:5432/auxip"


def products_url(service: AuxipServiceConfig, context: ClusterContext) -> str:
    bucket = service.storage.bucket or context.products_bucket
    return f"s3://{bucket}/{service.storage.prefix}"


def clamd_host(namespace: str) -> str:
    return f"{CLAMD_SERVICE}.{namespace}.svc"


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _sources(service: AuxipServiceConfig) -> list[dict[str, Any]]:
    sources = []
    for source in service.sources:
        entry: dict[str, Any] = {"name": source.name, "url": source.url}
        if source.credentials:
            entry["credentials"] = source.credentials
        if source.product_types:
            entry["product_types"] = list(source.product_types)
        if source.poll_interval is not None:
            entry["poll_interval"] = source.poll_interval
        sources.append(entry)
    return sources


def _kafka_bus(kafka: KafkaCluster) -> dict[str, Any]:
    """Strimzi's TLS listener with the KafkaUser's certificate (mutual TLS), mounted from its Secret."""
    return {
        "url": f"kafka://{kafka.bootstrap}",
        "topic_prefix": kafka.topic_prefix,
        "tls": {
            "ca_file": f"{KAFKA_CERTS}/ca.crt",
            "cert_file": f"{KAFKA_CERTS}/user.crt",
            "key_file": f"{KAFKA_CERTS}/user.key",
        },
    }


def auxip_document(service: AuxipServiceConfig, namespace: str, context: ClusterContext) -> dict[str, Any]:
    """The `auxip.yaml` of every role (the role itself is `auxip serve --role`, not a key)."""
    storage, auth = service.storage, service.auth
    kafka = context.kafka
    document: dict[str, Any] = {
        "data_dir": DATA_DIR,
        "log_format": "json",
        # Every process listens here: the API (api role only), /health/live, /health/ready and /metrics.
        "api": {"listen": f"0.0.0.0:{HTTP_PORT}"},
        # The release's migration Job runs `auxip migrate`; each replica only checks the schema.
        "catalog": {"migrate": False},
        "storage": {
            "url": products_url(service, context),
            "s3": {
                "endpoint_url": storage.endpoint_url,
                "region": storage.region,
                "access_key_env": S3_ACCESS_KEY_ENV,
                "secret_key_env": S3_SECRET_KEY_ENV,
            },
        },
        "auth": {
            "local_users": False,
            "keycloak": [
                {"issuer": r.issuer, "jwks_url": r.jwks_url, "audience": r.audience, "client_id": r.client_id}
                for r in auth.keycloak
            ],
            **({"token_proxy_url": auth.token_url} if auth.token_url else {}),
        },
        "bus": _kafka_bus(kafka) if kafka else {"url": "embedded"},
        "scanner": {"url": f"tcp://{clamd_host(namespace)}:{CLAMD_PORT}"},
        "sources": _sources(service),
        "routing_documents": [ROUTES_FILE],
    }
    return _merged(document, service.settings)


def render(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def checksum(text: str) -> str:
    """The pod template annotation that rolls the pods when `text` (a mounted document) changes."""
    return hashlib.sha256(text.encode()).hexdigest()


def stack_key(auxip_key: str, service: AuxipServiceConfig) -> str:
    """The stack configuration key (below `auxip-platform:`) an AUXIP configuration key comes from."""
    parts = auxip_key.split(".")
    top = parts[0]
    if top in service.settings:
        return ".".join(["apps.auxip.settings", *parts])
    if top == "sources" and len(parts) > 1 and parts[1].isdigit():
        if int(parts[1]) < len(service.sources):
            return f"apps.auxip.sources.{parts[1]}"
        return "apps.hosted"  # the hosted applications' exchanges (the routing document)
    if top in ("routes", "inboxes"):
        return "apps.hosted"
    return {"storage": "apps.auxip.storage", "auth": "apps.auxip.auth", "scanner": "apps.auxip.scanner"}.get(
        top, "apps.auxip"
    )


_PROBLEM = re.compile(r"^\s+(?P<key>\S+|\(top level\)): (?P<message>.*)$")
#: A problem the model reports at its top level names its key first (`routes.0.trigger.source: no source ...`).
_KEYED = re.compile(r"^(?P<key>[a-z_]+(\.[A-Za-z0-9_]+)*): (?P<message>.*)$")


def _located(key: str, message: str) -> tuple[str, str]:
    keyed = _KEYED.match(message) if key == "(top level)" else None
    return (keyed["key"], keyed["message"]) if keyed else (key, message)


def problems(
    document: dict[str, Any], routing_document: dict[str, Any], service: AuxipServiceConfig
) -> list[tuple[str, str]]:
    """(stack key, problem) for each key the AUXIP refuses in `document` with `routing_document` (as its pods load
    them: the routing document appended, the catalog URL from the environment); empty when it loads."""
    with tempfile.TemporaryDirectory(prefix="auxip-config-") as tmp:
        routes = Path(tmp) / ROUTES_KEY
        routes.write_text(render(routing_document))
        path = Path(tmp) / CONFIG_KEY
        path.write_text(render({**document, "routing_documents": [str(routes)]}))
        try:
            load_config(path, environ={CATALOG_URL_ENV: PLACEHOLDER_CATALOG_URL})
        except ConfigError as error:
            lines = [m for m in map(_PROBLEM.match, str(error).splitlines()) if m]
            found = [_located(m["key"], m["message"]) for m in lines] or [("(configuration)", str(error))]
            return [
                (stack_key(key, service), f"the AUXIP refuses the configuration generated from it: {key}: {message}")
                for key, message in found
            ]
    return []
