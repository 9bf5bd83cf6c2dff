"""``loopml batch-predict``: score a parquet dataset with a registered model, locally or on Ray."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from loopml.cli import output

HELP = (
    "Score every parquet file under SOURCE with MODEL_URI (models:/NAME@ALIAS or models:/NAME/VERSION) and write "
    "them, with a 'prediction' column, at the same relative paths under DESTINATION (local folders or fsspec URLs "
    "such as s3://bucket/prefix). The alias is resolved once; the lineage (version -> input sha256 -> output "
    "sha256) is a run in the 'batch-predictions' experiment. --runner ray scores on Ray Data, the model loaded "
    "once per worker."
)


def batch_predict(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION.")],
    source: Annotated[str, typer.Argument(help="A parquet file or a folder of them (partitions kept).")],
    destination: Annotated[str, typer.Argument(help="An empty or new folder for the scored files.")],
    runner: Annotated[str, typer.Option(help="local (this process) or ray.")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Ray workers (CPUs) with --runner ray.")] = 2,
    log: Annotated[bool, typer.Option("--log", help="Also write the predictions to the prediction log.")] = False,
) -> None:
    import loopml

    if runner not in ("local", "ray"):
        raise typer.BadParameter(f"{runner!r} is not a runner; use local or ray.", param_hint="--runner")
    result = loopml.batch_predict(model_uri, source, destination, runner=runner, workers=workers, log_predictions=log)
    out = output.console()
    out.print(Text.assemble(
        "Scored ", (f"{result.rows:,}", "bold"), f" rows in {len(result.files)} file(s) with ",
        (f"models:/{result.model}/{result.version}", "magenta"), f" -> {result.destination}",
    ))  # fmt: skip
    out.print(Text(f"input sha256 {result.input_sha256[:16]}…  output sha256 {result.output_sha256[:16]}…  "
                   f"lineage run {result.run_id}" + (f"  logged {result.logged} records" if log else "")))  # fmt: skip
