"""Catalog ingest: three real sources -> one Item / Listener schema."""
