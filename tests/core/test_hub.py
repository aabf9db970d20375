"""Pinning hub sources: what is checked before a submission is accepted.

The Hugging Face hub cannot be reached from here, so it is stood in for by answering the three
calls core.hub makes (model_info, the config download, the safetensors header) from a real tiny
checkpoint's files; the checks, counts and errors are core.hub's own.
"""
import json
import re
from types import SimpleNamespace

import httpx
import huggingface_hub
import pytest

from core import hub
from core.errors import InvalidRequestError
from core.storage import safetensors_param_count

COMMIT = "c0ffee" + "0" * 34


@pytest.fixture
def hub_repo(monkeypatch, tmp_path):
    """A stand-in hub holding one repo: {filename: bytes}; returns that dict to fill in."""
    files: dict[str, bytes] = {}

    def model_info(self, repo_id, revision=None, timeout=None):
        if repo_id not in ("org/tiny-clip", "org/tiny-lm") or revision not in (None, "main", COMMIT):
            url = f"https://huggingface.co/api/models/{repo_id}/revision/{revision}"
            response = httpx.Response(404, request=httpx.Request("GET", url))
            raise huggingface_hub.errors.RepositoryNotFoundError(f"{repo_id}@{revision}", response=response)
        return SimpleNamespace(id=repo_id, sha=COMMIT, siblings=[SimpleNamespace(rfilename=f) for f in files])

    def hf_hub_download(repo_id, filename, revision=None, **_):
        assert revision == COMMIT  # everything after model_info reads the pinned commit
        path = tmp_path / filename
        path.write_bytes(files[filename])
        return str(path)

    def parse_safetensors_file_metadata(self, repo_id, filename, revision=None, **_):
        assert revision == COMMIT
        path = tmp_path / filename
        path.write_bytes(files[filename])
        return SimpleNamespace(parameter_count={"F32": safetensors_param_count(path)})

    def get_safetensors_metadata(self, repo_id, revision=None, **_):
        assert revision == COMMIT
        total = 0
        for name in (f for f in files if f.endswith(".safetensors")):
            (tmp_path / name).write_bytes(files[name])
            total += safetensors_param_count(tmp_path / name)
        return SimpleNamespace(parameter_count={"F32": total})

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub.HfApi, "get_safetensors_metadata", get_safetensors_metadata)
    monkeypatch.setattr(huggingface_hub.HfApi, "parse_safetensors_file_metadata", parse_safetensors_file_metadata)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return files


@pytest.fixture
def tiny_clip_files(tmp_path_factory) -> dict[str, bytes]:
    from evaluators.demo_models.clip import build_clip
    folder = build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_an_open_clip_repo_is_pinned_to_its_commit_with_its_parameter_count(hub_repo, tiny_clip_files):
    hub_repo.update(tiny_clip_files)
    hub_repo["model.safetensors"] = tiny_clip_files["open_clip_model.safetensors"]  # a second copy: not counted
    pinned = hub.pin_clip("hf-hub:org/tiny-clip@main", max_params=10**9)
    assert pinned.uri == f"hf-hub:org/tiny-clip@{COMMIT}"
    from core.clip_params import estimate_clip_params
    config = json.loads(tiny_clip_files["open_clip_config.json"])["model_cfg"]
    assert pinned.params == estimate_clip_params(config) > 1_000_000
    assert pinned.sha256 != hub.PinnedHubModel("org/tiny-clip", COMMIT, 0).sha256  # not the hf:// one


@pytest.mark.parametrize("change, reason", [
    (lambda f: f.pop("open_clip_model.safetensors"), "not in open_clip's hub layout"),
    (lambda f: f.pop("open_clip_config.json"), "not in open_clip's hub layout"),
    (lambda f: f.update({"open_clip_config.json": b'{"model_cfg": {"embed_dim": 8}}'}), "no open_clip model_cfg"),
    (lambda f: f.update({"open_clip_config.json": json.dumps({"model_cfg": {
        "embed_dim": 8, "vision_cfg": {}, "text_cfg": {"hf_model_name": "bert-base-uncased"}}}).encode()}),
     "Hugging Face text tower"),
])
def test_a_repo_that_is_not_a_self_contained_open_clip_model_is_refused(hub_repo, tiny_clip_files, change, reason):
    hub_repo.update(tiny_clip_files)
    change(hub_repo)
    with pytest.raises(InvalidRequestError, match=reason):
        hub.pin_clip("hf-hub:org/tiny-clip", max_params=10**9)


def test_a_clip_over_the_cap_is_refused(hub_repo, tiny_clip_files):
    hub_repo.update(tiny_clip_files)
    with pytest.raises(InvalidRequestError, match="over the cap of 1,000"):
        hub.pin_clip("hf-hub:org/tiny-clip", max_params=1000)


