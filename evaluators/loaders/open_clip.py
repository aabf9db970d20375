"""Load an open_clip model from a submitted folder (config JSON + safetensors), or by name when connected.

A submitted folder holds either open_clip's hub layout (`open_clip_config.json` with
`model_cfg` and `preprocess_cfg`) or a bare model config (`embed_dim`, `vision_cfg`,
`text_cfg`, as in open_clip's model_configs/*.json). The model is built from that config and
the weights are read with safetensors only — never torch.load, so no pickle runs (DESIGN §6).
Image preprocessing is built from the model's own config, as open_clip's eval transform.

Nothing in the folder chooses code (DESIGN §6): the folder is checked with the upload's policy
(core/checkpoint_policy.py) before anything reads it, the model config is checked key by key
against open_clip's fields before it is built, kwargs-shaped fields are rebuilt from their
allow-listed keys, and a Hugging Face tokenizer or text tower is read from the folder only, with
trust_remote_code=False and local_files_only=True named on the call.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.checkpoint_policy import (
    ACT_KWARGS,
    CLIP_CONFIG_NAMES,
    HF_TOKENIZER_FILES,
    NORM_KWARGS,
    TOKENIZER_KWARGS,
    check_clip_model_cfg,
    check_folder,
    clip_kwargs,
    model_cfg_of,
    read_json,
)
from core.errors import UnsafeCheckpointError
from evaluators.devices import primary_device
from evaluators.loaders.hub import hub_snapshot
from evaluators.precision import torch_dtype

CONFIG_NAMES = CLIP_CONFIG_NAMES
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")
PRECISIONS = {"float32": "fp32", "bfloat16": "pure_bf16", "float16": "pure_fp16"}


@dataclass
class LoadedClip:
    model: Any
    tokenizer: Any
    """Callable list[str] → LongTensor [n, context_length] (open_clip's tokenizer interface)."""
    preprocess: Any
    """PIL image → float tensor, as the model's config says (size, mean/std, interpolation, resize mode)."""
    path: str
    device: str
    dtype: str
    config: dict


def find_config(root: Path) -> Path:
    """The model config JSON: a known name first, else the one JSON that carries a vision and a text tower."""
    for name in CONFIG_NAMES:
        if (root / name).is_file():
            return root / name
    raise ValueError(f"no open_clip model config JSON in {root.name} (one of {', '.join(CONFIG_NAMES)})")


def _read(path: Path) -> dict:
    data = read_json(path)  # size- and depth-bounded before parsing
    return data if isinstance(data, dict) else {}


def _model_cfg(raw: dict) -> dict | None:
    return model_cfg_of(raw)


def read_clip_config(root: Path) -> tuple[dict, dict]:
    """(model_cfg, preprocess_cfg) from the folder's config; raises ValueError when there is none."""
    raw = _read(find_config(root))
    model_cfg = _model_cfg(raw)
    if model_cfg is None:
        raise ValueError("the config JSON has no open_clip model config (embed_dim, vision_cfg, text_cfg)")
    return model_cfg, raw.get("preprocess_cfg", {})


def _build(model_cfg: dict, precision: str, root: Path | None = None, *, by_name: bool = False):
    """The architecture from its config, as open_clip's factory does, without touching any file.

    The config's every key was checked against open_clip's own fields (check_clip_model_cfg, again
    here), and its kwargs fields are rebuilt from their allow-listed keys: what reaches open_clip's
    constructors is that checked copy, never the raw dict's other contents.
    """
    import open_clip
    from open_clip.model import get_cast_dtype

    check_clip_model_cfg(model_cfg)
    cfg = json.loads(json.dumps(model_cfg))  # a private copy: the factory pops keys
    for section in ("vision_cfg", "text_cfg", "multimodal_cfg"):
        if section in cfg:
            for key, allowed in (("act_kwargs", ACT_KWARGS), ("norm_kwargs", NORM_KWARGS)):
                if cfg[section].get(key) is not None:
                    cfg[section][key] = clip_kwargs(cfg[section][key], allowed)
            cfg[section].pop("tokenizer_kwargs", None)  # the tokenizer's, read by _tokenizer
    if "timm_model_name" in cfg["vision_cfg"]:
        cfg["vision_cfg"]["timm_model_pretrained"] = False  # weights come from the checkpoint, not timm's hub
    hf_text = bool(cfg["text_cfg"].get("hf_model_name"))
    if hf_text and not by_name:  # open_clip's registered configs (by_name) come with the package
        if root is None:
            raise UnsafeCheckpointError("a Hugging Face text tower is built only from the config.json its folder "
                                        "ships; models are never fetched by name")
        cfg["text_cfg"]["hf_model_name"] = str(root)  # AutoConfig reads the folder's own config.json, nothing else
        cfg["text_cfg"]["hf_model_pretrained"] = False
    cls = open_clip.CustomTextCLIP if cfg.pop("custom_text", False) or hf_text else open_clip.CLIP
    if "multimodal_cfg" in cfg:
        cls = open_clip.CoCa
    return cls(**cfg, cast_dtype=get_cast_dtype(PRECISIONS[precision]))


def _preprocess(model, preprocess_cfg: dict):
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    cfg = merge_preprocess_dict(PreprocessCfg(), preprocess_cfg)
    cfg["size"] = model.visual.image_size  # the tower's own input size wins, as in open_clip's factory
    pp = PreprocessCfg(**cfg)
    return open_clip.image_transform(pp.size, is_train=False, mean=pp.mean, std=pp.std,
                                     interpolation=pp.interpolation, resize_mode=pp.resize_mode,
                                     fill_color=pp.fill_color)


def _tokenizer(model_cfg: dict, root: Path | None, *, by_name: bool = False):
    """The text tokenizer its config names, with explicit arguments only.

    A Hugging Face tokenizer is read from the folder's own files; `by_name` (open_clip's registered
    configs, which come with the package, never from a checkpoint) may name one on the hub instead.
    """
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer, SimpleTokenizer

    text_cfg = model_cfg["text_cfg"]
    context_length = text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH)
    options = clip_kwargs(text_cfg.get("tokenizer_kwargs"), TOKENIZER_KWARGS)  # allow-listed plain keys only
    if text_cfg.get("hf_tokenizer_name"):
        ships = root is not None and any((root / name).is_file() for name in HF_TOKENIZER_FILES)
        if not ships and not by_name:
            raise UnsafeCheckpointError(f"text_cfg.hf_tokenizer_name {text_cfg['hf_tokenizer_name']!r} names a "
                                        f"tokenizer the checkpoint does not ship; tokenizers are never fetched by name")
        return HFTokenizer(str(root) if ships else text_cfg["hf_tokenizer_name"], context_length=context_length,
                           clean=options.get("clean", "whitespace"),
                           strip_sep_token=options.get("strip_sep_token", False), language=options.get("language"),
                           tokenizer_mode=text_cfg.get("tokenizer_mode"),
                           trust_remote_code=False, local_files_only=ships)
    # open_clip's default BPE tokenizer ships its vocabulary inside the package: nothing to fetch.
    return SimpleTokenizer(context_length=context_length, clean=options.get("clean", "lower"),
                           additional_special_tokens=options.get("additional_special_tokens"))


