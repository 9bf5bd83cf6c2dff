"""Artifact blobs by sha256: streamed upload, streamed download, existence check.

When the app's ``artifacts_presign_s`` is set (``loopml server --artifacts-presign``)
and the store can sign URLs (S3, unencrypted), a download answers 307 with a
presigned URL valid that many seconds, so the bytes flow from the object store
to the client, not through the control plane; the client verifies them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.schemas.artifacts import BlobOut
from loopml.server.streams import request_body_reader

router = APIRouter(tags=["artifacts"], route_class=AuthorizedRoute)
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
    responses={200: {"content": _OCTETS}, 307: {"description": "Fetch the bytes from this presigned URL"}},
    summary="The blob's bytes, streamed (or 307 to a presigned URL); the sha256 is checked as it is read",
)
def get_blob(digest: str, request: Request, store: StoreDep) -> Response:
    expires_s = getattr(request.app.state, "artifacts_presign_s", None)
    if expires_s and store.artifacts.exists(digest):
        url = store.artifacts.presigned_url(digest, expires_s=int(expires_s))
        if url is not None:
            return RedirectResponse(url, status_code=307)
    return StreamingResponse(store.artifacts.open_stream(digest), media_type="application/octet-stream")
