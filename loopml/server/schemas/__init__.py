"""Pydantic request and response bodies of the REST API, one module per domain.

Pydantic lives only here: entities stay frozen dataclasses, and each schema
converts to and from them (``Out.model_validate(entity)``, ``In.to_entity()``).
"""
