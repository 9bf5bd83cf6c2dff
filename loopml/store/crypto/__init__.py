"""Encryption at rest for artifact bytes: master keys (``keys``) and the envelope format (``envelope``)."""
