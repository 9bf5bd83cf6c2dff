"""The public surface: every name in loopml.__all__ resolves, the list is sorted, import is cheap."""

from __future__ import annotations

import subprocess
import sys

import loopml


def test_all_is_sorted_and_every_name_resolves():
    assert loopml.__all__ == sorted(loopml.__all__)
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None
    assert set(loopml.__all__) == {*loopml._EXPORTS, "__version__"}


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = loopml.no_such_thing


def test_import_loopml_does_not_import_heavy_libraries():
    code = "import sys, loopml; print(','.join(m for m in ('sqlalchemy', 'pandas', 'sklearn', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
