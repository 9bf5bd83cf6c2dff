"""Artifact blobs by sha256: streamed upload, streamed download, existence check."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from loopml.server.deps import StoreDep
from loopml.server.schemas.artifacts import BlobOut
from loopml.server.streams import request_body_reader

router = APIRouter(tags=["artifacts"])
_OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@router.put(
    "/artifacts/blobs",
    openapi_extra={"requestBody": {"required": True, "content": _OCTETS}},
    summary="Store a blob, streamed; answers its sha256 and size",
)
def put_blob(request: Request, store: StoreDep) -> BlobOut:
    digest, size = store.artifacts.write_stream(request_body_reader(request))
    return BlobOut(digest=digest, size=size)


@router.head("/artifacts/blobs/{digest}", summary="200 when the blob is stored, 404 otherwise")
def blob_exists(digest: str, store: StoreDep) -> Response:
    return Response(status_code=200 if store.artifacts.exists(digest) else 404)


@router.get(
    "/artifacts/blobs/{digest}",
    response_class=StreamingResponse,
    responses={200: {"content": _OCTETS}},
    summary="The blob's bytes, streamed; the server checks the sha256 as it reads",
)
def get_blob(digest: str, store: StoreDep) -> StreamingResponse:
    return StreamingResponse(store.artifacts.open_stream(digest), media_type="application/octet-stream")
