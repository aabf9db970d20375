"""What a checkpoint folder may hold before any loader reads it (DESIGN §6, layer 1: nothing in a
checkpoint can choose code).

One policy, called twice: by the upload check (core/storage.py, core/hub.py: a 422 naming the file)
and by the loaders (evaluators/loaders/causal_lm.py, evaluators/loaders/open_clip.py), so a folder
written into the store some other way is refused before transformers or open_clip sees it.

- Files: an allow-list per family. Anything else (*.py, pickles, executables, links, unknown names,
  files in sub-folders) is refused: transformers and open_clip only ever read these names, so a file
  outside the list can only be there to be run or to mislead.
- JSON: every *.json file, at any depth of its content, is walked for the keys that make a library
  import or fetch code: `auto_map`, `custom_pipelines`, `trust_remote_code` (other than false), an
  attention or experts implementation other than the built-in ones (a hub kernel such as
  "kernels-community/flash-attn" is downloaded and run), a `quantization_config` whose backend this
  service does not have. JSON is depth-checked on its bytes before it is parsed, so a file nested
  100,000 deep is refused, not a RecursionError.
- open_clip configs: every key checked against open_clip's model/vision/text config fields with
  their types; kwargs-shaped fields (`tokenizer_kwargs`, `act_kwargs`, `norm_kwargs`) hold only an
  allow-listed set of plain keys, since open_clip spreads them into library calls; Hugging Face
  tokenizers and text towers only from files the folder ships (never fetched by name).

Pure standard library plus core.errors: the API imports it without torch, and the evaluators may
import it (it touches no database, queue or settings).
"""
import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from importlib.util import find_spec
from itertools import accumulate
from pathlib import Path

from core.errors import UnsafeCheckpointError

MAX_JSON_BYTES = 64 * 1024 * 1024  # the largest real tokenizer.json files are ~35 MB
MAX_JSON_DEPTH = 64  # real configs nest < 10 deep

FAMILIES = ("causal-lm", "clip")
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
WEIGHTS_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,200}\.safetensors$")
_LICENSE_STEMS = ("LICENSE", "LICENCE", "COPYING", "NOTICE")
_TEXT_SUFFIXES = {"", ".md", ".txt", ".rst"}

_TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "vocab.txt",
                    "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "added_tokens.json"}
ADAPTER_CONFIG = "adapter_config.json"  # a PEFT LoRA adapter (weights: adapter_model.safetensors) on a pinned base
CAUSAL_LM_FILES = frozenset({"config.json", "generation_config.json", "model.safetensors.index.json",
                             "chat_template.jinja", "chat_template.json", "README.md", ".gitattributes",
                             ADAPTER_CONFIG, *_TOKENIZER_FILES})
# The names evaluators/loaders/open_clip.py find_config tries, in its order: the first present is the model config.
CLIP_CONFIG_NAMES = ("open_clip_config.json", "open_clip_model_config.json", "model_config.json", "config.json")
CLIP_FILES = frozenset({*CLIP_CONFIG_NAMES, "README.md", ".gitattributes", *_TOKENIZER_FILES})
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

# Keys that make transformers import code named by the checkpoint: refused wherever they appear.
_CODE_KEYS = {"auto_map": "names Python classes to import from the checkpoint's own code",
              "custom_pipelines": "names a pipeline implemented in the checkpoint's own code"}
_ATTN_KEYS = {"attn_implementation", "_attn_implementation", "_attn_implementation_internal"}
_EXPERTS_KEYS = {"experts_implementation", "_experts_implementation", "_experts_implementation_internal"}
BUILTIN_ATTENTION = ("eager", "sdpa")
# transformers' own experts kernels; "deepgemm" and "sonicmoe" load hub kernels, so they are not here.
BUILTIN_EXPERTS = ("eager", "batched_mm", "grouped_mm")
# quantization_config.quant_method → the package transformers needs for it (none fetch hub kernels).
QUANTIZATION_BACKENDS = {"bitsandbytes": "bitsandbytes", "gptq": "gptqmodel", "awq": "awq", "torchao": "torchao"}


