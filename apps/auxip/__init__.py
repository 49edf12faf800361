"""The AUXIP workloads: ingestion, transformation, publication (OData API), routing and hosted applications."""

__version__ = "0.1.0"
