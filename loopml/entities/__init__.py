"""Frozen dataclasses shared by every layer; no I/O here."""
