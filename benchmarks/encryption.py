"""Encryption at rest: artifact write and read throughput with encryption off vs on (issue 16).

Writes ``--blobs`` artifacts of ``--mib`` MiB each through ``FsArtifactStore.write_stream`` (sha256
addressing, temp file, fsync, rename) and reads them back through ``open_stream`` (sha256 verified),
first on a plain store, then on one with ``LOOPML_ENCRYPTION_KEY``'s envelope (AES-256-GCM in 1 MiB
segments). Rounds alternate off/on; the best round of each counts. Each rate is given twice: per
wall-clock second, and per CPU second of this process (``time.process_time``, every thread). On a
shared machine the wall-clock figures move with the neighbours' load and the disk's fsync; the CPU
figures are what encryption itself costs. Beside them the floor: the bare ``cryptography`` AES-GCM
over the same bytes in the same segments (no hashing, no I/O), the least that encryption can add.
Target: encryption costs <= 15% of either rate.

    .venv/bin/python benchmarks/encryption.py --quick     # 4 x 16 MiB, 2 rounds (a few seconds)
    .venv/bin/python benchmarks/encryption.py             # 8 x 64 MiB, 3 rounds
    .venv/bin/python benchmarks/encryption.py --s3 http://127.0.0.1:PORT   # also on an S3 endpoint (bucket made)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from _machine import machine, this_python  # noqa: E402

from loopml.store.crypto.envelope import SEGMENT_BYTES  # noqa: E402
from loopml.store.crypto.keys import Keyring, MasterKey  # noqa: E402
from loopml.store.fs.artifacts import FsArtifactStore  # noqa: E402

MIB = 1 << 20


def say(message: str) -> None:
    print(f"[encryption] {message}", file=sys.stderr, flush=True)


def one_round(url: str, payloads: list[bytes], keyring: Keyring | None) -> list[float]:
    """[write MiB/s, read MiB/s, write MiB/CPU-s, read MiB/CPU-s] of the payloads on a fresh store at ``url``."""
    store = FsArtifactStore(url, keyring=keyring)
    total = sum(len(p) for p in payloads) / MIB
    started, cpu = time.perf_counter(), time.process_time()
    digests = [store.write_stream(io.BytesIO(p))[0] for p in payloads]
    wrote, wrote_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    for digest in digests:
        for _block in store.open_stream(digest):
            pass
    read, read_cpu = time.perf_counter() - started, time.process_time() - cpu
    return [total / wrote, total / read, total / wrote_cpu, total / read_cpu]


def floor(payloads: list[bytes]) -> tuple[float, float]:
    """Bare AES-GCM over the same bytes, 1 MiB segments: (encrypt MiB/s, decrypt MiB/s)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = b"\x00" * 12
    total = sum(len(p) for p in payloads) / MIB
    started = time.perf_counter()
    sealed = [
        [aead.encrypt(nonce, p[i : i + SEGMENT_BYTES], None) for i in range(0, len(p), SEGMENT_BYTES)]
        for p in payloads
    ]
    encrypt = time.perf_counter() - started
    started = time.perf_counter()
    for segments in sealed:
        for segment in segments:
            aead.decrypt(nonce, segment, None)
    decrypt = time.perf_counter() - started
    return total / encrypt, total / decrypt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=8)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 x 16 MiB, 2 rounds")
    parser.add_argument("--s3", metavar="ENDPOINT", help="also measure on this S3 endpoint (AWS_* credentials)")
    args = parser.parse_args()
    if args.quick:
        args.blobs, args.mib, args.rounds = 4, 16, 2
    payloads = [os.urandom(args.mib * MIB) for _ in range(args.blobs)]
    key = Keyring(MasterKey.generate())
    targets: list[tuple[str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="loopml-bench-encryption-"))
    targets.append(("local folder", str(workdir)))
    if args.s3:
        from botocore.session import get_session

        os.environ["AWS_ENDPOINT_URL"] = args.s3
        bucket = f"loopml-bench-{os.getpid()}"
        get_session().create_client("s3", endpoint_url=args.s3).create_bucket(Bucket=bucket)
        targets.append(("S3 endpoint", f"s3://{bucket}"))
    print(f"machine: {machine()}")
    print(f"workload: {args.blobs} artifacts x {args.mib} MiB, best of {args.rounds} rounds (off/on alternating)")
    print()
    print("| store | rate | per | encryption off MiB/s | on MiB/s | cost | floor (bare AES-GCM) MiB/s |")
    print("|---|---|---|---:|---:|---:|---:|")
    encrypt_floor, decrypt_floor = floor(payloads)
    try:
        for label, base in targets:
            best: dict[bool, list[float]] = {False: [0.0] * 4, True: [0.0] * 4}
            for r in range(args.rounds):
                for on in (False, True) if r % 2 == 0 else (True, False):  # neither always goes first
                    url = f"{base}/round-{r}-{'on' if on else 'off'}"
                    say(f"{label}: round {r + 1}, encryption {'on' if on else 'off'}")
                    os.sync()  # the last round's dirty pages are not written back during this one's fsyncs
                    rates = one_round(url, payloads, key if on else None)
                    best[on] = [max(old, new) for old, new in zip(best[on], rates, strict=True)]
                    if base == str(workdir):
                        shutil.rmtree(workdir / f"round-{r}-{'on' if on else 'off'}", ignore_errors=True)
            rows = (("write", "wall s", encrypt_floor), ("read", "wall s", decrypt_floor),
                    ("write", "CPU s", encrypt_floor), ("read", "CPU s", decrypt_floor))  # fmt: skip
            for i, (rate, per, floor_rate) in enumerate(rows):
                off, on = best[False][i], best[True][i]
                cost = (off - on) / off * 100
                print(f"| {label} | {rate} | {per} | {off:,.0f} | {on:,.0f} | {cost:+.1f}% | {floor_rate:,.0f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("target: cost <= 15% of the write and of the read rate")
    reproduce = " ".join([this_python(ROOT), "benchmarks/encryption.py", *sys.argv[1:]])
    print(f"reproduce: {reproduce}")


if __name__ == "__main__":
    main()
