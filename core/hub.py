"""Submissions that name a Hugging Face hub model (`hf://org/name@revision`) on connected deployments.

The revision is pinned to its commit at submit time, so the score always points at exact
weights. The same rules as uploads hold: safetensors only, no remote code, a parameter cap.
Where the hub cannot be reached the submission is refused at once with that reason.
"""
import hashlib
import json
import re
from dataclasses import dataclass

from core.errors import EvalboardError, InvalidRequestError
from core.model_config import check_causal_lm_config, estimate_params

HUB_URI = re.compile(r"^hf://(?P<repo>[\w.\-]+/[\w.\-]+)(@(?P<revision>[\w.\-/]+))?$")
TIMEOUT_S = 10


class HubUnreachableError(EvalboardError):
    """The hub could not be asked (offline deployment, network down): 503."""


@dataclass(frozen=True)
class PinnedHubModel:
    repo: str
    commit: str
    params: int

    @property
    def uri(self) -> str:
        return f"hf://{self.repo}@{self.commit}"

    @property
    def sha256(self) -> str:
        """Stands in for a content hash: the commit pins the content."""
        return hashlib.sha256(self.uri.encode()).hexdigest()


def pin(uri: str, max_params: int) -> PinnedHubModel:
    match = HUB_URI.match(uri)
    if not match:
        raise InvalidRequestError("a hub source looks like hf://org/name or hf://org/name@revision", field="source")
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, revision = match["repo"], match["revision"]
    api = HfApi()
    try:
        info = api.model_info(repo, revision=revision, timeout=TIMEOUT_S)
        files = {s.rfilename for s in info.siblings or []}
        if not any(f.endswith(".safetensors") for f in files):
            raise InvalidRequestError(f"{repo} has no safetensors weights; pickle formats are refused",
                                      field="source")
        config = json.loads(open(hf_hub_download(repo, "config.json", revision=info.sha)).read())
        check_causal_lm_config(config)
        header_params = api.get_safetensors_metadata(repo, revision=info.sha).parameter_count
    except OfflineModeIsEnabled as exc:
        raise HubUnreachableError("this deployment is offline: hub models cannot be evaluated here; "
                                  "upload the checkpoint instead (POST /api/v1/checkpoints)") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise InvalidRequestError(f"{uri} does not exist on the hub (or is private)", field="source") from exc
    except OSError as exc:  # connection errors, timeouts
        raise HubUnreachableError(f"the Hugging Face hub cannot be reached right now ({type(exc).__name__}); "
                                  f"try again later or upload the checkpoint") from exc
    params = max(sum(header_params.values()), estimate_params(config))
    if params > max_params:
        raise InvalidRequestError(f"{repo} has about {params:,} parameters, over the cap of {max_params:,}",
                                  field="source")
    return PinnedHubModel(repo, info.sha, params)
