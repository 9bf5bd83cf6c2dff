"""The breast-cancer shift the demo uses: drift flags exactly the scaled columns with the default rules."""

from __future__ import annotations

import pytest

from loopml.errors import ColumnNotFoundError, InvalidValueError
from loopml.monitoring.drift import drift
from loopml.monitoring.shift import SHIFTED_COLUMNS, breast_cancer, shifted_breast_cancer


def test_drift_flags_exactly_the_scaled_columns():
    reference = breast_cancer()
    current = shifted_breast_cancer(reference)
    assert current.shape == reference.shape and list(current.columns) == list(reference.columns)
    assert drift(reference, current).drifted_columns == list(SHIFTED_COLUMNS)
    unscaled = (current["mean radius"] / 1.3).round(6)
    assert unscaled.isin(reference["mean radius"].round(6)).all()  # real rows, scaled
    assert current["mean texture"].isin(reference["mean texture"]).all()  # the other columns untouched


def test_other_columns_scales_and_seeds():
    reference = breast_cancer()
    picked = shifted_breast_cancer(reference, columns=["mean texture"], factor=0.7, seed=3)
    assert drift(reference, picked).drifted_columns == ["mean texture"]
    assert drift(reference, shifted_breast_cancer(reference, factor=1.0)).drifted_columns == []
    assert shifted_breast_cancer(reference, seed=1).equals(shifted_breast_cancer(reference, seed=1))
    assert not shifted_breast_cancer(reference, seed=1).equals(shifted_breast_cancer(reference, seed=2))


def test_a_held_out_split_with_its_target_carried_along():
    data = breast_cancer(target=True)
    current = shifted_breast_cancer(data.tail(200), n=300, seed=0)
    assert len(current) == 300 and "target" in current.columns
    assert set(current["target"]) <= {0, 1}


def test_bad_arguments():
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'mean radius'"):
        shifted_breast_cancer(columns=["mean radus"])
    with pytest.raises(InvalidValueError, match="factor must be a positive number"):
        shifted_breast_cancer(factor=0)
    with pytest.raises(InvalidValueError, match="n must be a whole number"):
        shifted_breast_cancer(n=0)
