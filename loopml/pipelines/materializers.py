"""Materialisers: how a step's output becomes files in the artifact store, and back.

Built in, tried in this order after any registered with
:func:`register_materializer` (the latest registration first):

============  =========================================================  ======================
name          values                                                     files
============  =========================================================  ======================
``json``      None, bool, int, float, str, and lists / str-keyed dicts   ``value.json``
``bytes``     bytes                                                      ``value.bin``
``pandas``    pandas DataFrame and Series (index and names kept)         ``data.parquet``
``numpy``     numpy arrays of non-object dtype                           ``array.npy``
``model``     scikit-learn estimators, ONNX models, PythonModel          a packaged model
============  =========================================================  ======================

None of them uses pickle, so loading a cached output never runs code. Each
built-in round-trips exactly (a tuple is *not* a JSON value, since it would
come back as a list); anything else needs a registered materialiser and is
refused with :class:`~loopml.errors.NoMaterializerError` rather than pickled.

An output's *content digest* is the sha256 of its files' paths and blob
digests, so equal values written the same way hash alike across runs; cache
keys and lineage use it.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from loopml.entities.artifacts import ArtifactEntry
from loopml.errors import InvalidValueError, NoMaterializerError, PipelineError

if TYPE_CHECKING:
    from loopml.tracking.client import TrackingClient

_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StoredOutput:
    """One materialised value: its run, artifact folder, materialiser, content digest and files.

    ``files`` holds ``(path relative to the folder, blob sha256, size)``.
    """

    run_id: str
    path: str
    materializer: str
    digest: str
    files: tuple[tuple[str, str, int], ...]

    @property
    def uri(self) -> str:
        """``runs:/<run_id>/<path>``; for a model output, what ``loopml.register_model`` takes."""
        return f"runs:/{self.run_id}/{self.path}"

    def entries(self) -> list[ArtifactEntry]:
        return [ArtifactEntry(f"{self.path}/{rel}", digest, size) for rel, digest, size in self.files]

    def moved(self, run_id: str) -> StoredOutput:
        """The same files, recorded under another run (a cache hit re-uses the blobs)."""
        return StoredOutput(run_id, self.path, self.materializer, self.digest, self.files)


class OutputSink:
    """Where a materialiser writes one value: files under ``path`` in the run ``run_id``.

    ``write`` only collects bytes; the executor stores everything a step
    produced in one call. A materialiser that logs through the tracking API
    itself (the model one) calls :meth:`adopt` afterwards.
    """

    def __init__(self, client: TrackingClient, run_id: str, path: str) -> None:
        self.client = client
        self.run_id = run_id
        self.path = path
        self.pending: dict[str, bytes] = {}
        self.adopted: list[ArtifactEntry] = []

    def write(self, relpath: str, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray):
            raise InvalidValueError(f"A materialiser wrote {type(data).__name__} to {relpath!r}; write bytes.")
        self.pending[relpath] = bytes(data)

    def adopt(self) -> None:
        """Take the run's artifacts already logged under ``path`` as this value's files."""
        self.adopted = self.client.list_artifacts(self.run_id, self.path)


class OutputSource:
    """Where a materialiser reads one value back from."""

    def __init__(self, client: TrackingClient, stored: StoredOutput) -> None:
        self.client = client
        self.stored = stored
        self.run_id = stored.run_id
        self.path = stored.path
        self._files = {rel: digest for rel, digest, _ in stored.files}

    def read(self, relpath: str) -> bytes:
        """The verified bytes of one file of the value."""
        digest = self._files.get(relpath)
        if digest is None:
            raise PipelineError(
                f"Output {self.path!r} of run {self.run_id} has no file {relpath!r} "
                f"(it has {', '.join(sorted(self._files)) or 'none'})."
            )
        return self.client.store.artifacts.get_bytes(digest)


class Materializer(ABC):
    """Stores one kind of value as files and loads it back; stateless.

    Example:
        >>> class PointMaterializer(Materializer):
        ...     name = "point"
        ...     def handles(self, value): return isinstance(value, Point)
        ...     def save(self, value, sink): sink.write("point.json", json.dumps([value.x, value.y]).encode())
        ...     def load(self, source): return Point(*json.loads(source.read("point.json")))
        >>> register_materializer(PointMaterializer())      # doctest: +SKIP
    """

    name: ClassVar[str]

    @abstractmethod
    def handles(self, value: Any) -> bool:
        """Whether this materialiser stores ``value`` (and loads it back equal)."""

    @abstractmethod
    def save(self, value: Any, sink: OutputSink) -> None:
        """Write ``value`` through ``sink.write(relpath, bytes)``."""

    @abstractmethod
    def load(self, source: OutputSource) -> Any:
        """Rebuild the value from ``source.read(relpath)``."""


# -- built-ins ----------------------------------------------------------------------------------


def is_json_value(value: Any, depth: int = 0) -> bool:
    """None, bool, int, float, str, or lists and str-keyed dicts of them (exact types, so they round-trip)."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return True
    if depth > 100:
        return False
    if kind is list:
        return all(is_json_value(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and is_json_value(v, depth + 1) for k, v in value.items())
    return False


class JsonMaterializer(Materializer):
    name = "json"

    def handles(self, value: Any) -> bool:
        return is_json_value(value)

    def save(self, value: Any, sink: OutputSink) -> None:
        sink.write("value.json", json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8"))

    def load(self, source: OutputSource) -> Any:
        return json.loads(source.read("value.json"))


class BytesMaterializer(Materializer):
    name = "bytes"

    def handles(self, value: Any) -> bool:
        return type(value) is bytes

    def save(self, value: Any, sink: OutputSink) -> None:
        sink.write("value.bin", value)

    def load(self, source: OutputSource) -> Any:
        return source.read("value.bin")


class PandasMaterializer(Materializer):
    """DataFrames and Series as parquet, with their index; a Series keeps its name."""

    name = "pandas"

    def handles(self, value: Any) -> bool:
        pd = sys.modules.get("pandas")  # a DataFrame cannot exist before pandas is imported
        return pd is not None and isinstance(value, pd.DataFrame | pd.Series)

    def save(self, value: Any, sink: OutputSink) -> None:
        import pandas as pd

        frame = value
        if isinstance(value, pd.Series):
            if value.name is not None and not is_json_value(value.name):
                raise NoMaterializerError(f"A Series named {value.name!r} cannot be stored: its name is not JSON.")
            frame = value.to_frame(name="values")
            sink.write("series.json", json.dumps({"name": value.name}).encode("utf-8"))
        if not all(isinstance(c, str) for c in frame.columns):
            # parquet wants string column names; pd.DataFrame(array) has 0..n-1: keep the originals aside
            names = list(frame.columns)
            if not is_json_value(names) or len({str(c) for c in names}) != len(names):
                raise NoMaterializerError(
                    f"This DataFrame's column names {names[:5]!r} cannot be stored: use strings or integers."
                )
            sink.write("columns.json", json.dumps(names).encode("utf-8"))
            frame = frame.set_axis(pd.Index([str(c) for c in names], name=frame.columns.name), axis=1)
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer)
        except Exception as exc:  # pyarrow refuses mixed object columns, non-string column names, ...
            raise NoMaterializerError(
                f"This DataFrame cannot be written as parquet ({type(exc).__name__}: {exc}). Give its columns string "
                "names and one type each, or register a materialiser for it."
            ) from exc
        sink.write("data.parquet", buffer.getvalue())

    def load(self, source: OutputSource) -> Any:
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(source.read("data.parquet")))
        stored = {rel for rel, _, _ in source.stored.files}
        if "columns.json" in stored:
            frame.columns = pd.Index(json.loads(source.read("columns.json")), name=frame.columns.name)
        if "series.json" in stored:
            series = frame["values"]
            series.name = json.loads(source.read("series.json"))["name"]
            return series
        return frame


