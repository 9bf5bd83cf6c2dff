"""What routes receive from FastAPI besides their parsed body: the Store the app was built over."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Path, Query, Request, Response

from loopml.store import Store

INT64_MAX = 2**63 - 1


class NoContent(TypedDict):
    """Route options for an answer of 204 with no body: ``@router.post(path, **NO_CONTENT)``."""

    status_code: int
    response_class: type[Response]


async def get_store(request: Request) -> Store:
    """The Store passed to ``create_app`` (async: no threadpool hop for an attribute read)."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
#: Path segments that are database integers (model versions, ids).
IntPath = Annotated[int, Path(ge=-INT64_MAX - 1, le=INT64_MAX)]
#: Query parameters that are database integers (times in ms, version numbers).
IntQuery = Annotated[int, Query(ge=-INT64_MAX - 1, le=INT64_MAX)]
