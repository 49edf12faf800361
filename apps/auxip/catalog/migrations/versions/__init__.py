"""Catalog revisions, oldest first; each one is written by hand (no autogenerate at runtime)."""
