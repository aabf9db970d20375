"""Submission kinds (issue 21): model type and chat-template use are stored, shown, part of the duplicate
key and handed to the evaluator; 8/4-bit precisions only on classes that have shown a GPU; the parameter
cap scales with bytes per parameter; merges declare their sources, adapters a pinned base."""
import json

import psycopg
import pytest

from core.precisions import param_cap
from tests.api.test_submissions import body, table_counts
from tests.conftest import DATABASE_URL


def _submit(client, auth, sha, **overrides):
    return client.post("/api/v1/submissions", json=body(sha, **overrides), headers=auth)


def test_a_chat_model_gets_the_chat_template_by_default_and_it_is_shown(client, auth, uploaded_checkpoint):
    response = _submit(client, auth, uploaded_checkpoint["sha256"], model_type="chat",
                       system_instruction="Answer briefly.")
    assert response.status_code == 201, response.text
    shown = response.json()
    assert shown["model_type"] == "chat"
    assert shown["chat_options"] == {"apply_chat_template": True, "fewshot_as_multiturn": True,
                                     "system_instruction": "Answer briefly."}
    again = client.get(f"/api/v1/submissions/{shown['id']}").json()
    assert again["chat_options"] == shown["chat_options"] and again["model_type"] == "chat"


def test_a_plain_submission_keeps_plain_prompts(client, auth, uploaded_checkpoint):
    shown = _submit(client, auth, uploaded_checkpoint["sha256"]).json()
    assert shown["model_type"] == "pretrained"
    assert shown["chat_options"] == {"apply_chat_template": False, "fewshot_as_multiturn": False,
                                     "system_instruction": None}


def test_the_chat_template_choice_is_part_of_the_duplicate_key(client, auth, uploaded_checkpoint):
    sha = uploaded_checkpoint["sha256"]
    first = _submit(client, auth, sha, model_type="fine-tuned")
    same = _submit(client, auth, sha, model_type="fine-tuned", apply_chat_template=False)
    templated = _submit(client, auth, sha, model_type="fine-tuned", apply_chat_template=True,
                        fewshot_as_multiturn=False)
    assert (first.status_code, same.status_code, templated.status_code) == (201, 200, 201)
    assert same.json()["id"] == first.json()["id"] and templated.json()["id"] != first.json()["id"]
    other_instruction = _submit(client, auth, sha, model_type="fine-tuned", apply_chat_template=True,
                                fewshot_as_multiturn=False, system_instruction="Be terse.")
    assert other_instruction.status_code == 201
    relabelled = _submit(client, auth, sha, model_type="continued-pretrained")  # same prompts: the same run
    assert relabelled.status_code == 200 and relabelled.json()["id"] == first.json()["id"]
    assert table_counts()["submission"] == 3


@pytest.mark.parametrize("overrides, field, words", [
    ({"model_type": "instruct-v2"}, "model_type", "unknown model_type"),
    ({"apply_chat_template": "yes"}, "apply_chat_template", "boolean"),
    ({"apply_chat_template": False, "fewshot_as_multiturn": True}, "fewshot_as_multiturn", "needs apply_chat_template"),
    ({"system_instruction": "Hello\u0000world"}, "system_instruction", "control or invisible"),
    ({"system_instruction": "x" * 4001}, "system_instruction", "4000"),
    ({"base_models": ["org/a", "org/b"]}, "base_models", "model_type to merge"),
    ({"model_type": "merge", "base_models": ["<script>alert(1)</script>"]}, "base_models", "not a model name"),
    ({"base_model": "hf://org/name@main"}, "base_model", "pattern"),
    ({"base_model": "../../etc/passwd"}, "base_model", "pattern"),
    ({"precision": "int8"}, "precision", "GPU hardware classes"),
])
def test_bad_submission_options_are_422_naming_the_field_and_write_nothing(client, auth, uploaded_checkpoint,
                                                                           overrides, field, words):
    response = _submit(client, auth, uploaded_checkpoint["sha256"], **overrides)
    assert response.status_code == 422, response.text
    problem = response.json()
    named = problem.get("field") or ",".join(e["field"] for e in problem.get("errors", []))
    assert field in named and words in problem["detail"], problem
    assert table_counts() == {"model": 0, "submission": 0, "run": 0}


def test_an_adapter_base_must_be_one_of_your_uploads_or_pinned_on_the_hub(client, auth, uploaded_checkpoint):
    missing = _submit(client, auth, uploaded_checkpoint["sha256"], base_model="e" * 64)
    assert missing.status_code == 404 and missing.json()["field"] == "base_model"
    pinned = _submit(client, auth, uploaded_checkpoint["sha256"], base_model="hf://org/base@" + "a" * 40)
    assert pinned.status_code == 201 and pinned.json()["base_model"] == "hf://org/base@" + "a" * 40


def test_a_merge_declares_its_sources(client, auth, uploaded_checkpoint):
    shown = _submit(client, auth, uploaded_checkpoint["sha256"], model_type="merge",
                    base_models=["org/base-a@v1", "org/base-b"]).json()
    assert shown["base_models"] == ["org/base-a@v1", "org/base-b"]


