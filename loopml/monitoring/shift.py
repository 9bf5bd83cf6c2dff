"""A real, known distribution shift of the breast-cancer data, for demos and tests of drift monitoring.

The Wisconsin breast-cancer data (569 tumours, 30 measurements of cell
nuclei; bundled with scikit-learn, no download) is a small real data set
whose columns are on very different scales. :func:`shifted_breast_cancer`
imitates a miscalibrated instrument: it draws rows from the data you give
(bootstrap, with replacement) and multiplies the named measurements by
``factor``. The other columns keep their real distribution, so drift tests
should flag the scaled columns and only those; the default (``"mean
radius"`` and ``"worst area"`` times 1.3, seed 0) does so with loopml's
default rules, which the tests check.

Example:
    >>> from loopml.monitoring.shift import breast_cancer, shifted_breast_cancer
    >>> reference = breast_cancer()
    >>> current = shifted_breast_cancer(reference)
    >>> loopml.drift(reference, current).drifted_columns            # doctest: +SKIP
    ['mean radius', 'worst area']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from loopml.errors import InvalidValueError
from loopml.monitoring.frames import as_frame, require_columns

SHIFTED_COLUMNS = ("mean radius", "worst area")


def breast_cancer(*, target: bool = False) -> pd.DataFrame:
    """The 30 breast-cancer measurements as a DataFrame (with the ``target`` column, 1 = benign, when asked)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = data.frame.copy() if target else data.data.copy()
    return frame


def shifted_breast_cancer(
    frame: pd.DataFrame | None = None,
    columns: Sequence[str] = SHIFTED_COLUMNS,
    factor: float = 1.3,
    *,
    n: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows drawn from ``frame`` (default: the whole data set) with the ``columns`` measurements times ``factor``.

    Args:
        frame: breast-cancer rows (any subset, such as a held-out split; extra columns are carried along).
        columns: the measurements to scale; everything else keeps its real distribution.
        factor: the multiplier (1.3: the instrument reads 30% high). 1.0 gives an unshifted resample.
        n: how many rows to draw (default: as many as ``frame`` has).
        seed: the seed of the draw, so a demo or a test sees the same data every time.

    Raises:
        ColumnNotFoundError: a named column is not in ``frame``.
        InvalidValueError: a factor that is not a positive number, or a bad ``n``.
    """
    frame = breast_cancer() if frame is None else as_frame(frame, "breast-cancer")
    if isinstance(columns, str):
        columns = [columns]
    require_columns(frame, columns, "breast-cancer")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not np.isfinite(factor) or factor <= 0:
        raise InvalidValueError(f"factor must be a positive number, got {factor!r}.")
    size = len(frame) if n is None else n
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidValueError(f"n must be a whole number of rows from 1, got {n!r}.")
    rows = np.random.default_rng(seed).integers(0, len(frame), size)
    shifted = frame.iloc[rows].reset_index(drop=True)
    for column in columns:
        shifted[column] = shifted[column].astype("float64") * float(factor)
    return shifted
