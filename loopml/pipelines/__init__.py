"""Pipelines: ``@step`` and ``@pipeline`` in plain Python, cached, tracked, run locally or on Ray.

The DAG is the data passed between steps; each pipeline run is a tracked run
with one child run per step, step outputs are materialised in the artifact
store, and a step whose code, inputs and params are unchanged reuses its
outputs. See ``docs/pipelines.md``. Names are imported on first use, so
``import loopml.pipelines`` loads neither pandas nor Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Materializer": "loopml.pipelines.materializers",
    "OutputSink": "loopml.pipelines.materializers",
    "OutputSource": "loopml.pipelines.materializers",
    "Pipeline": "loopml.pipelines.dag",
    "PipelineRun": "loopml.pipelines.run",
    "Step": "loopml.pipelines.steps",
    "StepOutput": "loopml.pipelines.dag",
    "StepRecord": "loopml.pipelines.run",
    "StoredOutput": "loopml.pipelines.materializers",
    "pipeline": "loopml.pipelines.dag",
    "register_materializer": "loopml.pipelines.materializers",
    "run_pipeline": "loopml.pipelines.run",
    "step": "loopml.pipelines.steps",
    "unregister_materializer": "loopml.pipelines.materializers",
}

__all__ = [
    "Materializer",
    "OutputSink",
    "OutputSource",
    "Pipeline",
    "PipelineRun",
    "Step",
    "StepOutput",
    "StepRecord",
    "StoredOutput",
    "pipeline",
    "register_materializer",
    "run_pipeline",
    "step",
    "unregister_materializer",
]

if TYPE_CHECKING:
    from loopml.pipelines.dag import Pipeline, StepOutput, pipeline
    from loopml.pipelines.materializers import (
        Materializer,
        OutputSink,
        OutputSource,
        StoredOutput,
        register_materializer,
        unregister_materializer,
    )
    from loopml.pipelines.run import PipelineRun, StepRecord, run_pipeline
    from loopml.pipelines.steps import Step, step


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
