"""Sentinel-1 routing: files from external sources (or published products) delivered to external targets."""
