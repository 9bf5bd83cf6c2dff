"""Artifact bytes on any fsspec filesystem, addressed by sha256."""