def _profile(hardware_class: str, versions: dict, measured: dict) -> None:
    from core.db import session_scope
    from core.models import HardwareProfile
    with session_scope() as s:
        s.add(HardwareProfile(hardware_class=hardware_class, host="h", worker="w", device_name="d", device_count=1,
                              memory_bytes=1, versions=versions, measured=measured))


def test_8_and_4_bit_run_only_where_a_worker_showed_a_gpu_with_bitsandbytes(client, auth, uploaded_checkpoint,
                                                                           monkeypatch):
    from core.config import get_settings
    monkeypatch.setattr(get_settings(), "hardware_classes", ["cpu", "gpu-a100"])
    _profile("cpu", {"torch": "2"}, {"gemm_tflops_fp32": 0.1, "gemm_tflops_bf16": 0.05})
    _profile("gpu-a100", {"torch": "2", "cuda": "12.4", "bitsandbytes": "0.45"},
             {"gemm_tflops_fp32": 19.0, "gemm_tflops_bf16": 300.0, "gemm_tflops_fp16": 300.0})
    on_cpu = _submit(client, auth, uploaded_checkpoint["sha256"], precision="int4")
    assert on_cpu.status_code == 422 and "GPU hardware classes" in on_cpu.json()["detail"]
    on_gpu = _submit(client, auth, uploaded_checkpoint["sha256"], precision="int4", hardware_class="gpu-a100")
    assert on_gpu.status_code == 201 and on_gpu.json()["precision"] == "int4"


def test_the_parameter_cap_scales_with_bytes_per_parameter(client, auth, uploaded_checkpoint, monkeypatch):
    from core.config import get_settings
    settings = get_settings()
    assert param_cap(settings, "int8") == 4 * settings.max_params_float32
    assert param_cap(settings, "int4") == 8 * settings.max_params_float32
    params = uploaded_checkpoint.get("params") or _params_of(uploaded_checkpoint["sha256"])
    monkeypatch.setattr(settings, "max_params_float32", params - 1)  # fp32 no longer fits; 8-bit (4x) does
    monkeypatch.setattr(settings, "hardware_classes", ["cpu", "gpu"])
    _profile("gpu", {"cuda": "12.4", "bitsandbytes": "0.45"}, {"gemm_tflops_fp32": 19.0})
    too_big = _submit(client, auth, uploaded_checkpoint["sha256"], hardware_class="gpu")
    assert too_big.status_code == 422 and "a lower precision may fit" in too_big.json()["detail"]
    fits = _submit(client, auth, uploaded_checkpoint["sha256"], hardware_class="gpu", precision="int8")
    assert fits.status_code == 201, fits.text


def _params_of(sha256: str) -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT params FROM checkpoint WHERE sha256 = %s", (sha256,)).fetchone()[0]


def test_an_adapter_uploads_and_is_submitted_on_an_uploaded_base(client, auth, uploaded_checkpoint, tiny_lm_dir,
                                                                 tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tests.conftest import pack
    torch.manual_seed(0)
    folder = tmp_path / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir)),
                   LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)).save_pretrained(str(folder))
    (folder / "README.md").write_text("# tiny-lora\n\nA LoRA adapter on the tiny test model.\n")
    (folder / "LICENSE").write_text("Apache-2.0\n")
    upload = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                         content=pack(folder, tmp_path / "adapter.tar.gz"), headers=auth)
    assert upload.status_code in (200, 201), upload.text
    shown = _submit(client, auth, upload.json()["sha256"], model_name="tiny-lora",
                    base_model=uploaded_checkpoint["sha256"]).json()
    assert shown["base_model"] == uploaded_checkpoint["sha256"]

    (folder / "adapter_config.json").write_text(json.dumps({**json.loads((folder / "adapter_config.json")
                                                                         .read_text()), "auto_mapping": {"x": "y"}}))
    hostile = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                          content=pack(folder, tmp_path / "hostile.tar.gz"), headers=auth)
    # auto_mapping naming a class outside transformers
    assert hostile.status_code == 422 and "auto_mapping" in hostile.json()["detail"]


def test_the_preflight_check_refuses_8_bit_on_a_class_without_a_gpu_as_submitting_would(client, auth):
    from tests.api.test_preflight import CHECK, GOOD
    refused = client.post(CHECK, json={**GOOD, "family": "causal-lm", "precision": "int8"}, headers=auth)
    assert refused.status_code == 422 and refused.json()["field"] == "precision"
    assert "GPU hardware classes" in refused.json()["detail"]


def test_8_and_4_bit_rows_rank_on_the_language_tracks():
    from core.catalog import get_suite
    from core.tracks import track_of
    for name in ("language-core", "language-open", "language-open-v2", "language-zh"):
        suite = get_suite(name)
        assert {"int8", "int4"} <= set(track_of(name, suite.version).precisions), name
