"""The predictor: the numpy fast path answers exactly what the checked path answers, and steps aside when it must."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInputError, SchemaError
from loopml.models.package import load_model_from_run
from loopml.serving.payloads import Payload, parse_v1, parse_v2
from loopml.serving.predictor import Predictor
from loopml.tracking.client import TrackingClient
from loopml.tracking.runs import ActiveRun


@pytest.fixture
def tracking(sql_store):
    return TrackingClient(sql_store)


def predictor(tracking, model, example, trusted=None, **log) -> Predictor:
    run = tracking.create_run("predictor", capture=False)
    ActiveRun(tracking, run).log_model(model, "model", input_example=example, **log)
    return Predictor(load_model_from_run(tracking, run.run_id, trusted=trusted), "m", 1)


def body(rows: pd.DataFrame, **extra) -> bytes:
    import json

    return json.dumps({"records": rows.to_dict(orient="records"), **extra}).encode()


def test_a_model_fitted_on_a_dataframe_takes_the_fast_path_in_its_fitted_column_order(tracking, iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    reordered = X[list(reversed(X.columns))]  # the signature lists the columns in another order
    found = predictor(tracking, model, reordered.head())
    assert found.fast is not None and found.fast.order == list(X.columns) and found.batcher is not None
    rows = X.sample(40, random_state=1)
    assert found.predict(parse_v1(body(rows))).tolist() == model.predict(rows).tolist()
    assert found.predict(parse_v1(body(rows, key="true"))).tolist() == model.predict(rows).tolist()  # checked path
    assert not hasattr(found.fast.model, "feature_names_in_")  # stripped from the private copy only


def test_a_model_fitted_on_a_plain_array_uses_the_signature_order(tracking, iris):
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
    found = predictor(tracking, model, X.head())
    assert found.fast is not None and found.fast.order == list(X.columns)
    rows = X.sample(30, random_state=2)
    assert found.predict(parse_v1(body(rows))).tolist() == model.predict(rows.to_numpy()).tolist()


def test_integer_columns_keep_whole_numbers_and_report_fractions(tracking):
    from sklearn.tree import DecisionTreeRegressor

    X = pd.DataFrame({"age": [20, 30, 40, 50, 60, 70], "rooms": [1, 2, 3, 4, 5, 6]})
    model = DecisionTreeRegressor(random_state=0).fit(X, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    found = predictor(tracking, model, X)
    assert found.fast is not None and found.fast.dtype is np.int64
    assert (
        found.predict(parse_v1(b'{"records": [{"age": 35, "rooms": 2.0}]}')).tolist()
        == model.predict(pd.DataFrame({"age": [35], "rooms": [2]})).tolist()
    )
    with pytest.raises(SchemaError) as error:
        found.predict(parse_v1(b'{"records": [{"age": 35.5, "rooms": "2"}]}'))
    assert set(error.value.problems) == {"age", "rooms"}
    # a whole number int64 cannot hold is the checked path's to judge, never wrapped round by the fast path
    assert found.fast.matrix(parse_v1(b'{"records": [{"age": 1e20, "rooms": 2}]}')) is None
    with pytest.raises(SchemaError, match="outside the 64-bit integer range"):
        found.predict(parse_v1(b'{"records": [{"age": 1e20, "rooms": 2}]}'))
    # an integer past 64 bits (the NaN makes the stdlib parse it, as a Python int): the caller's 422, not a 500
    with pytest.raises(SchemaError, match="outside the 64-bit integer range") as error:
        found.predict(parse_v1(b'{"records": [{"age": 100000000000000000000000, "rooms": NaN}]}'))
    assert set(error.value.problems) == {"age", "rooms"}  # rooms: a missing value where none is allowed


def test_recorded_ranges_send_values_outside_them_to_the_checked_path(tracking, iris):
    from sklearn.linear_model import LogisticRegression

    from loopml.models.signature import infer_signature

    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    found = predictor(tracking, model, X.head(), signature=infer_signature(X, ranges=True))
    assert found.fast is not None
    row = X.iloc[0].to_dict()
    with pytest.raises(SchemaError, match="outside"):
        found.predict(parse_v1(body(pd.DataFrame([{**row, "sepal length (cm)": 99.0}]))))


def test_models_the_fast_path_cannot_serve_still_answer_through_the_checked_path(tracking):
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = pd.DataFrame({"city": ["a", "b", "a", "c", "b", "a"], "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    y = [0, 1, 0, 1, 1, 0]
    categorical = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), (StandardScaler(), ["size"])), LogisticRegression()
    ).fit(X, y)
    found = predictor(tracking, categorical, X)
    assert found.fast is None
    assert found.predict(parse_v1(body(X))).tolist() == categorical.predict(X).tolist()
    numeric = make_pipeline(make_column_transformer((StandardScaler(), ["size", "other"])), LogisticRegression()).fit(
        X.assign(other=X["size"] * 2).drop(columns="city"), y
    )
    frame = X.assign(other=X["size"] * 2).drop(columns="city")
    found = predictor(tracking, numeric, frame)
    assert found.fast is None  # string column selectors need a DataFrame: the load-time check saw it
    assert hasattr(numeric, "feature_names_in_") and found.loaded.raw.feature_names_in_ is not None  # restored
    assert found.predict(parse_v1(body(frame))).tolist() == numeric.predict(frame).tolist()


def test_regressors_batch_and_v2_tensors_bind_to_the_signature(tracking):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    found = predictor(tracking, model, X.head())
    assert found.batcher is not None
    rows = X.head(4)

    async def together() -> list[np.ndarray]:
        arrays = [found.fast.matrix(parse_v1(body(rows.iloc[[i]]))) for i in range(4)]
        return await asyncio.gather(*(found.batcher.submit(array) for array in arrays))

    batched = np.concatenate(asyncio.run(together()))
    assert found.batcher.batched_requests == 4 and found.batcher.calls == 1
    assert np.allclose(batched, model.predict(rows), rtol=1e-9, atol=0)
    import json

    tensors = [{"name": c, "shape": [4], "datatype": "FP64", "data": v} for c, v in rows.to_dict(orient="list").items()]
    assert np.allclose(found.predict(parse_v2(json.dumps({"inputs": tensors}).encode())), model.predict(rows))
    matrix = [{"name": "x", "shape": [4, 10], "datatype": "FP64", "data": rows.to_numpy().tolist()}]
    assert np.allclose(found.predict(parse_v2(json.dumps({"inputs": matrix}).encode())), model.predict(rows))


def test_a_batch_with_a_bad_request_answers_the_others(tracking, iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    found = predictor(tracking, LogisticRegression(max_iter=500).fit(X, y), X.head())
    good = found.fast.matrix(parse_v1(body(X.head(2))))
    bad = good.copy()
    bad[0, 0] = np.inf  # the model refuses infinity

    async def together() -> list[object]:
        return await asyncio.gather(*(found.batcher.submit(a) for a in (good, bad, good)), return_exceptions=True)

    first, second, third = asyncio.run(together())
    assert isinstance(second, InvalidInputError) and "could not predict" in str(second)
    assert first.tolist() == third.tolist() == found.loaded.raw.predict(good).tolist()
    assert Payload(records=[{}]).n_rows == 1


def test_missing_values_take_the_checked_path_and_keep_their_meaning(tracking):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0] * 10, "b": [0.5, 0.1, 0.3, np.nan] * 10})
    model = make_pipeline(SimpleImputer(), LinearRegression()).fit(X, np.arange(40.0))
    found = predictor(tracking, model, X.head(4), trusted=["numpy.dtype"])  # the example holds NaN: nullable columns
    assert found.fast is not None  # verified on the complete rows of the example
    for body in (b'{"records": [{"a": NaN, "b": 0.2}]}', b'{"records": [{"a": null, "b": 0.2}]}'):
        got = found.predict(parse_v1(body))
        assert np.allclose(got, model.predict(pd.DataFrame({"a": [np.nan], "b": [0.2]})))


def test_the_cost_is_the_least_of_recent_calls_so_waits_do_not_send_a_cheap_model_to_threads(tracking, iris, monkeypatch):
    """A call that waited (for the GIL, for a core) is not a slow model; a model slow on every call is."""
    from sklearn.linear_model import LogisticRegression

    from loopml.serving import predictor as module
    from loopml.serving.service import INLINE_MAX_S

    now = [0.0]
    monkeypatch.setattr(module, "_clock", lambda: now[0])  # time passes only where this test says it does
    X, y = iris
    found = predictor(tracking, LogisticRegression(max_iter=500).fit(X, y), X.head())
    model = found.fast.model
    real_predict = model.predict

    def predict_taking(seconds):
        def timed(array):
            now[0] += seconds
            return real_predict(array)

        return timed

    rows = np.asarray(X.head(3), dtype=float)
    model.predict = predict_taking(0.0001)
    for _ in range(module.COST_WINDOW):  # a window of quick calls (the load-time call took no time on this clock)
        found.predict_array(rows)
    assert found.cost_s == pytest.approx(0.0001)
    model.predict = predict_taking(0.050)  # calls that waited 50 ms, all but one of the window
    for _ in range(module.COST_WINDOW - 1):
        found.predict_array(rows)
    assert found.cost_s == pytest.approx(0.0001) and found.cost_s < INLINE_MAX_S  # still predicted inline
    found.predict(parse_v1(body(X.head(3))))  # the window is now all slow calls: a slow model, sent to threads
    assert found.cost_s == pytest.approx(0.050) and found.cost_s >= INLINE_MAX_S
    model.predict = predict_taking(0.0002)
    found.predict_array(rows)  # one quick call brings it back inline
    assert found.cost_s == pytest.approx(0.0002)
