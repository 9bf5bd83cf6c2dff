"""``loopml artifacts``: maintenance of the artifact store itself (encryption keys).

These commands work on the artifact store directly (``LOOPML_ARTIFACTS_URL``,
a folder or ``s3://``), not through a server: run them where the server runs,
with the same environment.
"""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output

app = typer.Typer(
    help=(
        "Maintain the artifact store: make an encryption key, rotate the key that wraps every "
        "artifact's data key (LOOPML_ENCRYPTION_KEY / LOOPML_ENCRYPTION_KEY_FILE)."
    ),
    no_args_is_help=True,
)


@app.command("new-key", help="Write a new random 256-bit key, base64, to FILE (readable by you only).")
def new_key(
    out: Annotated[str, typer.Option("--out", metavar="FILE", help="Where to write the key; must not exist.")],
) -> None:
    import os

    from loopml.errors import InvalidValueError
    from loopml.store.crypto.keys import MasterKey

    key = MasterKey.generate()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidValueError("--out names a file that exists already; a key is never overwritten.") from None
    except OSError as exc:
        raise InvalidValueError(f"--out: the key file cannot be created ({exc.strerror}).") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key.encoded() + "\n")
    output.console().print(
        f"Wrote a new key (id [bold]{key.key_id.hex()}[/]). Use it with LOOPML_ENCRYPTION_KEY_FILE={out}"
    )


@app.command(
    "rotate-key",
    help=(
        "Rewrap every encrypted artifact's data key under the key in --new-key-file (the data is not "
        "re-encrypted). The current key comes from LOOPML_ENCRYPTION_KEY(_FILE). Safe to run again if "
        "interrupted. Afterwards point LOOPML_ENCRYPTION_KEY_FILE at the new key (and, while other "
        "processes still hold the old one, LOOPML_ENCRYPTION_PREVIOUS_KEY_FILE at the old)."
    ),
)
def rotate_key(
    new_key_file: Annotated[str, typer.Option("--new-key-file", metavar="FILE", help="The new master key.")],
    artifacts_url: Annotated[
        str | None, typer.Option("--artifacts-url", metavar="URL", help="Artifact store (default: LOOPML_ARTIFACTS_URL).")
    ] = None,
) -> None:
    from loopml.config import get_settings
    from loopml.errors import InvalidValueError
    from loopml.store.crypto.keys import keyring_from_env, read_key_file
    from loopml.store.fs.artifacts import FsArtifactStore

    keyring = keyring_from_env()
    if keyring is None:
        raise InvalidValueError(
            "No current key: set LOOPML_ENCRYPTION_KEY or LOOPML_ENCRYPTION_KEY_FILE to the key in use now."
        )
    new = read_key_file(new_key_file, source="--new-key-file")
    url = artifacts_url or get_settings().artifacts_url
    store = FsArtifactStore(url, keyring=keyring)
    with output.console().status("Rewrapping data keys…"):
        report = store.rotate_key(new)
    output.console().print(
        f"Rewrapped [bold]{report.rewrapped}[/] artifact(s) under key {new.key_id.hex()}; "
        f"{report.already_current} were already under it; {report.unencrypted} are stored unencrypted."
    )
