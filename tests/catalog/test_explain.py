"""PostgreSQL plans the contract's polling query on ix_product_publication (no full sort of the table)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, text

from auxip.catalog import ProductRecord, bulk_load
from auxip.catalog.models import Product

RecordFactory = Callable[..., ProductRecord]
# EXPLAIN plans are PostgreSQL-specific: pin the conftest's backend parameter.
POSTGRES_ONLY = pytest.mark.parametrize(
    "catalog_url", [pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


@pytest.fixture
def loaded(engine: Engine, make_record: RecordFactory) -> Engine:
    bulk_load(engine, (make_record(index) for index in range(4000)), batch_size=1000)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return engine


def _plan(engine: Engine, sql: str, **params: object) -> str:
    with engine.connect() as conn:
        return "\n".join(conn.execute(text(f"EXPLAIN {sql}"), params).scalars())


@POSTGRES_ONLY
def test_polling_query_uses_the_publication_index(loaded: Engine) -> None:
    with loaded.connect() as conn:
        # A poller that is 1000 products behind.
        last = conn.execute(
            select(Product.publication_date).order_by(Product.publication_date).offset(3000).limit(1)
        ).scalar_one()
    plan = _plan(
        loaded,
        "SELECT * FROM product WHERE publication_date > :t ORDER BY publication_date, id LIMIT 1000",
        t=last,
    )
    assert "Index" in plan
    assert "ix_product_publication" in plan
    assert "Seq Scan" not in plan


@POSTGRES_ONLY
def test_startswith_uses_the_pattern_index(loaded: Engine) -> None:
    # startswith(Name,'...') must escape LIKE's wildcards: S1 names are full of '_', which would otherwise match any
    # character and leave only "S1A" as the indexable prefix. SQLAlchemy's startswith(autoescape=True) does this.
    prefix = "S1A_OPER_AUX_POEORB_OPOD_0000012"
    pattern = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    plan = _plan(loaded, "SELECT id FROM product WHERE name LIKE :p ESCAPE '/'", p=pattern)
    assert "ix_product_name_pattern" in plan
    assert "Seq Scan" not in plan
    with loaded.connect() as conn:
        names = conn.execute(select(Product.name).where(Product.name.startswith(prefix, autoescape=True))).scalars()
        assert sorted(names) == [f"{prefix}{digit}_V20260101T000000_20260102T000000.EOF.zip" for digit in range(10)]