# --- JSON: bounded parsing and the recursive key policy -------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """How deep the brackets of a JSON text nest, counted on its bytes (strings removed) without parsing it."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def loads_bounded(data: bytes, name: str, *, max_depth: int = MAX_JSON_DEPTH):
    """json.loads, refusing first what would cost the parser its stack: nesting past `max_depth`."""
    depth = json_depth(data)
    if depth > max_depth:
        raise UnsafeCheckpointError(f"{name}: JSON nested {depth} levels deep (at most {max_depth} are accepted)")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UnsafeCheckpointError(f"{name} is not valid JSON: {exc}") from exc


def read_json(path: Path, name: str | None = None):
    """A JSON file of a checkpoint, size- and depth-checked before it is parsed."""
    name = name or path.name
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise UnsafeCheckpointError(f"{name} is {size:,} bytes: JSON files over {MAX_JSON_BYTES:,} bytes are refused")
    return loads_bounded(path.read_bytes(), name)


def _where(chain) -> str:
    parts = []
    while chain:
        chain, key = chain
        parts.append(f"[{key}]" if isinstance(key, int) else str(key))
    return ".".join(reversed(parts)).replace(".[", "[")


def attention_implementations() -> tuple[str, ...]:
    """Built-in attention kernels; flash_attention_2 only where its package is installed (never fetched)."""
    return BUILTIN_ATTENTION + (("flash_attention_2",) if find_spec("flash_attn") else ())


def _check_implementation(name: str, where: str, value, allowed: tuple[str, ...], what: str) -> None:
    values = value.values() if isinstance(value, dict) else [value]
    for v in values:
        if v is not None and v not in allowed:
            raise UnsafeCheckpointError(
                f"{name}: {where} = {v!r} is not a built-in {what} implementation (allowed: {', '.join(allowed)}); "
                f"kernels from the hub are never loaded")


def _check_quantization(name: str, where: str, value) -> None:
    if value is None:
        return
    method = value.get("quant_method") if isinstance(value, dict) else None
    package = QUANTIZATION_BACKENDS.get(method) if isinstance(method, str) else None
    if package is None:
        raise UnsafeCheckpointError(f"{name}: {where} kind {method!r} is not supported here (supported: "
                                    f"{', '.join(QUANTIZATION_BACKENDS)}); upload unquantized safetensors weights")
    if not find_spec(package):
        raise UnsafeCheckpointError(f"{name}: {where} kind {method!r} needs the {package} package, which this "
                                    f"service does not have; upload unquantized safetensors weights")


