from tests.seed import seed_scored_model


def metric(text: str, line_start: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(line_start)).split()[-1])


def test_metrics_report_queue_depth_and_runs_by_status(client, auth, uploaded_checkpoint):
    seed_scored_model("done-model", {"world_facts": 0.5})
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts", "arithmetic_mc"]}
    assert client.post("/api/v1/submissions", json=body, headers=auth).status_code == 201
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert metric(text, 'evalboard_queue_depth{hardware_class="cpu"}') == 2
    assert metric(text, 'evalboard_runs{status="queued"}') == 2
    assert metric(text, 'evalboard_runs{status="finished"}') == 1
    assert metric(text, 'evalboard_workers{hardware_class="cpu"}') == 0
    assert "# TYPE evalboard_run_duration_seconds summary" in text


def test_metrics_show_each_workers_checkpoint_cache(client, tiny_lm_dir, tmp_path):
    import hashlib

    import runners.worker_cache as worker_cache
    from core.artifact_store import FileStore, checkpoint_key
    from core.config import get_settings
    from runners.dispatch import get_redis
    from tests.conftest import pack

    data = pack(tiny_lm_dir, tmp_path / "m.tar.gz")
    key = checkpoint_key(hashlib.sha256(data).hexdigest())
    store = FileStore(tmp_path / "store")
    store.put_file(key, tmp_path / "m.tar.gz")
    cache = worker_cache.WorkerCache(tmp_path / "cache", 10**9, store, get_settings())
    cache.checkpoint(key, "causal-lm")
    cache.checkpoint(key, "causal-lm")
    previous, worker_cache._cache = worker_cache._cache, cache
    try:
        worker_cache.publish_stats(get_redis(), "cpu@host-b:42", ttl_s=60)
    finally:
        worker_cache._cache = previous
    text = client.get("/metrics").text
    assert 'evalboard_worker_cache_hits_total{worker="cpu@host-b:42"} 1.0' in text
    assert 'evalboard_worker_cache_misses_total{worker="cpu@host-b:42"} 1.0' in text
    assert f'evalboard_worker_cache_fetched_bytes_total{{worker="cpu@host-b:42"}} {float(len(data))}' in text
    assert 'evalboard_worker_cache_max_bytes{worker="cpu@host-b:42"} 1000000000.0' in text
