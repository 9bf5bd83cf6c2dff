"""Steps and tracing: plain calls, handles, the DAG built from data flow, and definition errors (no store)."""

from __future__ import annotations

import pickle

import pytest

from loopml.errors import InvalidValueError, NoMaterializerError, PipelineDefinitionError
from loopml.pipelines import Pipeline, Step, StepOutput, pipeline, step
from loopml.pipelines.dag import Constant
from loopml.pipelines.steps import code_hash, parse_memory
from tests.pipelines import library


@step
def add(a: int, b: int = 1) -> int:
    return a + b


@step(outputs=("low", "high"))
def split(values: list) -> tuple:
    return sorted(values)[:1], sorted(values)[1:]


def test_a_step_called_outside_a_pipeline_is_a_plain_function_call():
    assert add(2, 3) == 5
    assert isinstance(add, Step) and add.name == "add"
    assert add.__doc__ is None and add.__name__ == "add"


def test_tracing_records_one_node_per_call_with_edges_from_the_data_passed():
    @pipeline
    def flow(n: int = 3):
        low, high = split([n, 1, 2])
        first = add(n)
        second = add(first, b=n)
        return {"sum": add(second, 4), "parts": [low, high]}

    graph = flow.trace({"n": 5})
    assert list(graph.nodes) == ["split", "add", "add_2", "add_3"]
    assert graph.nodes["add_2"].upstream == ("add",)
    assert graph.nodes["add"].upstream == ()
    assert graph.nodes["add_3"].arguments == {"a": StepOutput("add_2", "output"), "b": 4}
    assert graph.nodes["add_2"].params() == {"b": 5}
    assert graph.downstream()["add"] == ["add_2"]
    assert graph.params == {"n": 5}
    assert graph.output == {
        "sum": StepOutput("add_3", "output"),
        "parts": [StepOutput("split", "low"), StepOutput("split", "high")],
    }
    described = graph.describe()
    assert [node["id"] for node in described["nodes"]] == ["split", "add", "add_2", "add_3"]
    assert described["nodes"][2]["inputs"] == [["add", "output"]]


def test_handles_inside_lists_make_a_fan_in():
    graph = library.fan.trace({"n": 3})
    assert list(graph.nodes) == ["square", "square_2", "square_3", "total"]
    assert graph.nodes["total"].upstream == ("square", "square_2", "square_3")
    assert graph.consumers()[("total", "output")] == 1  # the pipeline's output reads it


def test_using_a_handle_as_a_value_inside_the_pipeline_function_is_refused():
    @pipeline
    def branches():
        if add(1):
            return add(2)
        return add(3)

    with pytest.raises(PipelineDefinitionError, match=r"truth value.*pass the handle to another step"):
        branches.trace()

    @pipeline
    def unpacks():
        a, _b = add(1)
        return a

    with pytest.raises(PipelineDefinitionError, match="outputs=N"):
        unpacks.trace()


def test_bad_arguments_name_the_step_and_its_signature():
    @pipeline
    def flow():
        return add(1, 2, 3)

    with pytest.raises(
        PipelineDefinitionError,
        match=r"Step 'add' was called with arguments that do not fit add\(a: .*too many positional",
    ):
        flow.trace()
    with pytest.raises(PipelineDefinitionError, match="params given do not fit"):
        library.fan.trace({"nope": 1})


def test_a_pipeline_without_steps_or_with_a_foreign_handle_is_refused():
    @pipeline
    def empty():
        return 1

    with pytest.raises(PipelineDefinitionError, match="calls no step"):
        empty.trace()

    leaked = library.fan.trace().output

    @pipeline
    def reuses():
        return add(leaked)

    with pytest.raises(PipelineDefinitionError, match="handle from another pipeline"):
        reuses.trace()


def test_non_json_arguments_become_constants_and_unstorable_ones_are_refused_at_trace_time():
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2]})

    @pipeline
    def flow(data=None):
        return add(data)

    graph = flow.trace({"data": frame})
    assert graph.nodes["add"].arguments["a"] == Constant(0)
    assert graph.constants[0] is frame

    with pytest.raises(
        NoMaterializerError, match=r"argument 'a' of step 'add' is a builtins.object.*register_materializer"
    ):
        flow.trace({"data": object()})


