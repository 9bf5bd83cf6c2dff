"""Response bodies of the artifact routes (blob bytes themselves travel as raw octet streams)."""

from __future__ import annotations

from loopml.server.schemas.common import Schema


class BlobOut(Schema):
    """A stored blob: the sha256 of its bytes and their number."""

    digest: str
    size: int
