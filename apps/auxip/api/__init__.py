"""The AUXIP OData API (publication interface): Products, $value download, Subscriptions, Metrics.

Served by aiohttp: its FileResponse streams local files with sendfile (zero-copy) and answers Range requests,
which the download throughput target needs; database work runs in a thread pool on synchronous SQLAlchemy.
"""
