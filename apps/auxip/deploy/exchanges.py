"""Hosted applications' exchanges compiled into the AUXIP's `sources[]` and `routes[]` (pure, no Pulumi).

The AUXIP moves every file; the application only reads its inbox and writes its outbox, both S3 prefixes of the
exchange bucket (`<prefix>/<app>/inbox/`, `<prefix>/<app>/outbox/<exchange>/`). Per exchange:

| direction | peer | compiled into |
|---|---|---|
| out | external | source: the exchange's outbox folder; route: that source -> the peer as a target |
| out | auxip-ingestion | source: the exchange's outbox folder (ingested like any source); no route |
| in | external | source: the peer; route: that source -> `inbox://<app>` |
| in | auxip-ingestion | route: published products of the given types -> `inbox://<app>`; no source |

"-> AUXIP ingestion" is a source of the AUXIP rather than a route to `inbox://auxip-ingestion`: ingestion already
polls sources, checks integrity, scans, validates names and catalogues, so the application's products go through
exactly the checks every other product does, with no second path into the catalog.

Each outbound exchange has its own outbox folder: a route from a source cannot filter by product type, so the folder
the application writes to is what chooses the destination, and no file reaches a peer it was not meant for.
"""

from __future__ import annotations

from typing import Any

from auxip.deploy.config import (
    AppsConfig,
    Exchange,
    ExchangeStorage,
    ExternalPeer,
    HostedAppConfig,
)
from auxip.ingest.sources.settings import SourceSettings
from auxip.routing.settings import InboxSettings, PublishedTrigger, RouteSettings, SourceTrigger, TargetSettings

#: The routing document's keys, as the AUXIP configuration reads them.
Document = dict[str, Any]


def app_prefix(storage: ExchangeStorage, app: HostedAppConfig) -> str:
    return f"s3://{storage.bucket}/{storage.prefix}/{app.name}"


def inbox_url(storage: ExchangeStorage, app: HostedAppConfig) -> str:
    return f"{app_prefix(storage, app)}/inbox/"


def outbox_url(storage: ExchangeStorage, app: HostedAppConfig, exchange: Exchange | None = None) -> str:
    """The outbox, or the folder of one outbound exchange in it."""
    return f"{app_prefix(storage, app)}/outbox/" + (f"{exchange.name}/" if exchange else "")


def _dump(model: SourceSettings | RouteSettings | TargetSettings | InboxSettings) -> dict[str, Any]:
    # Only what was set: the AUXIP's own defaults stay its own (poll intervals, retries).
    return model.model_dump(mode="json", exclude_unset=True, exclude_none=True)


def _filters(exchange: Exchange) -> dict[str, Any]:
    return {
        "product_types": list(exchange.product_types),
        "include": [exchange.name_pattern] * bool(exchange.name_pattern),
    }


def _storage_access(storage: ExchangeStorage) -> dict[str, Any]:
    return {"credentials": storage.credentials, "endpoint_url": storage.endpoint_url, "region": storage.region}


def _inbox_target(app: HostedAppConfig) -> TargetSettings:
    return TargetSettings(name=f"{app.name}-inbox", url=f"inbox://{app.name}")


def compile_exchanges(
    app: HostedAppConfig, storage: ExchangeStorage
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sources, routes) of one application, in the shapes of `SourceSettings` and `RouteSettings`."""
    sources: list[SourceSettings] = []
    routes: list[RouteSettings] = []
    for exchange in app.exchanges:
        name = f"{app.name}-{exchange.name}"
        peer = exchange.peer
        if exchange.direction == "out":
            outbox = outbox_url(storage, app, exchange)
            sources.append(SourceSettings(name=name, url=outbox, **_filters(exchange), **_storage_access(storage)))
            if isinstance(peer, ExternalPeer):
                target = TargetSettings(name=exchange.name, url=peer.url, credentials=peer.credentials)
                routes.append(RouteSettings(name=name, trigger=SourceTrigger(source=name), targets=[target]))
        elif isinstance(peer, ExternalPeer):
            sources.append(SourceSettings(name=name, url=peer.url, credentials=peer.credentials, **_filters(exchange)))
            routes.append(RouteSettings(name=name, trigger=SourceTrigger(source=name), targets=[_inbox_target(app)]))
        else:
            # in, from auxip-ingestion: what the AUXIP publishes, not a source of its own.
            trigger = PublishedTrigger(
                event="product.published",
                product_types=list(exchange.product_types),
                name_pattern=exchange.name_pattern,
            )
            routes.append(RouteSettings(name=name, trigger=trigger, targets=[_inbox_target(app)]))
    return [_dump(source) for source in sources], [_dump(route) for route in routes]


def routing_document(apps: AppsConfig) -> Document:
    """What the AUXIP reads from the `auxip-routes` ConfigMap: every application's sources and routes, and where
    each `inbox://<app>` target really is (`inboxes`, the AUXIP configuration key of that name: its S3 prefix)."""
    document: Document = {"sources": [], "routes": [], "inboxes": {}}
    storage = apps.exchange_storage
    if storage is None:
        return document
    for app in apps.hosted:
        sources, routes = compile_exchanges(app, storage)
        document["sources"] += sources
        document["routes"] += routes
        inbox = InboxSettings(url=inbox_url(storage, app), **_storage_access(storage))
        document["inboxes"][app.name] = _dump(inbox)
    return document
