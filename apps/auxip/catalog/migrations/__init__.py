"""Alembic environment of the catalog (run through `auxip.catalog.migrate`, there is no alembic.ini)."""