def load_clip_folder(path: str | Path, *, precision: str = "float32", device: str = "cpu",
                     links_into: Path | None = None) -> LoadedClip:
    """`links_into`: a hub cache snapshot's blobs folder, the one place its links may point."""
    root = Path(path)
    check_folder(root, "clip", links_into=links_into)  # refuses before any library reads the folder
    model_cfg, preprocess_cfg = read_clip_config(root)
    # Hub repositories may also carry a transformers-format copy: open_clip's own file wins.
    weights = [root / n for n in OPEN_CLIP_WEIGHTS if (root / n).is_file()][:1] or sorted(root.glob("*.safetensors"))
    if not weights:
        raise ValueError(f"no .safetensors weights in {root.name}")
    return _load(model_cfg, preprocess_cfg, weights, root, precision=precision, device=device)


def _load(model_cfg: dict, preprocess_cfg: dict, weights: list[Path], root: Path, *, precision: str,
          device: str, by_name: bool = False) -> LoadedClip:
    """Build from the config, read the weights with safetensors only, and load them strictly."""
    import torch
    from safetensors.torch import load_file

    model = _build(model_cfg, precision, root, by_name=by_name)
    state: dict[str, Any] = {}
    for file in weights:
        state.update(load_file(file))
    # Checkpoints saved with a scalar logit_scale load into a 0-d parameter and back.
    for key in ("logit_scale", "logit_bias"):
        target = getattr(model, key, None)
        if key in state and target is not None and state[key].shape != target.shape:
            state[key] = state[key].reshape(target.shape)
    model.load_state_dict(state, strict=True)
    model.to(device=device, dtype=torch_dtype(precision, torch)).eval()
    return LoadedClip(model, _tokenizer(model_cfg, root, by_name=by_name), _preprocess(model, preprocess_cfg),
                      str(root), device, precision, model_cfg)


