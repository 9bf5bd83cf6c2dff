"""Prometheus metrics of one prediction service, in a registry of its own (two apps in one process never mix).

Per model and version: requests by role and status, errors by kind
(``client`` for 4xx, ``server`` for 5xx) and a latency histogram. For the
process: loaded models and their estimated bytes, cache hits, misses and
evictions, model load times, the prediction-log queue depth and what it
wrote, dropped (shed when full) or failed to write, and shadow predictions
dropped when the shadow could not keep up; caller request ids rewritten
because they were used already, and feedback items by outcome. Requests that name no served
model, or a version that does not exist, are counted without a model label,
so callers cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Latency buckets in seconds: fine below 10 ms, where a healthy prediction service lives.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServingMetrics:
    """Every metric the service exports; ``observe`` is the one call on the request path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "loopml_serving_requests",
            "Prediction requests answered.",
            ["model", "version", "role", "status"],
            registry=r,
        )
        self.errors = Counter(
            "loopml_serving_errors", "Prediction requests that failed (client: 4xx, server: 5xx).",
            ["model", "version", "kind"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "loopml_serving_request_duration_seconds", "Time to answer a prediction request.",
            ["model", "version"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            "loopml_serving_rejected_requests", "Requests refused before reaching a model (unknown model, bad route).",
            ["status"], registry=r,
        )  # fmt: skip
        self.loaded_models = Gauge("loopml_serving_loaded_models", "Model versions in memory.", registry=r)
        self.loaded_bytes = Gauge(
            "loopml_serving_loaded_bytes", "Estimated memory of the loaded versions (package sizes).", registry=r
        )
        self.cache_hits = Counter("loopml_serving_cache_hits", "Requests whose model version was loaded.", registry=r)
        self.cache_misses = Counter(
            "loopml_serving_cache_misses", "Requests that had to wait for a model version to load.", registry=r
        )
        self.cache_evictions = Counter(
            "loopml_serving_cache_evictions", "Versions dropped to stay within --max-loaded/--max-memory.", registry=r
        )
        self.load_seconds = Histogram(
            "loopml_serving_model_load_seconds", "Time to load one model version.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )  # fmt: skip
        self.log_queue_depth = Gauge(
            "loopml_serving_prediction_log_queue_depth",
            "Prediction-log records waiting for the batch writer.",
            registry=r,
        )
        self.log_held_bytes = Gauge(
            "loopml_serving_prediction_log_held_bytes",
            "Characters of request and answer text in prediction-log records queued or being written.",
            registry=r,
        )
        self.log_written = Counter(
            "loopml_serving_prediction_log_written", "Prediction-log records written to the store.", registry=r
        )
        self.log_dropped = Counter(
            "loopml_serving_prediction_log_dropped",
            "Prediction-log records shed because the queue was full (by records or by bytes).",
            registry=r,
        )
        self.log_write_failures = Counter(
            "loopml_serving_prediction_log_write_failures", "Batches the store refused (retried).", registry=r
        )
        self.shadow_dropped = Counter(
            "loopml_serving_shadow_dropped", "Shadow predictions skipped because the shadow queue was full.", registry=r
        )
        self.request_ids_rewritten = Counter(
            "loopml_serving_request_ids_rewritten",
            "Requests whose X-Request-ID (or v2 id) was answered already, given a fresh id instead.",
            registry=r,
        )
        self.feedback = Counter(
            "loopml_serving_feedback_items",
            "Feedback items: accepted, refused (the prediction log holds no such request), unavailable "
            "(the log writer did not catch up in time).",
            ["outcome"], registry=r,
        )  # fmt: skip
        for outcome in ("accepted", "refused", "unavailable"):
            self.feedback.labels(outcome)  # exported at 0 from the start
        self.feedback_log_waits = Counter(
            "loopml_serving_feedback_log_waits",
            "Feedback requests that waited for the prediction-log writer (they named a request answered here).",
            registry=r,
        )
        self._children: dict[tuple[str, int, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, model: str, version: int, role: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (label children are cached: two dict lookups)."""
        key = (model, version, role, status)
        children = self._children.get(key)
        if children is None:
            text = str(version)
            children = (self.requests.labels(model, text, role, str(status)), self.latency.labels(model, text))
            self._children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)
        if status >= 400:
            self.errors.labels(model, str(version), "client" if status < 500 else "server").inc()

    def watch(self, loaded: Callable[[], int], nbytes: Callable[[], int]) -> None:
        """Gauges of the model cache, read at scrape time from the live object."""
        self.loaded_models.set_function(loaded)
        self.loaded_bytes.set_function(nbytes)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
