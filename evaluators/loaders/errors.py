"""Load failures in words an author can act on: which file is wrong, and how to fix it.

The evaluation child turns the exception a loader raised into one of these messages; the raw
exception stays in the owner's log tail. Matching is on exception type and the libraries' own
message text, so an unknown failure still gets the generic message, never a wrong explanation.
"""
import re

SAVE_HINT = "re-save the model with transformers' save_pretrained() (and the tokenizer with its save_pretrained())"


def _tokenizer(exc: BaseException) -> str | None:
    text = str(exc)
    if isinstance(exc, KeyError) and text.strip("'\"") in ("added_tokens", "model", "normalizer", "pre_tokenizer"):
        return (f"tokenizer.json is missing its {text.strip(chr(39))!r} section, so no tokenizer can be built from it: "
                f"{SAVE_HINT}, which writes a complete tokenizer.json")
    if "ModelWrapper" in text or "untagged enum" in text or "did not match any variant" in text:
        return (f"tokenizer.json is not a tokenizer the tokenizers library can read ({text[:120]}): {SAVE_HINT}")
    return None


def _weights(exc: BaseException) -> str | None:
    text = str(exc)
    mismatch = re.search(r"([\w.]+)\s*\|\s*MISMATCH.*?ckpt: torch\.Size\(\[([\d, ]+)\]\) vs model:\s*torch\.Size\(\[([\d, ]+)\]\)",
                         text, re.S)
    if mismatch:
        name, stored, expected = mismatch.groups()
        return (f"the weights do not fit config.json: {name} is [{stored}] in the safetensors file but config.json "
                f"makes it [{expected}]; fix config.json (or the weights) so they describe the same model, e.g. {SAVE_HINT}")
    if "size mismatch" in text or "ignore_mismatched_sizes" in text:
        return (f"the weights do not fit config.json (a tensor's shape differs from what the config describes): "
                f"fix config.json or the weights so they describe the same model, e.g. {SAVE_HINT}")
    if "missing from the checkpoint" in text:
        return text  # our own check (evaluators/loaders/causal_lm.py) already names the tensors
    if isinstance(exc, OSError) and ("no file named" in text or "does not appear to have a file named" in text):
        return ("no weights found: the folder needs model.safetensors, or model.safetensors.index.json with every "
                "shard it lists (pickled .bin weights are not loaded)")
    return None


def _config(exc: BaseException) -> str | None:
    text = str(exc)
    model_type = re.search(r"model type `([^`]*)`", text)
    if "does not recognize this architecture" in text or "Unrecognized model" in text:
        name = model_type.group(1) if model_type else "?"
        return (f"config.json names model_type {name!r}, which is not an architecture this service's transformers "
                f"knows; models that need their own code are not accepted")
    if isinstance(exc, ImportError):
        package = getattr(exc, "name", None) or text
        return (f"config.json asks for something that needs the package {package!r}, which evaluation workers do not "
                f"install (an attention kernel or quantization backend, say): remove that setting from config.json")
    if isinstance(exc, TypeError) and ("dtype" in text or "ScalarType" in text):
        return f"the weights' data type cannot be loaded at the requested precision ({text[:120]}): submit another precision"
    return None


def explain(exc: BaseException) -> str:
    """One sentence for the author; falls back to the exception itself when no rule matches."""
    from core.errors import InvalidCheckpointError
    if isinstance(exc, InvalidCheckpointError):  # the checkpoint policy's own words already name the file
        return f"the checkpoint was refused: {exc}"
    for rule in (_tokenizer, _weights, _config):
        message = rule(exc)
        if message:
            return f"the checkpoint could not be loaded: {message}"
    return f"the checkpoint could not be loaded: {type(exc).__name__}: {str(exc)[:300]}"
