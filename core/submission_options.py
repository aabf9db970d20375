"""How a submission's prompts are built: model type and chat-template use (issue 21).

A submission says what kind of model it is and whether its prompts go through the tokenizer's
chat template (lm-eval's `apply_chat_template`, `fewshot_as_multiturn`, an optional system
instruction). These are the author's words, so they are data: each key is allow-listed and
type-checked here, the canonical form (every key present, nothing else) is what is stored, what
enters the duplicate key and what reaches the evaluator, where each value is handed to lm-eval
by name — never spread into a library call.

Pure standard library plus core.errors: the API and the evaluation child both import it.
"""
import unicodedata

from core.errors import InvalidRequestError

MODEL_TYPES = ("pretrained", "continued-pretrained", "fine-tuned", "chat", "merge")
"""`chat` covers chat and instruct models: its prompts go through the chat template by default."""

CHAT_KEYS = ("apply_chat_template", "fewshot_as_multiturn", "system_instruction")
MAX_SYSTEM_INSTRUCTION_CHARS = 4000
_ALLOWED_CONTROLS = {"\n", "\t"}


def _bool(value, name: str) -> bool:
    if type(value) is not bool:
        raise InvalidRequestError(f"{name} must be true or false", field=name)
    return value


def _system_instruction(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError("system_instruction must be a non-empty string (or null)", field="system_instruction")
    if len(value) > MAX_SYSTEM_INSTRUCTION_CHARS:
        raise InvalidRequestError(f"system_instruction is {len(value)} characters; at most "
                                  f"{MAX_SYSTEM_INSTRUCTION_CHARS} are accepted", field="system_instruction")
    # Control and format characters (NUL, escapes, bidi overrides) change what a reader sees of the
    # prompt without being visible: a plain instruction has none.
    bad = sorted({f"U+{ord(c):04X}" for c in value
                  if c not in _ALLOWED_CONTROLS and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")})
    if bad:
        raise InvalidRequestError(f"system_instruction holds control or invisible characters ({', '.join(bad[:5])}); "
                                  f"write it as plain text", field="system_instruction")
    return value


def chat_options(model_type: str, *, apply_chat_template: bool | None = None,
                 fewshot_as_multiturn: bool | None = None, system_instruction: str | None = None) -> dict:
    """The canonical chat options of a submission; unset ones follow the model type (chat → on)."""
    if model_type not in MODEL_TYPES:
        raise InvalidRequestError(f"unknown model_type {model_type!r}; known: {', '.join(MODEL_TYPES)}",
                                  field="model_type")
    apply = model_type == "chat" if apply_chat_template is None else _bool(apply_chat_template, "apply_chat_template")
    multiturn = apply if fewshot_as_multiturn is None else _bool(fewshot_as_multiturn, "fewshot_as_multiturn")
    if multiturn and not apply:
        raise InvalidRequestError("fewshot_as_multiturn needs apply_chat_template: few-shot turns are chat messages",
                                  field="fewshot_as_multiturn")
    return {"apply_chat_template": apply, "fewshot_as_multiturn": multiturn,
            "system_instruction": _system_instruction(system_instruction)}


def options_from_args(args: dict) -> dict:
    """The chat options a task spec carries (as the worker put them), checked again on the evaluator's side.

    A spec without them (a suite run outside a submission, an old run) gets plain prompts.
    """
    if not set(args) & set(CHAT_KEYS):
        return {"apply_chat_template": False, "fewshot_as_multiturn": False, "system_instruction": None}
    try:
        return chat_options("pretrained", apply_chat_template=args.get("apply_chat_template", False),
                            fewshot_as_multiturn=args.get("fewshot_as_multiturn", False),
                            system_instruction=args.get("system_instruction"))
    except InvalidRequestError as exc:
        raise ValueError(exc.message) from exc
