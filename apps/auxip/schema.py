"""Every table of the AUXIP database, in one metadata: what migrations are written against and compared with.

The catalog owns `Base`; authentication, ingestion, routing and subscriptions add their tables to it. Importing
their model modules here (and only here) lets Alembic and the schema tests see the whole database without the
catalog depending on them.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import auxip.auth.models
import auxip.catalog.leases
import auxip.ingest.models
import auxip.routing.models
import auxip.subscriptions.models
from auxip.catalog.models import Base

MODEL_MODULES = (
    auxip.auth.models,
    auxip.catalog.leases,
    auxip.ingest.models,
    auxip.routing.models,
    auxip.subscriptions.models,
)

metadata: MetaData = Base.metadata
