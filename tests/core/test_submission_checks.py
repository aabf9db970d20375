"""core.submission_checks: each check alone, on the real database, with the hostile cases first.

The routes' answers (status codes, the same words from POST /submissions and its pre-flight) are
tested in tests/api/test_submissions.py and tests/api/test_preflight.py; here the functions are
called as the CLI's pre-flight and other callers would, without HTTP."""
from datetime import timedelta

import pytest

from core import submission_checks as checks
from core.catalog import get_suite
from core.config import get_settings
from core.crud import create_submission, create_user, get_or_create_model, get_or_404
from core.db import session_scope
from core.errors import InvalidRequestError, NotFoundError
from core.models import Checkpoint, Family, HardwareProfile, Model, Submission, utcnow

LANGUAGE = "language-core"


def field_of(excinfo) -> str:
    return excinfo.value.field


def add_worker(session, hardware_class: str = "cpu", seen_ago: timedelta = timedelta(0)) -> None:
    session.add(HardwareProfile(hardware_class=hardware_class, host="h", worker=f"w-{seen_ago}", device_name="cpu",
                                device_count=1, memory_bytes=1, last_seen_at=utcnow() - seen_ago))
    session.flush()


def add_checkpoint(session, user, sha: str = "a" * 64, family: Family = Family.causal_lm) -> Checkpoint:
    from core.crud import record_uploader
    checkpoint = Checkpoint(sha256=sha, family=family, format="tar", size_bytes=1, storage_uri="store:x",
                            params=1000, uploaded_by=user.id)
    session.add(checkpoint)
    session.flush()
    record_uploader(session=session, checkpoint=checkpoint, user=user)
    return checkpoint


@pytest.mark.parametrize("names, field", [
    (["world_facts", "world_facts"], "tasks"),  # twice
    (["../../etc/passwd"], "tasks"),            # not a task of the suite
    (["world_facts\n"], "tasks"),
])
def test_task_names_are_the_suites_own_each_once(names, field):
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.resolve_tasks(suite=get_suite(LANGUAGE), names=names)
    assert field_of(excinfo) == field


def test_no_task_names_mean_the_whole_suite():
    suite = get_suite(LANGUAGE)
    assert checks.resolve_tasks(suite=suite, names=None) == list(suite.tasks)
    assert [t.name for t in checks.resolve_tasks(suite=suite, names=["world_facts"])] == ["world_facts"]


@pytest.mark.parametrize("name", ["gpu-h200", "cpu ", "CPU", "cpu\x00", "cpu;rm -rf /", ""])
def test_only_configured_hardware_classes_are_accepted(name):
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.check_hardware_class(hardware_class=name)
    assert field_of(excinfo) == "hardware_class" and "known: cpu" in str(excinfo.value)
    checks.check_hardware_class(hardware_class="cpu")


def test_a_webhook_needs_a_secret_and_a_public_address():
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.check_webhook_secret(webhook_url="https://example.org/hook", webhook_secret=None)
    assert field_of(excinfo) == "webhook_secret"
    for url in ("http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data", "http://[::1]/"):
        with pytest.raises(InvalidRequestError) as excinfo:
            checks.check_webhook_address(webhook_url=url)
        assert field_of(excinfo) == "webhook_url", url
    checks.check_webhook_address(webhook_url=None)  # no webhook: nothing to check


def test_no_live_worker_is_counted_and_refused_only_where_configured(monkeypatch):
    with session_scope() as s:
        add_worker(s, seen_ago=timedelta(minutes=3))  # gone: seen before the live window
        assert checks.require_live_worker(session=s, hardware_class="cpu") == 0
        monkeypatch.setattr(get_settings(), "refuse_without_live_worker", True)
        with pytest.raises(InvalidRequestError) as excinfo:
            checks.require_live_worker(session=s, hardware_class="cpu")
        assert field_of(excinfo) == "hardware_class"
        add_worker(s, seen_ago=timedelta(seconds=30))
        assert checks.require_live_worker(session=s, hardware_class="cpu") == 1


def test_the_family_and_the_parameter_cap(monkeypatch):
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.check_family(suite=get_suite(LANGUAGE), family="clip")
    assert field_of(excinfo) == "suite"
    checks.check_family(suite=get_suite(LANGUAGE), family="causal-lm")
    monkeypatch.setattr(get_settings(), "max_params_float32", 1000)
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.check_param_cap(params=1001, precision="float32")
    assert field_of(excinfo) == "precision" and "1,001" in str(excinfo.value)
    checks.check_param_cap(params=1000, precision="float32")
    checks.check_param_cap(params=None, precision="float32")  # unknown count: the worker re-checks


