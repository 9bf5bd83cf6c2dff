"""The public surface: every name in loopml.__all__ resolves, the list is sorted, import is cheap,
renamed names still work with a warning, and every change to the API is in CHANGELOG.md."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import loopml
from tests.api_surface import surface

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_every_name_resolves():
    assert loopml.__all__ == sorted(loopml.__all__)
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None
    assert set(loopml.__all__) == {*loopml._EXPORTS, "__version__"}


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = loopml.no_such_thing


def test_import_loopml_does_not_import_heavy_libraries():
    code = "import sys, loopml; print(','.join(m for m in ('sqlalchemy', 'pandas', 'sklearn', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def _key(line: str) -> str:
    """``loopml.ActiveRun.end`` from its surface line, without the leading ``loopml.``."""
    qualified = line.split()[1].split("(", 1)[0]
    return qualified.removeprefix("loopml.")


def _recorded(key: str, notes: str) -> bool:
    """``serving.ServingClient.search_predictions`` is recorded by that, or by ``ServingClient.search_predictions``."""
    parts = key.split(".")
    lowest = len(parts) - (2 if len(parts) > 1 and parts[-2][:1].isupper() else 1)
    suffixes = [".".join(parts[i:]) for i in range(lowest + 1)]
    return any(re.search(rf"`(loopml\.)?{re.escape(suffix)}[`(]", notes) for suffix in suffixes)


def _unreleased() -> str:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    match = re.search(r"^## Unreleased\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "CHANGELOG.md needs a '## Unreleased' section above the released ones"
    return match.group(1)


def test_every_change_to_the_public_api_is_recorded_in_the_changelog():
    """A name or signature that differs from the last release (tests/public_api.txt) is named in CHANGELOG.md.

    Name it in backticks, with or without ``loopml.``: `run_monitor`, `ServingClient.search_predictions`.
    A class added or removed whole covers its methods. At a release, regenerate the file:
    ``python -m tests.api_surface > tests/public_api.txt``.
    """
    released = (ROOT / "tests" / "public_api.txt").read_text(encoding="utf-8").splitlines()
    current = surface()
    changed = {_key(line) for line in set(released) ^ set(current)}
    classes_then = {_key(line) for line in released if line.startswith("class ")}
    classes_now = {_key(line) for line in current if line.startswith("class ")}
    whole_classes = classes_then ^ classes_now  # added or removed whole: naming the class covers its methods
    notes = _unreleased()
    missing = sorted(key for key in changed if not _recorded(key, notes) and key.rsplit(".", 1)[0] not in whole_classes)
    assert not missing, f"Record these API changes under '## Unreleased' in CHANGELOG.md: {', '.join(missing)}"


RENAMED = {
    "loopml": {
        "check": "run_monitor", "CheckResult": "MonitorRunResult", "expect": "validate_data",
        "check_metrics": "validate_model", "get_client": "get_tracking_client", "predictions": "search_predictions",
        "lineage": "get_lineage", "audit_log": "search_audit_events", "list_model_versions": "search_model_versions",
        "monitor_results": "search_monitor_results", "monitor_report": "write_monitor_report",
    },
    "loopml.validation": {"CheckResult": "DataCheckResult", "expect": "validate_data", "check_metrics": "validate_model"},
    "loopml.serving": {"predictions": "search_predictions"},
}  # fmt: skip


@pytest.mark.parametrize(("namespace", "old", "new"), [(n, o, w) for n, names in RENAMED.items() for o, w in names.items()])
def test_a_renamed_name_still_works_and_says_what_replaces_it(namespace, old, new):
    import importlib

    module = importlib.import_module(namespace)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(namespace)}\.{old} is deprecated.*0\.3.*{new}"):
        value = getattr(module, old)
    assert value is getattr(module, new)
    assert old not in module.__all__ and new in module.__all__


def test_renamed_methods_warn_and_delegate(tmp_path):
    from loopml.errors import ModelNotFoundError
    from loopml.registry.client import RegistryClient
    from loopml.serving.client import ServingClient
    from loopml.store import open_store
    from loopml.tracking.client import TrackingClient

    tracking = TrackingClient(open_store(f"sqlite:///{tmp_path / 'l.db'}", artifacts_url=str(tmp_path / "a")))
    try:
        with pytest.raises(ModelNotFoundError, match="churn"), pytest.warns(DeprecationWarning, match="search_model"):
            RegistryClient(tracking).list_model_versions("churn")
        with pytest.warns(DeprecationWarning, match="search_predictions"):
            assert ServingClient(tracking).predictions("churn").empty
    finally:
        tracking.close()


def test_download_artifacts_takes_the_clients_arguments_and_the_old_uri_form_warns(loopml_env, tmp_path):
    with loopml.start_run() as run:
        run.log_text("hello", "notes/a.txt")
    assert (loopml.download_artifacts(run.id, "notes", tmp_path / "new") / "a.txt").read_text() == "hello"
    assert (loopml.download_artifacts(f"runs:/{run.id}/notes", dest=tmp_path / "uri") / "a.txt").read_text() == "hello"
    with pytest.warns(DeprecationWarning, match="download_artifacts\\(uri, dest\\)"):
        old = loopml.download_artifacts(f"runs:/{run.id}/notes", tmp_path / "old")
    assert (old / "a.txt").read_text() == "hello"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loopml.get_tracking_client().download_artifacts(run.id, "notes", tmp_path / "client")