# Of a hub repository only what a folder load reads: open_clip's config and weights, and tokenizer
# files. Not "*.safetensors": repositories often hold a transformers-format copy as well, as big.
HUB_PATTERNS = ["*.json", "*.txt", "*.model", *OPEN_CLIP_WEIGHTS]


def load_clip_by_name(name: str, *, precision: str = "float32", device: str = "cpu",
                      cache_dir: str | None = None) -> LoadedClip:
    """Connected deployments: `hf-hub:org/repo[@revision]` or `open_clip:<arch>/<pretrained tag>`.

    Files come through huggingface_hub's cache (so HF_HUB_OFFLINE=1 reads a populated cache and
    fetches nothing). Only safetensors weights are fetched — open_clip's hub layout for
    `hf-hub:`, or the safetensors twin of the file a pretrained tag names — and a tag whose
    weights exist only as a pickle is refused.
    """
    from huggingface_hub import hf_hub_download

    if name.startswith("hf-hub:"):
        # hf-hub:org/repo@<commit> is how a submission pins it (core/hub.py); open_clip's own form has no @.
        repo, _, revision = name.removeprefix("hf-hub:").partition("@")
        folder, blobs = hub_snapshot(repo, revision, HUB_PATTERNS, cache_dir=cache_dir)
        return load_clip_folder(folder, precision=precision, device=device, links_into=blobs)
    if not name.startswith("open_clip:"):
        raise ValueError(f"unknown clip model reference {name!r}: use a folder, hf-hub:org/repo or "
                         f"open_clip:<arch>/<tag>")
    import open_clip
    from huggingface_hub.errors import RemoteEntryNotFoundError

    arch, _, tag = name.removeprefix("open_clip:").partition("/")
    pretrained = open_clip.get_pretrained_cfg(arch, tag)
    # Only a registered tag's arch reaches get_model_config, which would also read "hf-hub:"/"local-dir:" names.
    model_cfg = open_clip.get_model_config(arch) if pretrained.get("hf_hub") else None
    if model_cfg is None:
        raise ValueError(f"open_clip has no hub-hosted pretrained tag {tag!r} for {arch!r}")
    repo, filename = hub_weights_file(pretrained["hf_hub"])
    try:
        weights = hf_hub_download(repo, filename, cache_dir=cache_dir)  # no pickle fallback
    except RemoteEntryNotFoundError as exc:
        raise ValueError(f"{arch}/{tag}: {repo} has no {filename}, and pickled weights are never loaded") from exc
    if pretrained.get("quick_gelu"):  # as open_clip's factory: the tag says which activation it was trained with
        model_cfg["quick_gelu"] = True
    preprocess_cfg = {k: pretrained[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in pretrained}
    # Loaded in place: nothing is written into the hub cache (its files are links into shared blobs).
    return _load(model_cfg, preprocess_cfg, [Path(weights)], Path(weights).parent, precision=precision,
                 device=device, by_name=True)


def hub_weights_file(hf_hub: str) -> tuple[str, str]:
    """(repo, safetensors file) of an open_clip `hf_hub` entry.

    open_clip writes `org/repo/` for its default file (open_clip_pytorch_model.bin, whose safetensors
    twin is open_clip_model.safetensors) and `org/repo/file.bin` for a named one (twin: file.safetensors).
    """
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    repo, filename = hf_hub.rsplit("/", 1) if hf_hub.count("/") >= 2 else (hf_hub.rstrip("/"), "")
    if filename in ("", HF_WEIGHTS_NAME):
        return repo, HF_SAFE_WEIGHTS_NAME
    stem, _, ext = filename.rpartition(".")
    if ext in ("bin", "pth"):  # the same twins open_clip's downloader looks for first
        return repo, f"{stem}.safetensors"
    if ext != "safetensors":
        raise ValueError(f"{hf_hub}: only safetensors weights are loaded, not .{ext}")
    return repo, filename


def load_clip(path: str | Path, *, precision: str = "float32", device: str = "cpu") -> LoadedClip:
    """An open_clip model: a checkpoint folder, or `hf-hub:org/repo` / `open_clip:<arch>/<tag>` when connected."""
    device = primary_device(device)  # a device list spreads causal LMs; a CLIP model fits one device
    if str(path).startswith(("hf-hub:", "open_clip:")):
        return load_clip_by_name(str(path), precision=precision, device=device)
    return load_clip_folder(path, precision=precision, device=device)