def test_code_hash_ignores_decorators_comments_and_layout_but_not_the_body():
    def one(x):
        # a comment
        return x + 1

    def two(x):
        return x + 1  # another comment

    def three(x):
        return x + 2

    assert code_hash(one) == code_hash(two)
    assert code_hash(one) != code_hash(three)
    assert step(one).code_hash == step(retries=3)(two).code_hash
    hashed = code_hash(eval("lambda x: x * 2"))  # no source to read: falls back to the bytecode
    assert hashed == code_hash(eval("lambda x: x * 2")) != code_hash(eval("lambda x: x * 3"))


def test_step_options_are_checked():
    with pytest.raises(InvalidValueError, match="retries"):
        step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidValueError, match="timeout"):
        step(timeout=0)(lambda: 1)
    with pytest.raises(InvalidValueError, match="memory"):
        step(memory="lots")(lambda: 1)
    with pytest.raises(InvalidValueError, match="repeat"):
        step(outputs=["a", "a"])(lambda: 1)
    with pytest.raises(PipelineDefinitionError, match="Step name"):
        step(name="has space")(lambda: 1)
    assert parse_memory("4G") == 4 * 1024**3
    assert parse_memory("512MiB") == 512 * 1024**2
    assert parse_memory(1000) == 1000
    assert step(outputs=3)(lambda: 1).options.outputs == ("output_0", "output_1", "output_2")
    renamed = add.with_options(name="plus", retries=2)
    assert (renamed.name, renamed.options.retries, renamed(1)) == ("plus", 2, 2)


def test_steps_pickle_by_reference_so_workers_import_their_module():
    assert pickle.loads(pickle.dumps(library.square)) is library.square
    variant = library.square.with_options(name="square_again", retries=2)  # its function is library.square's
    copied = pickle.loads(pickle.dumps(variant))
    assert copied.fn is library.square.fn and copied.options == variant.options
    local = step(lambda x: x)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)  # a lambda needs cloudpickle (Ray) to travel


def test_pipeline_decorator_forms():
    assert isinstance(library.fan, Pipeline)
    assert library.fan.name == "fan" and library.fan.source == "tests.pipelines.library:fan"
    named = pipeline(name="other", experiment="exp", cache=False)(lambda: add(1))
    assert (named.name, named.experiment, named.cache) == ("other", "exp", False)
    with pytest.raises(PipelineDefinitionError):
        pipeline(add)


def test_a_handle_given_to_a_plain_function_names_the_step_not_the_handle_class():
    def normalise(frame):  # not a step: inside the pipeline function it receives a handle
        return frame / frame.max()

    @pipeline
    def flow():
        return add(normalise(add(1)))

    with pytest.raises(
        PipelineDefinitionError, match=r"output 'output' of step 'add' was asked for its attribute 'max'"
    ):
        flow.trace()

    @pipeline
    def arithmetic():
        return add(add(1) * 2)

    with pytest.raises(PipelineDefinitionError, match=r"step 'add' was used as a value \(arithmetic"):
        arithmetic.trace()
    handle = StepOutput("add", "output")
    assert pickle.loads(pickle.dumps(handle)) == handle and not hasattr(handle, "_private")


def test_a_pipeline_called_inside_another_is_refused_before_it_runs_and_fn_inlines_its_steps():
    @pipeline
    def inner():
        return add(1)

    @pipeline
    def outer():
        return add(inner())

    with pytest.raises(
        PipelineDefinitionError, match=r"Pipeline 'inner' was called inside another.*inner\.fn\(\.\.\.\)"
    ):
        outer.trace()

    @pipeline
    def inlined():
        return add(inner.fn())

    assert list(inlined.trace().nodes) == ["add", "add_2"]


def test_steps_made_by_one_factory_hash_what_they_close_over():
    def scaler(factor, helper):
        @step
        def scale(x: int) -> int:
            return helper(x) * factor

        return scale

    def plus_one(x):
        return x + 1

    def plus_two(x):
        return x + 2

    assert scaler(2, plus_one).code_hash == scaler(2, plus_one).code_hash
    assert scaler(2, plus_one).code_hash != scaler(3, plus_one).code_hash
    assert scaler(2, plus_one).code_hash != scaler(2, plus_two).code_hash
    assert scaler([1, 2], plus_one).code_hash != scaler((1, 3), plus_one).code_hash


def test_defaults_given_by_a_name_count_by_their_value():
    def bound(factor):
        @step
        def scale(x: int, factor: int = factor, *, offset: float = factor / 2) -> float:  # the value at def time
            return x * factor + offset

        return scale

    assert bound(2).code_hash == bound(2).code_hash != bound(3).code_hash
