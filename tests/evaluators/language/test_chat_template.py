"""Chat and instruct submissions: prompts go through the model's own chat template exactly as lm-eval's
own `--apply_chat_template` builds them, the template is recorded by its sha256, and a template that
does not render (or tries to leave transformers' Jinja sandbox) is the author's error."""
import hashlib

import pytest

from core.catalog import get_suite
from core.config import get_settings
from core.errors import InvalidRequestError
from core.submission_options import chat_options, options_from_args
from evaluators.base import EvalSpec
from evaluators.language.lm_eval_evaluator import LmEvalEvaluator, checked_chat, resolve_task_config
from evaluators.loaders import load_causal_lm
from tests.conftest import DATA_DIR
from tests.evaluators.language.small_sets import (  # noqa: F401
    CHAT_TEMPLATE,
    small_datasets,
    with_chat_template,
    worker_spec,
)

TASK = get_suite("language-core").task("arithmetic_mc")
SYSTEM = "You are a careful calculator. Answer with the number only."
CHAT = {"apply_chat_template": True, "fewshot_as_multiturn": True, "system_instruction": SYSTEM}
EVALUATOR = LmEvalEvaluator()  # one task index for the module, as a warm worker keeps it


def _spec(chat: dict | None = None, **args) -> EvalSpec:
    return worker_spec(EvalSpec(task=TASK.name, evaluator=TASK.evaluator, args={**TASK.args, **args},
                                primary_metric=TASK.primary_metric, chat=chat))


@pytest.fixture(scope="module")
def chat_dir(tiny_lm_dir):
    return with_chat_template(tiny_lm_dir, DATA_DIR / "models" / "tiny-chat")


def test_chat_prompts_equal_lm_evals_own_with_apply_chat_template(chat_dir, small_datasets, monkeypatch):
    import lm_eval

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    outcome = EVALUATOR.evaluate(load_causal_lm(chat_dir), _spec(CHAT, num_fewshot=2), lambda *a: None)

    # lm-eval on its own: it loads the folder itself (model="hf") and builds the chat prompts itself.
    config, _ = resolve_task_config({**TASK.args, "num_fewshot": 2}, datasets_dir=get_settings().datasets_dir)
    theirs = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(chat_dir), "device": "cpu",
                                                             "dtype": "float32"},
                                     tasks=[config], num_fewshot=2, batch_size=16, apply_chat_template=True,
                                     fewshot_as_multiturn=True, system_instruction=SYSTEM, random_seed=0,
                                     numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    logged = {s["doc_id"]: s["arguments"][0][0] for s in theirs["samples"][config["task"]]}
    ours = {r.index: r.input for r in outcome.samples}
    assert ours == logged and len(ours) == 30
    prompt = ours[0]
    assert prompt.startswith(f"<|system|>{SYSTEM}<|end|>") and prompt.endswith("<|assistant|>")
    assert prompt.count("<|user|>") == 3 and prompt.count("<|assistant|>") == 3  # two shots as turns, then the question
    reported = theirs["results"][config["task"]]
    assert {m.name: m.value for m in outcome.metrics} == {"acc": reported["acc,none"],
                                                          "acc_norm": reported["acc_norm,none"]}

    recorded = outcome.provenance["chat_template"]
    assert recorded["template_sha256"] == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert recorded["apply_chat_template"] and recorded["fewshot_as_multiturn"]
    assert recorded["system_instruction_sha256"] == hashlib.sha256(SYSTEM.encode()).hexdigest()


def test_plain_prompts_are_unchanged_when_the_template_is_off(chat_dir, small_datasets):
    outcome = EVALUATOR.evaluate(load_causal_lm(chat_dir), _spec(), lambda *a: None)
    assert outcome.samples[0].input.startswith("Question: ") and "<|" not in outcome.samples[0].input
    assert outcome.provenance["chat_template"]["template_sha256"] is None


@pytest.mark.parametrize("template, why", [
    ("{{ raise_exception('this template refuses every conversation') }}", "refuses every conversation"),
    # Reaching Python's object graph from a template: transformers' sandboxed Jinja stops it.
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
])
def test_a_template_that_fails_to_render_is_the_authors_error(tiny_lm_dir, small_datasets, template, why):
    folder = with_chat_template(tiny_lm_dir, DATA_DIR / "models" / "tiny-bad-chat", template)
    with pytest.raises(ValueError, match="chat template failed to render") as caught:
        EVALUATOR.evaluate(load_causal_lm(folder), _spec(CHAT), lambda *a: None)
    assert why in str(caught.value)


def test_a_chat_submission_on_a_checkpoint_without_a_template_is_refused_before_any_request(tiny_lm_dir,
                                                                                           small_datasets):
    with pytest.raises(ValueError, match="tokenizer has none"):
        EVALUATOR.evaluate(load_causal_lm(tiny_lm_dir), _spec(CHAT), lambda *a: None)


def test_chat_options_follow_the_model_type_and_refuse_what_is_not_plain_data():
    assert chat_options("chat") == {"apply_chat_template": True, "fewshot_as_multiturn": True,
                                    "system_instruction": None}
    assert chat_options("fine-tuned") == {"apply_chat_template": False, "fewshot_as_multiturn": False,
                                          "system_instruction": None}
    assert chat_options("chat", fewshot_as_multiturn=False)["apply_chat_template"]
    for bad, field in [({"model_type": "instruct;rm -rf"}, "model_type"),
                       ({"apply_chat_template": "yes"}, "apply_chat_template"),
                       ({"apply_chat_template": False, "fewshot_as_multiturn": True}, "fewshot_as_multiturn"),
                       ({"system_instruction": "Be nice\x1b[2J"}, "system_instruction"),
                       ({"system_instruction": "right\u202eto left"}, "system_instruction"),
                       ({"system_instruction": "x" * 4001}, "system_instruction"),
                       ({"system_instruction": "   "}, "system_instruction")]:
        kwargs = {k: v for k, v in bad.items() if k != "model_type"}
        with pytest.raises(InvalidRequestError) as caught:
            chat_options(bad.get("model_type", "chat"), **kwargs)
        assert caught.value.field == field, bad
    # The worker canonicalises what a spec's args carry (runners/jobs.py) …
    with pytest.raises(ValueError, match="true or false"):
        options_from_args({"apply_chat_template": 1})
    assert options_from_args({"task_yaml": "x.yaml"})["apply_chat_template"] is False
    # … and the evaluator checks the shape of what reaches it again: a spec is data, not trusted twice over.
    assert checked_chat(None) == options_from_args({})
    assert checked_chat(CHAT) == CHAT
    for bad, message in [({**CHAT, "apply_chat_template": 1}, "true or false"),
                         ({**CHAT, "system_instruction": ["x"]}, "text or null"),
                         ({**CHAT, "apply_chat_template": False}, "needs apply_chat_template"),
                         ({**CHAT, "template": "{{ x }}"}, "must be exactly"), ("yes", "must be exactly")]:
        with pytest.raises(ValueError, match=message):
            checked_chat(bad)