def check_json(name: str, value) -> None:
    """Refuse any key, at any depth, that would make a library import, fetch or run code."""
    attention = None
    stack = [(value, None, 1)]
    while stack:
        node, chain, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise UnsafeCheckpointError(f"{name}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(node, dict) and isinstance(key, str):
                if key in _CODE_KEYS:
                    raise UnsafeCheckpointError(f"{name}: {_where((chain, key))} {_CODE_KEYS[key]}; code from a "
                                                f"checkpoint is never run")
                if key == "trust_remote_code" and child is not False:
                    raise UnsafeCheckpointError(f"{name}: {_where((chain, key))} = {child!r}: remote code is never "
                                                f"trusted")
                if key in _ATTN_KEYS:
                    attention = attention or attention_implementations()
                    _check_implementation(name, _where((chain, key)), child, attention, "attention")
                if key in _EXPERTS_KEYS:
                    _check_implementation(name, _where((chain, key)), child, BUILTIN_EXPERTS, "experts")
                if key == "quantization_config":
                    _check_quantization(name, _where((chain, key)), child)
            if isinstance(child, (dict, list)) and child:
                stack.append((child, (chain, key), depth + 1))


# --- files ------------------------------------------------------------------------------------------------------

def _is_license(name: str) -> bool:
    stem, dot, suffix = name.partition(".")
    return stem.upper().split("-")[0] in _LICENSE_STEMS and (f"{dot}{suffix}".lower() in _TEXT_SUFFIXES)


def allowed_file(family: str, rel: str) -> bool:
    """Whether a loader of this family may see a file at this path (relative, POSIX) in a checkpoint folder."""
    if "/" in rel:  # only transformers' extra chat templates live in a sub-folder
        folder, _, name = rel.partition("/")
        return (family == "causal-lm" and folder == "additional_chat_templates" and "/" not in name
                and name.endswith(".jinja") and not name.startswith("."))
    if rel in (CAUSAL_LM_FILES if family == "causal-lm" else CLIP_FILES) or _is_license(rel):
        return True
    return bool(WEIGHTS_NAME.match(rel))


def list_files(root: Path, *, links_into: Path | None = None) -> list[str]:
    """Every file under root as a relative POSIX path; links and special files refused.

    `links_into`: a Hugging Face cache snapshot is made of links into the repo's blobs folder; those
    (and only those: resolved to a regular file inside `links_into`) are accepted there.
    """
    files = []
    for dirpath, dirnames, filenames in os.walk(root):  # never follows links
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if links_into is None or not target.is_relative_to(links_into.resolve()) or not target.is_file():
                    raise UnsafeCheckpointError(f"{rel!r} is a link: checkpoints may not hold links")
                files.append(rel)
            elif stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                raise UnsafeCheckpointError(f"{rel!r} is not a regular file (device, fifo, socket …)")
    return files


def check_file_names(family: str, files: Iterable[str]) -> None:
    if family not in FAMILIES:
        raise UnsafeCheckpointError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    files = sorted(files)
    pickles = [f for f in files if Path(f).suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise UnsafeCheckpointError(f"pickle-format weights are refused ({', '.join(pickles)}): unpickling runs "
                                    f"code; convert them to safetensors")
    for rel in files:
        if not allowed_file(family, rel):
            kind = "Python code, which is never run" if rel.endswith((".py", ".pyc", ".so")) else "not a file a " \
                f"{family} checkpoint holds"
            raise UnsafeCheckpointError(f"{rel!r} is refused: {kind}. A {family} checkpoint holds only "
                                        f"{_describe(family)}")


def _describe(family: str) -> str:
    names = CAUSAL_LM_FILES if family == "causal-lm" else CLIP_FILES
    return ", ".join(sorted(names - {".gitattributes"})) + ", *.safetensors and LICENSE files"


def check_folder(root: Path, family: str, *, links_into: Path | None = None) -> dict[str, object]:
    """The whole layer-1 policy on a checkpoint folder; returns its JSON files, parsed ({relative path: value})."""
    files = list_files(root, links_into=links_into)
    check_file_names(family, files)
    parsed = {}
    for rel in files:
        if rel.endswith(".json"):
            parsed[rel] = read_json(root / rel, rel)
            check_json(rel, parsed[rel])
    if family == "causal-lm" and ADAPTER_CONFIG in parsed:
        if "config.json" in parsed:
            raise UnsafeCheckpointError(f"a folder is either a model (config.json) or an adapter ({ADAPTER_CONFIG}), "
                                        f"not both: upload the adapter alone and name its base at submission")
        check_adapter_config(parsed[ADAPTER_CONFIG])
    if family == "clip":
        name = next((n for n in CLIP_CONFIG_NAMES if n in parsed), None)
        check_clip_config(parsed.get(name), name or CLIP_CONFIG_NAMES[0], set(files))
    return parsed


# --- open_clip configs --------------------------------------------------------------------------------------------

_WORD = re.compile(r"^[\w\-]{0,64}$")
_HUB_NAME = re.compile(r"^[\w.\-]{1,96}(/[\w.\-]{1,96})?$")
_TIMM_NAME = re.compile(r"^[A-Za-z0-9_]{1,128}(\.[A-Za-z0-9_]{1,128})?$")  # a timm registry name, never hf-hub:…
MAX_INT = 1 << 24


def _int(v) -> bool:
    return type(v) is int and 0 <= v <= MAX_INT


def _num(v) -> bool:
    return type(v) in (int, float) and abs(v) <= MAX_INT


def _bool(v) -> bool:
    return type(v) is bool


def _obj(v) -> bool:
    return isinstance(v, dict)


def _opt(check: Callable) -> Callable:
    return lambda v: v is None or check(v)


def _pattern(regex: re.Pattern) -> Callable:
    return lambda v: isinstance(v, str) and bool(regex.match(v))


def _list_of(check: Callable, lengths: Iterable[int]) -> Callable:
    lengths = set(lengths)
    return lambda v: isinstance(v, list) and len(v) in lengths and all(check(x) for x in v)


def _one_of(*values) -> Callable:
    return lambda v: v in values and type(v) is type(values[0])


_word, _str_list = _pattern(_WORD), _list_of(lambda s: isinstance(s, str) and len(s) <= 100, range(257))
_size = lambda v: _int(v) or _list_of(_int, [2])(v)  # noqa: E731

# kwargs-shaped fields: open_clip spreads them into library calls, so each holds only these plain keys.
TOKENIZER_KWARGS = {"clean": _one_of("lower", "whitespace", "canonicalize"), "strip_sep_token": _bool,
                    "language": _opt(_word), "additional_special_tokens": _str_list}
ACT_KWARGS = {"approximate": _one_of("none", "tanh")}  # torch.nn.GELU's one option
NORM_KWARGS = {"eps": _num}  # LayerNorm's epsilon
_KWARGS = {"tokenizer_kwargs": TOKENIZER_KWARGS, "act_kwargs": ACT_KWARGS, "norm_kwargs": NORM_KWARGS}

_BLOCK = {"ls_init_value": _opt(_num), "final_ln_after_pool": _bool, "output_tokens": _bool,
          "act_kwargs": _opt(_obj), "norm_kwargs": _opt(_obj), "block_type": _opt(_word), "qk_norm": _bool,
          "scaled_cosine_attn": _bool, "scale_heads": _bool, "scale_attn_inner": _bool, "scale_attn": _bool,
          "scale_fc": _bool, "width": _int, "mlp_ratio": _num, "layers": _int, "pool_type": _word}
# open_clip.model.CLIPVisionCfg's fields (tests/core/test_checkpoint_policy.py keeps the two in step).
VISION_CFG = {**_BLOCK, "layers": lambda v: _int(v) or _list_of(_int, [4])(v), "head_width": _int,
              "patch_size": _int, "image_size": _size, "patch_dropout": _num, "attentional_pool": _bool,
              "attn_pooler_queries": _int, "attn_pooler_heads": _int, "no_ln_pre": _bool, "pos_embed_type": _word,
              "timm_model_name": _opt(_pattern(_TIMM_NAME)), "timm_model_pretrained": _bool,
              "timm_pool": _opt(_word), "timm_proj": _opt(_word), "timm_proj_bias": _bool, "timm_drop": _num,
              "timm_drop_path": _opt(_num)}
# open_clip.model.CLIPTextCfg's fields.
TEXT_CFG = {**_BLOCK, "context_length": _int, "vocab_size": _int, "hf_tokenizer_name": _opt(_pattern(_HUB_NAME)),
            "tokenizer_mode": _opt(_one_of("clips")), "tokenizer_kwargs": _opt(_obj), "heads": _int,
            "embed_cls": _bool, "pad_id": _int, "eos_id": _int, "no_causal_mask": _bool, "proj_bias": _bool,
            "proj_type": _word, "hf_model_name": _opt(_pattern(_HUB_NAME)), "hf_model_pretrained": _bool,
            "hf_proj_type": _word, "hf_pooler_type": _word}
# open_clip.coca_model.MultimodalCfg: CLIPTextCfg and a few more.
MULTIMODAL_CFG = {**TEXT_CFG, "dim_head": _int, "n_queries": _int, "attn_pooler_heads": _int}
# open_clip.CLIP / CustomTextCLIP / CoCa constructor arguments (cast_dtype is the loader's, never the config's).
MODEL_CFG = {"embed_dim": _int, "vision_cfg": _obj, "text_cfg": _obj, "multimodal_cfg": _obj, "quick_gelu": _bool,
             "init_logit_scale": _num, "init_logit_bias": _opt(_num), "nonscalar_logit_scale": _bool,
             "custom_text": _bool}
# open_clip.transform.PreprocessCfg's fields.
PREPROCESS_CFG = {"size": _size, "mode": _word, "mean": _list_of(_num, [1, 3]), "std": _list_of(_num, [1, 3]),
                  "interpolation": _word, "resize_mode": _word, "fill_color": _int}
_SECTIONS = {"vision_cfg": VISION_CFG, "text_cfg": TEXT_CFG, "multimodal_cfg": MULTIMODAL_CFG}
CLIP_CONFIG_NEEDED = ("a clip checkpoint needs an open_clip model config JSON (embed_dim, vision_cfg, text_cfg — bare, "
                      "or under model_cfg as in open_clip_config.json)")


def _check_fields(name: str, where: str, cfg, schema: dict) -> None:
    if not isinstance(cfg, dict):
        raise UnsafeCheckpointError(f"{name}: {where} must be a JSON object")
    for key, value in cfg.items():
        check = schema.get(key)
        if check is None:
            raise UnsafeCheckpointError(f"{name}: {where}.{key} is not an open_clip config field (accepted: "
                                        f"{', '.join(sorted(schema))})")
        if value is None:  # the field's default (open_clip's dataclasses take None), or an author's error at build
            continue
        if not check(value):
            raise UnsafeCheckpointError(f"{name}: {where}.{key} = {_short(value)} has the wrong type or value")
        if key in _KWARGS:
            _check_kwargs(name, f"{where}.{key}", value, _KWARGS[key])


def _check_kwargs(name: str, where: str, kwargs: dict, allowed: dict) -> None:
    for key, value in kwargs.items():
        if key not in allowed:
            raise UnsafeCheckpointError(f"{name}: {where} may hold only {', '.join(allowed)}; {key!r} is refused "
                                        f"(its keys reach library calls)")
        if not allowed[key](value):
            raise UnsafeCheckpointError(f"{name}: {where}.{key} = {_short(value)} has the wrong type or value")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def model_cfg_of(raw) -> dict | None:
    """The model config of an open_clip config JSON: bare, or under model_cfg (open_clip's hub layout)."""
    cfg = raw.get("model_cfg", raw) if isinstance(raw, dict) else None
    return cfg if isinstance(cfg, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= cfg.keys() else None


def check_clip_model_cfg(model_cfg: dict, name: str = "model config") -> None:
    """Every key of an open_clip model config against open_clip's own fields and types; kwargs allow-listed."""
    _check_fields(name, "model_cfg", model_cfg, MODEL_CFG)
    for section, schema in _SECTIONS.items():
        if section in model_cfg:
            _check_fields(name, section, model_cfg[section], schema)


def check_clip_config(raw, name: str, files: set[str]) -> dict:
    """An open_clip config JSON (hub layout or bare model config) and what its names require of the folder."""
    model_cfg = model_cfg_of(raw)
    if model_cfg is None:
        raise UnsafeCheckpointError(CLIP_CONFIG_NEEDED)
    if "model_cfg" in raw:
        extra = set(raw) - {"model_cfg", "preprocess_cfg"}
        if extra:
            raise UnsafeCheckpointError(f"{name}: unknown top-level keys {sorted(extra)} (accepted: model_cfg, "
                                        f"preprocess_cfg)")
        if raw.get("preprocess_cfg") is not None:
            _check_fields(name, "preprocess_cfg", raw["preprocess_cfg"], PREPROCESS_CFG)
    check_clip_model_cfg(model_cfg, name)
    for section in ("text_cfg", "multimodal_cfg"):
        cfg = model_cfg.get(section) or {}
        if cfg.get("hf_tokenizer_name") and not any(f in files for f in HF_TOKENIZER_FILES):
            raise UnsafeCheckpointError(
                f"{name}: {section}.hf_tokenizer_name {cfg['hf_tokenizer_name']!r} names a tokenizer the checkpoint "
                f"does not ship: include its files ({', '.join(HF_TOKENIZER_FILES)} …); tokenizers are never "
                f"fetched by name")
        if cfg.get("hf_model_name") and ("config.json" not in files or name == "config.json"):
            raise UnsafeCheckpointError(
                f"{name}: {section}.hf_model_name {cfg['hf_model_name']!r} names a Hugging Face text tower the "
                f"checkpoint does not ship: include its config.json; models are never fetched by name")
    return model_cfg


def clip_kwargs(kwargs: dict | None, names: Iterable[str]) -> dict:
    """The allow-listed keys of a checked kwargs field, rebuilt as a fresh dict of plain values (for loaders)."""
    kwargs = kwargs or {}
    return {key: kwargs[key] for key in names if key in kwargs}


# --- PEFT adapters ------------------------------------------------------------------------------------------------

def _str_list(v) -> bool:
    return isinstance(v, list) and len(v) <= 256 and all(isinstance(x, str) and 0 < len(x) <= 200 for x in v)


def _module_names(v) -> bool:
    # peft reads a string as a regular expression over module names: plain names and dots only, no pattern to run.
    return _str_list(v) or (isinstance(v, str) and bool(re.fullmatch(r"[\w.\-]{1,200}", v)))


def _int_map(v) -> bool:
    return isinstance(v, dict) and len(v) <= 1024 and all(isinstance(k, str) and len(k) <= 200 and _int(x)
                                                           for k, x in v.items())


def _num_map(v) -> bool:
    return isinstance(v, dict) and len(v) <= 1024 and all(isinstance(k, str) and len(k) <= 200 and _num(x)
                                                           for k, x in v.items())


# peft.LoraConfig's fields that a LoRA adapter for a causal LM sets, with their types. The loader builds
# LoraConfig from these keys alone (evaluators/loaders/causal_lm.py); peft never reads the file itself.
LORA_FIELDS = {
    "peft_type": _one_of("LORA"), "task_type": _opt(_one_of("CAUSAL_LM")), "r": lambda v: _int(v) and v > 0,
    "lora_alpha": _num, "lora_dropout": _num, "target_modules": _opt(_module_names),
    "exclude_modules": _opt(_module_names), "bias": _one_of("none", "all", "lora_only"), "fan_in_fan_out": _bool,
    "modules_to_save": _opt(_str_list), "init_lora_weights": lambda v: _bool(v) or v == "gaussian",
    "use_rslora": _bool, "use_dora": _bool, "lora_bias": _bool, "inference_mode": _bool,
    "layers_to_transform": _opt(lambda v: _int(v) or _list_of(_int, range(1025))(v)),
    "layers_pattern": _opt(_module_names), "rank_pattern": _opt(_int_map), "alpha_pattern": _opt(_num_map),
}
def _transformers_class(v) -> bool:
    # peft records the model class an adapter was trained on; ours is never imported from it, and only
    # a transformers class is accepted (a module of the checkpoint's choosing is not).
    return (isinstance(v, dict) and set(v) == {"base_model_class", "parent_library"}
            and isinstance(v["base_model_class"], str)
            and bool(re.fullmatch(r"[A-Za-z_]\w{0,100}", v["base_model_class"]))
            and isinstance(v["parent_library"], str)
            and bool(re.fullmatch(r"transformers(\.[A-Za-z_]\w{0,100}){0,6}", v["parent_library"])))


# Informational: recorded, never used (the base is the one pinned at submission, never this name).
LORA_INFO = {"base_model_name_or_path": _opt(lambda v: isinstance(v, str) and len(v) <= 300),
             "auto_mapping": _opt(_transformers_class),
             "revision": _opt(lambda v: isinstance(v, str) and len(v) <= 128),
             "peft_version": _opt(lambda v: isinstance(v, str) and len(v) <= 64)}
# Fields newer peft versions write with their defaults; any other value selects code paths (custom
# classes, Megatron imports, data-driven initialisation) an evaluation never needs, so it is refused.
LORA_DEFAULT_ONLY = ("megatron_config", "megatron_core", "loftq_config", "eva_config", "corda_config",
                     "layer_replication", "runtime_config", "trainable_token_indices", "target_parameters",
                     "qalora_group_size", "use_qalora", "alora_invocation_tokens", "arrow_config",
                     "ensure_weight_tying", "kasa_config", "lora_ga_config", "monteclora_config", "use_bdlora",
                     "velora_config")
_DEFAULTS = (None, False, {}, [], "megatron.core", 16, {"ephemeral_gpu_offload": False})


def check_adapter_config(raw) -> dict:
    """adapter_config.json of a LoRA adapter: every key known, typed, or at its default; returns LoraConfig's keys."""
    name = ADAPTER_CONFIG
    if not isinstance(raw, dict):
        raise UnsafeCheckpointError(f"{name} must be a JSON object")
    if raw.get("peft_type") != "LORA":
        raise UnsafeCheckpointError(f"{name}: peft_type {raw.get('peft_type')!r} is not supported (LoRA adapters only)")
    for key, value in raw.items():
        check = LORA_FIELDS.get(key) or LORA_INFO.get(key)
        if check is not None:
            if not check(value):
                raise UnsafeCheckpointError(f"{name}: {key} = {_short(value)} has the wrong type or value")
        elif key in LORA_DEFAULT_ONLY:
            if not any(value == d and type(value) is type(d) for d in _DEFAULTS):
                raise UnsafeCheckpointError(f"{name}: {key} = {_short(value)} is not supported (only its default); "
                                            f"an evaluation loads plain LoRA weights")
        else:
            raise UnsafeCheckpointError(f"{name}: {key!r} is not a LoRA field this service reads (accepted: "
                                        f"{', '.join(sorted(LORA_FIELDS))})")
    if raw.get("r") is None or raw.get("target_modules") is None:
        raise UnsafeCheckpointError(f"{name}: a LoRA adapter names its rank (r) and its target_modules")
    return {key: raw[key] for key in LORA_FIELDS if key in raw and key != "peft_type"}
