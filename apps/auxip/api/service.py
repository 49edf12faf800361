"""The service root document and `$metadata`."""

from __future__ import annotations

from aiohttp import web

from auxip.api.metadata import CONTENT_TYPE, METADATA_XML

ROOT = "/odata/v1"
ENTITY_SETS = ("Products", "Subscriptions", "Metrics")


def add_service_routes(app: web.Application) -> None:
    app.router.add_get(f"{ROOT}/", service_document)
    app.router.add_get(ROOT, service_document)
    app.router.add_get(f"{ROOT}/$metadata", metadata)


async def service_document(_request: web.Request) -> web.Response:
    return web.json_response(
        {
            "@odata.context": "$metadata",
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in ENTITY_SETS],
        }
    )


async def metadata(_request: web.Request) -> web.Response:
    return web.Response(text=METADATA_XML, content_type=CONTENT_TYPE, headers={"OData-Version": "4.0"})
