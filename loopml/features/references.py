"""Turn what a caller asks for (``"view:feature"`` strings or a service name) into views and their features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loopml.errors import FeatureReferenceError, FeatureViewNotFoundError, did_you_mean
from loopml.features.definitions import FeatureService, FeatureView, ServiceSpec


def parse(reference: str) -> tuple[str, str]:
    """``("view", "feature")`` from ``"view:feature"``; FeatureReferenceError otherwise."""
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise FeatureReferenceError(f"Feature reference {reference!r} must read 'view:feature'.")
    view, feature = reference.split(":")
    if not view or not feature:
        raise FeatureReferenceError(f"Feature reference {reference!r} must read 'view:feature'.")
    return view, feature


def _view(name: str, views: Mapping[str, FeatureView]) -> FeatureView:
    view = views.get(name)
    if view is None:
        raise FeatureViewNotFoundError(f"No feature view {name!r} has been applied.{did_you_mean(name, views)}")
    return view


def resolve(
    features: Sequence[str] | None,
    service: str | FeatureService | ServiceSpec | None,
    *,
    views: Mapping[str, FeatureView],
    services: Mapping[str, FeatureService | ServiceSpec] | None = None,
    full_names: bool = False,
) -> list[tuple[FeatureView, list[str]]]:
    """Per view (in first-mention order) the feature names asked for, checked against the definitions.

    Exactly one of ``features`` (``"view:feature"`` strings) and ``service`` (a name looked up in
    ``services``, or the service itself). Two views giving the same feature name raise
    FeatureReferenceError naming both, unless ``full_names`` (output columns ``view__feature``).
    """
    if (features is None) == (service is None):
        raise FeatureReferenceError("Ask for features=['view:feature', ...] or service='name', exactly one of them.")
    wanted: dict[str, list[str]] = {}
    if features is not None:
        if isinstance(features, str) or not features:
            raise FeatureReferenceError("features must be a non-empty list of 'view:feature' strings.")
        for reference in features:
            view_name, feature = parse(reference)
            listed = wanted.setdefault(view_name, [])
            if feature not in listed:
                listed.append(feature)
    else:
        if isinstance(service, str):
            found = (services or {}).get(service)
            if found is None:
                raise FeatureViewNotFoundError(
                    f"No feature service {service!r} has been applied.{did_you_mean(service, services or {})}"
                )
            service = found
        assert service is not None
        for view_name, names in service.projections():
            wanted[view_name] = list(names)
    resolved: list[tuple[FeatureView, list[str]]] = []
    owner: dict[str, str] = {}
    for view_name, names in wanted.items():
        view = _view(view_name, views)
        for feature in names:
            if feature not in view.schema:
                raise FeatureReferenceError(
                    f"Feature view {view_name!r} has no feature {feature!r}.{did_you_mean(feature, view.schema)}"
                )
            if not full_names:
                if feature in owner:
                    raise FeatureReferenceError(
                        f"Feature {feature!r} comes from both view {owner[feature]!r} and view {view_name!r}; "
                        "ask for one of them, or use full names."
                    )
                owner[feature] = view_name
        resolved.append((view, names))
    return resolved


def output_name(view: str, feature: str, *, full_names: bool) -> str:
    """The column a feature gets in a result: ``feature``, or ``view__feature`` with full names."""
    return f"{view}__{feature}" if full_names else feature
