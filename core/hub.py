"""Submissions that name a Hugging Face hub model on connected deployments.

- `hf://org/name@revision`: a transformers causal LM;
- `hf-hub:org/name@revision`: an open_clip model in open_clip's hub layout
  (open_clip_config.json + open_clip_model.safetensors), as open_clip itself names them.

The revision is pinned to its commit at submit time, so the score always points at exact
weights. The same rules as uploads hold, checked at the pinned commit before anything is queued
(core/checkpoint_policy.py): no code files in the repo, every JSON file a loader reads walked for
keys that choose code, open_clip configs checked field by field, safetensors only, weights that
agree with the config, a parameter cap. Repo ids and revisions are validated here as the hub's own
rules have them, so `hf://../..@main` is a 422, never a request. Where the hub cannot be reached
the submission is refused at once with that reason.
"""
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.checkpoint_policy import (
    allowed_file,
    check_clip_config,
    check_json,
    read_json,
)
from core.clip_params import estimate_clip_params
from core.errors import HubUnreachableError, InvalidCheckpointError, InvalidRequestError
from core.model_config import check_causal_lm_config, check_params_agree

# The hub's own rules for a repo id part: letters, digits, "-", "_", "."; no "--" or ".."; not starting or
# ending with "-" or "."; at most 96 characters. A revision is a branch, tag or commit: no "..", no leading "/".
_PART = r"(?!.*(?:--|\.\.))[A-Za-z0-9](?:[\w.\-]{0,94}[A-Za-z0-9])?"
_REVISION = r"(?!.*\.\.)[A-Za-z0-9][\w.\-/]{0,254}"
HUB_URI = re.compile(rf"^hf://(?P<repo>{_PART}/{_PART})(@(?P<revision>{_REVISION}))?$")
CLIP_HUB_URI = re.compile(rf"^hf-hub:(?P<repo>{_PART}/{_PART})(@(?P<revision>{_REVISION}))?$")
# open_clip's hub layout; a repo may also carry a transformers-format copy, which is not read.
CLIP_CONFIG = "open_clip_config.json"
CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")
TIMEOUT_S = 10


@dataclass(frozen=True)
class PinnedHubModel:
    repo: str
    commit: str
    params: int
    scheme: str = "hf://"

    @property
    def uri(self) -> str:
        return f"{self.scheme}{self.repo}@{self.commit}"

    @property
    def sha256(self) -> str:
        """Stands in for a content hash: the commit pins the content."""
        return hashlib.sha256(self.uri.encode()).hexdigest()


def is_clip_source(uri: str) -> bool:
    return uri.startswith("hf-hub:")


def _check_repo_files(info, family: str, files: set[str], download: Callable[[str], Path]) -> dict:
    """The policy on a pinned repo: no code files anywhere; each JSON a loader would read, walked.

    A repo may hold more than a loader reads (other formats, sub-folders); the loader fetches only the
    allow-listed names, so those are what is checked, and code files are refused wherever they are."""
    code = sorted(f for f in files if f.endswith((".py", ".pyc", ".so")))
    if code:
        raise InvalidRequestError(f"{info.id} holds code files ({', '.join(code[:5])}); checkpoints that ship "
                                  f"code are not evaluated", field="source")
    parsed = {}
    for name in sorted(f for f in files if f.endswith(".json") and "/" not in f and allowed_file(family, f)):
        parsed[name] = read_json(download(name), name)
        check_json(name, parsed[name])
    return parsed


def pin(uri: str, max_params: int) -> PinnedHubModel:
    """A transformers causal LM named hf://org/name[@revision], pinned to its commit."""
    match = HUB_URI.match(uri)
    if not match:
        raise InvalidRequestError("a hub source looks like hf://org/name or hf://org/name@revision (a causal LM), "
                                  "or hf-hub:org/name@revision (an open_clip model)", field="source")

    def check(api, hf_hub_download, info, files: set[str]) -> int:
        if not any(f.endswith(".safetensors") for f in files):
            raise InvalidRequestError(f"{info.id} has no safetensors weights; pickle formats are refused",
                                      field="source")
        if "config.json" not in files:
            raise InvalidRequestError(f"{info.id} has no config.json", field="source")
        parsed = _check_repo_files(info, "causal-lm", files,
                                   lambda name: Path(hf_hub_download(info.id, name, revision=info.sha)))
        config = parsed["config.json"]
        if not isinstance(config, dict):
            raise InvalidRequestError(f"{info.id}'s config.json is not a JSON object", field="source")
        check_causal_lm_config(config)
        params = sum(api.get_safetensors_metadata(info.id, revision=info.sha).parameter_count.values())
        check_params_agree(config, params, max_params)  # the count shown is the weights' own
        return params

    return _pin(uri, match["repo"], match["revision"], max_params, check, "hf://")


