"""Applied feature definitions: apply (editor), read and list (viewer). One route per store method."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from loopml.auth.guard import actor_for
from loopml.server.authorized_route import AuthorizedRoute
from loopml.server.deps import StoreDep
from loopml.server.schemas.features import ApplyFeaturesIn, FeatureDefinitionOut, FeatureVersionOut

router = APIRouter(tags=["features"], route_class=AuthorizedRoute)
_KINDS = {"entities": "entity", "views": "view", "services": "service"}
Kind = Annotated[str, Path(pattern="^(entities|views|services)$")]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.post("/features/apply")
def apply_features(body: ApplyFeaturesIn, store: StoreDep, request: Request) -> list[FeatureDefinitionOut]:
    records = store.features.apply_feature_definitions(
        [item.model_dump() for item in body.definitions], actor=actor_for(request, body.actor)
    )
    return [FeatureDefinitionOut.model_validate(r) for r in records]


@router.get("/features/version")
def feature_definitions_version(store: StoreDep) -> FeatureVersionOut:
    return FeatureVersionOut(version=store.features.feature_definitions_version())


@router.get("/features/{kind}")
def list_feature_definitions(kind: Kind, store: StoreDep) -> list[FeatureDefinitionOut]:
    return [FeatureDefinitionOut.model_validate(r) for r in store.features.list_feature_definitions(_KINDS[kind])]


@router.get("/features/{kind}/{name}")
def get_feature_definition(kind: Kind, name: str, store: StoreDep, version: Version = None) -> FeatureDefinitionOut:
    return FeatureDefinitionOut.model_validate(store.features.get_feature_definition(_KINDS[kind], name, version))


@router.get("/features/{kind}/{name}/versions")
def feature_definition_history(kind: Kind, name: str, store: StoreDep) -> list[FeatureDefinitionOut]:
    records = store.features.feature_definition_history(_KINDS[kind], name)
    return [FeatureDefinitionOut.model_validate(r) for r in records]