class NumpyMaterializer(Materializer):
    name = "numpy"

    def handles(self, value: Any) -> bool:
        np = sys.modules.get("numpy")
        return np is not None and type(value) is np.ndarray and not value.dtype.hasobject

    def save(self, value: Any, sink: OutputSink) -> None:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        sink.write("array.npy", buffer.getvalue())

    def load(self, source: OutputSource) -> Any:
        import numpy as np

        return np.load(io.BytesIO(source.read("array.npy")), allow_pickle=False)


class ModelMaterializer(Materializer):
    """Models as loopml model packages (skops for scikit-learn), loaded back as the raw model."""

    name = "model"

    def handles(self, value: Any) -> bool:
        if isinstance(value, bytes | bytearray | memoryview | str):
            return False
        from loopml.errors import UnsupportedModelError
        from loopml.models.flavors import flavor_for

        try:
            flavor_for(value)
        except UnsupportedModelError:
            return False
        return True

    def save(self, value: Any, sink: OutputSink) -> None:
        from loopml.models.package import log_model

        log_model(sink.client, sink.run_id, value, sink.path, signature=None)
        sink.adopt()

    def load(self, source: OutputSource) -> Any:
        from loopml.models.package import load_model_from_run

        return load_model_from_run(source.client, source.run_id, source.path).raw