@pytest.mark.parametrize("names", [["<script>alert(1)</script>"], ["a" * 201], ["org/m", "org/m"], ["-leading"],
                                   [""], ["org/m\u202e"]])
def test_base_models_are_plain_names_of_a_merge(names):
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.declared_base_models(names=names, model_type="merge")
    assert field_of(excinfo) == "base_models"


def test_base_models_belong_to_merges_only():
    with pytest.raises(InvalidRequestError):
        checks.declared_base_models(names=["org/m"], model_type="fine-tuned")
    assert checks.declared_base_models(names=["org/m@main", "org/n"], model_type="merge") == ["org/m@main", "org/n"]


def test_a_chat_template_is_for_causal_lm_suites_only():
    with pytest.raises(InvalidRequestError) as excinfo:
        checks.prompt_options(suite=get_suite("clip-core"), model_type="chat", apply_chat_template=None,
                              fewshot_as_multiturn=None, system_instruction=None)
    assert field_of(excinfo) == "apply_chat_template"
    chat = checks.prompt_options(suite=get_suite(LANGUAGE), model_type="chat", apply_chat_template=None,
                                 fewshot_as_multiturn=None, system_instruction=None)
    assert chat == {"apply_chat_template": True, "fewshot_as_multiturn": True, "system_instruction": None}


def test_a_checkpoint_is_one_of_the_users_uploads_named_exactly_once():
    with session_scope() as s:
        alice, mallory = create_user(session=s, name="alice"), create_user(session=s, name="mallory")
        mine = add_checkpoint(s, alice)
        for sha, source in ((None, None), (mine.sha256, "hf://org/name@main")):
            with pytest.raises(InvalidRequestError) as excinfo:
                checks.resolve_checkpoint(session=s, user=alice, checkpoint_sha256=sha, source=source)
            assert field_of(excinfo) == "checkpoint_sha256"
        # Another author's sha256 answers as an unknown one: a hash seen elsewhere is no key.
        with pytest.raises(NotFoundError):
            checks.resolve_checkpoint(session=s, user=mallory, checkpoint_sha256=mine.sha256, source=None)
        assert checks.resolve_checkpoint(session=s, user=alice, checkpoint_sha256=mine.sha256, source=None) == mine
        with pytest.raises(NotFoundError) as excinfo:
            checks.check_base_model(session=s, user=mallory, suite=get_suite(LANGUAGE), base_model=mine.sha256)
        assert field_of(excinfo) == "base_model"


def test_a_duplicate_is_the_same_users_same_configuration_only():
    suite = get_suite(LANGUAGE)
    chat = {"apply_chat_template": False, "fewshot_as_multiturn": False, "system_instruction": None}
    with session_scope() as s:
        alice, bob = create_user(session=s, name="alice"), create_user(session=s, name="bob")
        checkpoint = add_checkpoint(s, alice)
        model = get_or_create_model(session=s, owner=alice, name="m", family=Family.causal_lm, license=None,
                                    params=None)
        submission, _ = create_submission(session=s, model=model, checkpoint=checkpoint, suite=suite,
                                          tasks=list(suite.tasks)[:1], user=alice, hardware_class="cpu",
                                          precision="float32", revision=None, chat_options=chat)
        same = dict(session=s, checkpoint=checkpoint, suite=suite, precision="float32", hardware_class="cpu",
                    chat=chat, base_model=None)
        assert checks.find_duplicate(user=alice, **same) == submission
        assert checks.find_duplicate(user=bob, **same) is None  # never handed to someone else
        assert checks.find_duplicate(user=alice, **{**same, "precision": "bfloat16"}) is None
        assert checks.find_duplicate(user=alice, **{**same, "chat": {**chat, "apply_chat_template": True}}) is None
        # The tasks are part of it: the whole suite after one task is a new submission.
        assert checks.find_duplicate(user=alice, **same, tasks=list(suite.tasks)[:1]) == submission
        assert checks.find_duplicate(user=alice, **same, tasks=list(suite.tasks)) is None


def test_get_or_404_names_what_is_missing():
    with session_scope() as s:
        with pytest.raises(NotFoundError, match="^no model 7$"):
            get_or_404(session=s, table=Model, key=7)
        with pytest.raises(NotFoundError, match="no submission"):
            get_or_404(session=s, table=Submission, key="00000000-0000-0000-0000-000000000000")
        alice = create_user(session=s, name="alice")
        model = get_or_create_model(session=s, owner=alice, name="m", family=Family.causal_lm, license=None,
                                    params=None)
        assert get_or_404(session=s, table=Model, key=model.id) == model
