"""Alembic migrations of the metadata schema, applied on first use."""