def pin_clip(uri: str, max_params: int) -> PinnedHubModel:
    """An open_clip model named hf-hub:org/name[@revision] (open_clip's hub layout), pinned to its commit."""
    match = CLIP_HUB_URI.match(uri)
    if not match:
        raise InvalidRequestError("an open_clip hub source looks like hf-hub:org/name or hf-hub:org/name@revision",
                                  field="source")

    def check(api, hf_hub_download, info, files: set[str]) -> int:
        weights = [w for w in CLIP_WEIGHTS if w in files]
        if CLIP_CONFIG not in files or not weights:
            raise InvalidRequestError(f"{info.id} is not in open_clip's hub layout ({CLIP_CONFIG} and "
                                      f"{CLIP_WEIGHTS[0]}); pickle weights are refused", field="source")
        parsed = _check_repo_files(info, "clip", files,
                                   lambda name: Path(hf_hub_download(info.id, name, revision=info.sha)))
        raw = parsed[CLIP_CONFIG]
        model_cfg = raw.get("model_cfg") if isinstance(raw, dict) else None
        if not isinstance(model_cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= model_cfg.keys():
            raise InvalidRequestError(f"{info.id}'s {CLIP_CONFIG} has no open_clip model_cfg "
                                      f"(embed_dim, vision_cfg, text_cfg)", field="source")
        if model_cfg.get("text_cfg", {}).get("hf_model_name"):
            # A Hugging Face text tower is built from its own hub config: code and files beyond this repo.
            raise InvalidRequestError(f"{info.id} uses a Hugging Face text tower; only self-contained open_clip "
                                      f"models are evaluated", field="source")
        check_clip_config(raw, CLIP_CONFIG, files)  # every field, kwargs allow-listed, tokenizer shipped
        # The one weights file open_clip reads; a transformers-format copy beside it would double the count.
        header = api.parse_safetensors_file_metadata(info.id, weights[0], revision=info.sha)
        params = sum(header.parameter_count.values())
        claimed = estimate_clip_params(model_cfg)
        if claimed is not None and abs(params - claimed) > claimed * 0.01:
            raise InvalidRequestError(f"{info.id}: the weights hold {params:,} parameters but {CLIP_CONFIG} "
                                      f"describes a model of {claimed:,}", field="source")
        return params

    return _pin(uri, match["repo"], match["revision"], max_params, check, "hf-hub:")


def _pin(uri: str, repo: str, revision: str | None, max_params: int,
         check: Callable[..., int], scheme: str) -> PinnedHubModel:
    """Ask the hub for the repo at this revision, check it with `check` (→ parameter count), pin it."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi()
    try:
        info = api.model_info(repo, revision=revision, timeout=TIMEOUT_S)
        params = check(api, hf_hub_download, info, {s.rfilename for s in info.siblings or []})
    except InvalidCheckpointError as exc:  # the checkpoint policy refused a file of the pinned commit
        raise InvalidRequestError(f"{repo}@{info.sha}: {exc.message}", field="source") from exc
    except HFValidationError as exc:  # a name the hub's own rules refuse, caught here rather than as a 500
        raise InvalidRequestError(f"{uri} is not a valid hub name: {exc}", field="source") from exc
    except OfflineModeIsEnabled as exc:
        raise HubUnreachableError("this deployment is offline: hub models cannot be evaluated here; "
                                  "upload the checkpoint instead (POST /api/v1/checkpoints)") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise InvalidRequestError(f"{uri} does not exist on the hub (or is private)", field="source") from exc
    except OSError as exc:  # connection errors, timeouts
        raise HubUnreachableError(f"the Hugging Face hub cannot be reached right now ({type(exc).__name__}); "
                                  f"try again later or upload the checkpoint") from exc
    if params > max_params:
        raise InvalidRequestError(f"{repo} has about {params:,} parameters, over the cap of {max_params:,}",
                                  field="source")
    return PinnedHubModel(repo, info.sha, params, scheme)