_BUILTINS: tuple[Materializer, ...] = (
    JsonMaterializer(),
    BytesMaterializer(),
    PandasMaterializer(),
    NumpyMaterializer(),
    ModelMaterializer(),
)
_registered: list[Materializer] = []


def register_materializer(materializer: Materializer) -> Materializer:
    """Use ``materializer`` for the values it handles, before the built-ins and earlier registrations.

    Register at import time of the module that defines your steps, so process-pool
    and Ray workers (which import that module) know it too. Returns it, so it can
    decorate-instantiate: ``register_materializer(PointMaterializer())``.
    """
    if not isinstance(materializer, Materializer):
        raise InvalidValueError(
            f"register_materializer needs a Materializer instance, got {type(materializer).__name__}."
        )
    name = getattr(materializer, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"{type(materializer).__name__} needs a class attribute name = '...'.")
    with _lock:
        _registered[:] = [m for m in _registered if m.name != name]
        _registered.insert(0, materializer)
    return materializer


def unregister_materializer(name: str) -> None:
    """Forget a registered materialiser (built-ins stay)."""
    with _lock:
        _registered[:] = [m for m in _registered if m.name != name]


def get_materializer(name: str) -> Materializer:
    """The materialiser named ``name``; PipelineError when this process has none by that name."""
    for materializer in (*_registered, *_BUILTINS):
        if materializer.name == name:
            return materializer
    raise PipelineError(
        f"No materialiser named {name!r} is registered in this process; import the module that registers it "
        "(usually the one defining the pipeline's steps) before loading this output."
    )


def find_materializer(value: Any, *, where: str = "value") -> Materializer:
    """The first materialiser that handles ``value``; NoMaterializerError naming the type and the fixes."""
    for materializer in (*_registered, *_BUILTINS):
        if materializer.handles(value):
            return materializer
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    hint = ""
    if isinstance(value, tuple):
        hint = " A tuple is not stored as JSON (it would come back as a list): return a list, or declare outputs=N."
    raise NoMaterializerError(
        f"The {where} is a {kind}, which loopml cannot store without pickle.{hint} Built-in: JSON values "
        "(None, bool, int, float, str, lists and str-keyed dicts of them), bytes, pandas DataFrames and Series, "
        "numpy arrays, and models (scikit-learn, ONNX, loopml PythonModel). For anything else register a "
        "materialiser: loopml.pipelines.register_materializer(MyMaterializer())."
    )


def tree_digest(files: Mapping[str, str]) -> str:
    """The content digest of a value from its files' relative paths and blob digests."""
    hasher = hashlib.sha256(b"loopml.output.v1\x00")
    for relpath in sorted(files):
        hasher.update(f"{relpath}\x00{files[relpath]}\n".encode())
    return hasher.hexdigest()
