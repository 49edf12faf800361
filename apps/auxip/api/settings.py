"""App keys for the API's configuration and shared services."""

from __future__ import annotations

from aiohttp import web

from auxip.config import ApiConfig

API_SETTINGS = web.AppKey("api_settings", ApiConfig)
