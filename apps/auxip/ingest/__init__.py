"""Ingestion: external sources → integrity → antivirus → validation → S1PDGS transformation → publication."""
