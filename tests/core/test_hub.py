"""Pinning hub sources: what is checked before a submission is accepted.

The Hugging Face hub cannot be reached from here, so it is stood in for by answering the three
calls core.hub makes (model_info, the config download, the safetensors header) from a real tiny
checkpoint's files; the checks, counts and errors are core.hub's own.
"""
import json
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
        if repo_id != "org/tiny-clip" or revision not in (None, "main", COMMIT):
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

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub.HfApi, "parse_safetensors_file_metadata", parse_safetensors_file_metadata)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return files


@pytest.fixture
def tiny_clip_files(tmp_path_factory) -> dict[str, bytes]:
    from evaluators.multimodal.tiny_clip import build_clip
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
