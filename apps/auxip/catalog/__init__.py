"""The AUXIP catalog: products, checksums and typed attributes, their schema migrations and the publication path.

Modules, one job each:
- `types`: the aware-UTC datetime column type;
- `models`: the SQLAlchemy ORM models and the indexes behind the OData access patterns;
- `clock`: the publication clock that keeps PublicationDate strictly increasing in commit order;
- `records`: the typed input of a publication (`ProductRecord`);
- `publish`: the idempotent single-product write path;
- `bulk`: the batched loader for benchmarks and restores;
- `migrate`: Alembic run programmatically (`upgrade(url)`), the migrations live in `migrations/`.
"""

from auxip.catalog.bulk import BulkLoadResult, bulk_load
from auxip.catalog.migrate import create_schema, upgrade
from auxip.catalog.publish import ProductConflictError, PublishedProduct, publish_product
from auxip.catalog.records import AttributeValue, ProductRecord

__all__ = [
    "AttributeValue",
    "BulkLoadResult",
    "ProductConflictError",
    "ProductRecord",
    "PublishedProduct",
    "bulk_load",
    "create_schema",
    "publish_product",
    "upgrade",
]