@pytest.mark.parametrize("source", ["hf-hub:tiny-clip", "hf-hub:org/tiny clip", "hf://org/tiny-clip"])
def test_a_malformed_clip_source_is_refused(source):
    with pytest.raises(InvalidRequestError, match="hf-hub:org/name"):
        hub.pin_clip(source, max_params=10**9)


def test_a_missing_repo_or_revision_is_a_user_error(hub_repo, tiny_clip_files):
    hub_repo.update(tiny_clip_files)
    with pytest.raises(InvalidRequestError, match="does not exist on the hub"):
        hub.pin_clip("hf-hub:org/tiny-clip@no-such-branch", max_params=10**9)


# --- names the hub's rules refuse: 422 before any request (issue 16 item 8) ---------------------------------------

@pytest.mark.parametrize("source", ["hf://../..@main", "hf://org/..", "hf://a--b/c", "hf://org/name@../../etc",
                                    "hf://.hidden/x", "hf://org/x@/abs"])
def test_a_malformed_hub_name_is_refused_before_any_request(hub_repo, source):
    with pytest.raises(InvalidRequestError, match="looks like hf://org/name"):
        hub.pin(source, max_params=10**9)


@pytest.mark.parametrize("source", ["hf-hub:../x", "hf-hub:org/..", "hf-hub:x/y@..", "hf-hub:-a/b"])
def test_a_malformed_clip_hub_name_is_refused_before_any_request(hub_repo, source):
    with pytest.raises(InvalidRequestError, match="hf-hub:org/name"):
        hub.pin_clip(source, max_params=10**9)


# --- pinned repos go through the checkpoint policy (issue 14) -------------------------------------------------------

def test_a_causal_lm_repo_is_pinned_with_its_weights_count(hub_repo, model_files, real_param_count):
    hub_repo.update(model_files)
    pinned = hub.pin("hf://org/tiny-lm@main", max_params=10**9)
    assert pinned.uri == f"hf://org/tiny-lm@{COMMIT}" and pinned.params == real_param_count


def _config(model_files, **changes) -> bytes:
    return json.dumps({**json.loads(model_files["config.json"]), **changes}).encode()


@pytest.mark.parametrize("spoil, reason", [
    (lambda f: {"config.json": _config(f, auto_map={"AutoModelForCausalLM": "m.Evil"})}, "config.json: auto_map"),
    (lambda f: {"config.json": _config(f, attn_implementation="kernels-community/flash-attn")},
     "kernels-community/flash-attn"),
    (lambda f: {"tokenizer_config.json": json.dumps({"deep": [{"x": {"trust_remote_code": True}}]}).encode()},
     "tokenizer_config.json: deep[0].x.trust_remote_code"),
    (lambda f: {"modeling_evil.py": b"import os"}, "holds code files (modeling_evil.py)"),
    (lambda f: {"config.json": _config(f, n_layer=48)}, "the weights must be the configured model's own"),
], ids=["auto_map", "hub-kernel", "nested-trust_remote_code", "py-file", "weights-disagree"])
def test_a_hostile_causal_lm_repo_is_refused_at_its_pinned_commit(hub_repo, model_files, spoil, reason):
    hub_repo.update(model_files)
    hub_repo.update(spoil(model_files))
    with pytest.raises(InvalidRequestError, match=re.escape(reason)):
        hub.pin("hf://org/tiny-lm@main", max_params=10**9)


def _clip_config(files, **text_changes) -> bytes:
    raw = json.loads(files["open_clip_config.json"])
    raw["model_cfg"]["text_cfg"].update(text_changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize("spoil, reason", [
    (lambda f: {"open_clip_config.json": _clip_config(f, hf_tokenizer_name="org/tiny-clip",
                                                      tokenizer_kwargs={"trust_remote_code": True}),
                "tokenizer.json": b"{}"}, "tokenizer_kwargs.trust_remote_code"),
    (lambda f: {"open_clip_config.json": _clip_config(f, hf_tokenizer_name="org/tiny-clip",
                                                      tokenizer_kwargs={"code_revision": "x"}),
                "tokenizer.json": b"{}"}, "'code_revision' is refused"),
    (lambda f: {"open_clip_config.json": _clip_config(f, hf_tokenizer_name="other/tokenizer")},
     "never fetched by name"),
    (lambda f: {"tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["t.Evil", None]}}).encode()},
     "tokenizer_config.json: auto_map"),
    (lambda f: {"tokenization_evil.py": b"import os"}, "holds code files"),
], ids=["tokenizer_kwargs-trust_remote_code", "tokenizer_kwargs-code_revision", "tokenizer-not-shipped",
        "auto_map", "py-file"])
def test_a_hostile_clip_repo_is_refused_at_its_pinned_commit(hub_repo, tiny_clip_files, spoil, reason):
    hub_repo.update(tiny_clip_files)
    hub_repo.update(spoil(tiny_clip_files))
    with pytest.raises(InvalidRequestError, match=re.escape(reason)):
        hub.pin_clip("hf-hub:org/tiny-clip@main", max_params=10**9)
