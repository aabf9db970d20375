"""Artifact store: fetch throughput (S3 vs a plain file copy) and a run's time to first token (cached vs fetched).

Measured side by side in one run, on loopback:
- throughput: one object of --mib MiB downloaded from a real S3-protocol server (moto's standalone
  server, through the same boto3 client code as AWS/MinIO) vs `shutil.copyfile` of the same bytes;
- time to first token: from asking the worker's evaluation sandbox for a run until the evaluator's
  first progress message, i.e. checkpoint fetched + verified + unpacked (cold cache) or found
  (warm cache), child started, model loaded. Alternated cold/warm, --rounds times, medians.

    .venv/bin/python benchmarks/artifact_fetch.py [--mib 256] [--rounds 3]
"""
import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def throughput(server, work: Path, mib: int) -> dict:
    from core.artifact_store import checkpoint_key, open_store
    blob = work / "blob"
    with open(blob, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(2**20))
    key = checkpoint_key(hashlib.sha256(blob.read_bytes()).hexdigest())
    store = open_store(f"s3://{server.make_bucket(f'bench-{uuid.uuid4().hex[:8]}')}/bench", endpoint_url=server.url)
    store.put_file(key, blob)
    s3, copy = [], []
    for _ in range(3):
        started = time.perf_counter()
        store.get_to_file(key, work / "from-s3")
        s3.append(time.perf_counter() - started)
        started = time.perf_counter()
        shutil.copyfile(blob, work / "copied")
        copy.append(time.perf_counter() - started)
    return {"s3_mib_s": mib / statistics.median(s3), "copy_mib_s": mib / statistics.median(copy)}


def first_token(server, work: Path, rounds: int) -> dict:
    from core.artifact_store import checkpoint_key, open_store
    from core.catalog import get_suite
    from core.config import get_settings
    from evaluators.base import EvalSpec
    from evaluators.demo_models.causal_lm import build_causal_lm
    from runners import worker_cache as cache_module
    from runners.eval_sandbox import EvalProcess, EvalRequest
    from cli.client import pack_folder

    folder = build_causal_lm(work / "model", n_layer=6, n_embd=384, seed=1)
    archive = pack_folder(folder, work / "model.tar.gz")
    key = checkpoint_key(hashlib.sha256(archive.read_bytes()).hexdigest())
    store = open_store(f"s3://{server.make_bucket(f'ttft-{uuid.uuid4().hex[:8]}')}/bench", endpoint_url=server.url)
    store.put_file(key, archive)
    task = get_suite("language-core").task("world_facts")
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args, primary_metric=task.primary_metric)
    timings = {"fetched": [], "cached": []}
    for i in range(rounds):
        cache_root = work / f"cache-{i}"
        cache_module._cache = cache_module.WorkerCache(cache_root, 10 * 2**30, store, get_settings())
        for kind in ("fetched", "cached"):
            process, first = EvalProcess(), []
            started = time.perf_counter()

            def on_progress(stage, fraction, first=first, started=started):
                if not first:
                    first.append(time.perf_counter() - started)
                raise KeyboardInterrupt  # stop here: the first token is what is measured

            try:
                process.run(EvalRequest("causal-lm", f"store:{key}", "float32", "cpu", spec), memory_cap_bytes=8 * 2**30,
                            timeout_s=600, on_progress=on_progress, is_cancelled=lambda: False)
            except KeyboardInterrupt:
                pass
            timings[kind].append(first[0])
    return {kind: statistics.median(values) for kind, values in timings.items()} | {
        "archive_mib": archive.stat().st_size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tests.s3_server import CREDENTIALS, S3Server
    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="evb-fetch-"))
    os.environ["DATA_DIR"] = str(work / "data")
    server = S3Server(work / "moto.log").start()
    try:
        speed = throughput(server, work, args.mib)
        ttft = first_token(server, work, args.rounds)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"fetch throughput ({args.mib} MiB object, median of 3): S3 (moto, loopback) {speed['s3_mib_s']:.0f} MiB/s, "
          f"file copy {speed['copy_mib_s']:.0f} MiB/s, ratio S3/copy {speed['s3_mib_s'] / speed['copy_mib_s']:.2f}")
    print(f"time to first token ({ttft['archive_mib']:.1f} MiB checkpoint, median of {args.rounds}): fetched "
          f"{ttft['fetched']:.2f} s, cached {ttft['cached']:.2f} s, ratio fetched/cached "
          f"{ttft['fetched'] / ttft['cached']:.2f}")


if __name__ == "__main__":
    main()
