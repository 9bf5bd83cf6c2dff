"""``POST /v1/models/{name}/predict?explain=true``: the prediction plus each row's SHAP attributions, on a budget.

The prediction itself goes down the ordinary path (routing, canary split,
prediction log, metrics), so an explained request is logged like any
other. Its attributions are computed in a worker thread by the loaded
model's cached explainer (``loopml.explain.local``), whose background rows
come from the version's stored global explanation (``loopml.explain_model``)
or the model's input example. Each model has an
:class:`~loopml.explain.budget.ExplanationBudget`: over it, the request is
refused with 429 and ``Retry-After`` before anything is computed, so
explanations never hold up plain predictions.

The answer is the v1 answer with one more key, ``explanations``: one entry
per row with ``attributions`` (by input column), ``expected_value`` and
``output_value``; the attributions add up to ``output_value - expected_value``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool

from loopml.errors import InvalidInputError, LoopMLError
from loopml.explain.budget import DEFAULT_BURST_S, DEFAULT_CONCURRENT, DEFAULT_RATE, ExplanationBudget
from loopml.explain.local import explainer_for, stored_background
from loopml.serving.payloads import Payload, parse_v1
from loopml.serving.predictor import Predictor
from loopml.serving.service import Answer, PredictionService

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def wants_explanation(query_string: bytes) -> bool:
    """Whether the query asks for explanations; InvalidInputError (422) naming ``explain`` for a bad value."""
    if not query_string or b"explain" not in query_string:
        return False
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("explain")
    if not values:
        return False
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInputError(f"Query parameter explain must be true or false, got {values[-1]!r}.")


class Explanations:
    """Explained predictions for one prediction service: a budget per model, explainers cached per version."""

    def __init__(
        self,
        service: PredictionService,
        *,
        seconds_per_second: float = DEFAULT_RATE,
        burst_s: float = DEFAULT_BURST_S,
        max_concurrent: int = DEFAULT_CONCURRENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._options = {"seconds_per_second": seconds_per_second, "burst_s": burst_s, "max_concurrent": max_concurrent}
        ExplanationBudget(**self._options)  # type: ignore[arg-type]  # checks the options now, not on a request
        self._clock = clock
        self._budgets: dict[str, ExplanationBudget] = {}
        self._lock = threading.Lock()

    def budget(self, name: str) -> ExplanationBudget:
        """The model's budget (made on its first explained request that found the model)."""
        with self._lock:
            found = self._budgets.get(name)
            if found is None:
                found = ExplanationBudget(clock=self._clock, **self._options)  # type: ignore[arg-type]
                self._budgets[name] = found
            return found

    async def predict(
        self,
        segment: str,
        version: str | None,
        body: bytes,
        *,
        v2: bool = False,
        key: str | None = None,
        request_id: str | None = None,
        header_length: int | None = None,
    ) -> Answer:
        """Predict as usual, then explain each row within the model's budget (429 over it); v1 only."""
        if v2:
            raise InvalidInputError("explain=true is answered on the v1 route POST /v1/models/{name}/predict.")
        name = segment.partition("@")[0]
        what = f"Explanations of model {name!r}"
        with self._lock:
            budget = self._budgets.get(name)
        if budget is not None:  # a model explained before: refuse over budget before predicting
            budget.acquire(what)
        held = budget
        start = self._clock()
        try:
            answer = await self.service.predict(segment, version, body, key=key, request_id=request_id)
            if held is None:  # the first explained request of this model: it exists, the prediction found it
                budget = self.budget(name)
                budget.acquire(what)
                held, start = budget, self._clock()
            content = json.loads(answer.content)
            predictor = self.service.cache.get((name, content["version"])) or await self.service.cache.aload(
                (name, content["version"])
            )
            content["explanations"] = await run_in_threadpool(self._explain, predictor, parse_v1(body))
        finally:
            if held is not None:
                held.release(self._clock() - start)
        return Answer(json.dumps(content, ensure_ascii=False).encode(), answer.request_id, answer.replaced)

    def _explain(self, predictor: Predictor, payload: Payload) -> list[dict[str, Any]]:
        import pandas as pd

        if payload.records is not None:
            frame = pd.DataFrame.from_records(payload.records)
        elif payload.columns is not None:
            frame = pd.DataFrame(payload.columns)
        elif payload.matrix is not None and predictor.names is not None:
            frame = pd.DataFrame(payload.matrix, columns=predictor.names)
        else:
            raise InvalidInputError(
                "explain=true needs records or columns (or an instances matrix of a model with a signature)."
            )

        def background() -> Any:
            version = self.service._registry.get_model_version(predictor.name, predictor.version)
            return stored_background(version.evidence)

        try:
            # the prediction of these rows succeeded just now: the signature has checked them
            return explainer_for(predictor.loaded, background).explain(frame, checked=True).to_records()
        except LoopMLError:
            raise
        except (ValueError, TypeError, KeyError) as exc:  # the model could not take these rows
            raise InvalidInputError(f"These rows cannot be explained: {type(exc).__name__}: {exc}"[:500]) from None


def explanations_of(app: Any, service: PredictionService) -> Explanations:
    """The app's :class:`Explanations` (``app.state.explanations``), made with the default budget on first use."""
    state = app.state
    found = getattr(state, "explanations", None)
    if found is None:
        found = Explanations(service)
        state.explanations = found
    assert isinstance(found, Explanations)
    return found
