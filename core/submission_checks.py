"""What a submission must pass before anything is written, as keyword-only functions.

POST /submissions and its pre-flight (POST /submissions/check, which the CLI asks before an
upload) call the same functions in the same order, so both refuse a request with the same 4xx
and the same words (tests/api/test_preflight.py holds them together). Each check raises a
core.errors exception naming the field at fault; none writes, except `resolve_checkpoint`,
which records a pinned hub model as a checkpoint row (in the caller's transaction).
"""
from dataclasses import dataclass

from sqlmodel import Session, select

from core import crud, hub, precisions, webhooks
from core.catalog import Suite, TaskSpec, get_suite
from core.config import Settings, get_settings
from core.errors import InvalidRequestError, NotFoundError
from core.licenses import check_license_link
from core.models import Checkpoint, Family, Run, Status, Submission, User
from core.submission_options import chat_options
from core.workers import live_worker_count


@dataclass(frozen=True)
class CommonChecks:
    """What the checks both the submission and its pre-flight make found out."""
    suite: Suite
    tasks: list[TaskSpec]
    live_workers: int
    license_link: str | None


def check_common(*, session: Session, suite: str, tasks: list[str] | None, hardware_class: str, precision: str,
                 license: str | None, license_link: str | None, webhook_url: str | None,
                 webhook_secret: str | None, settings: Settings | None = None) -> CommonChecks:
    """The checks that need no checkpoint, in the order both routes make them."""
    settings = settings or get_settings()
    the_suite = get_suite(suite)
    the_tasks = resolve_tasks(suite=the_suite, names=tasks)
    check_hardware_class(hardware_class=hardware_class, settings=settings)
    check_webhook_secret(webhook_url=webhook_url, webhook_secret=webhook_secret)
    link = check_license_link(license_link, license) if license or license_link else None
    check_webhook_address(webhook_url=webhook_url, settings=settings)
    workers = require_live_worker(session=session, hardware_class=hardware_class, settings=settings)
    check_precision(session=session, precision=precision, hardware_class=hardware_class)
    return CommonChecks(suite=the_suite, tasks=the_tasks, live_workers=workers, license_link=link)


def resolve_tasks(*, suite: Suite, names: list[str] | None) -> list[TaskSpec]:
    """The suite's tasks a submission runs: all, or those named, each once (a name twice is a 422 naming it)."""
    if not names:
        return list(suite.tasks)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidRequestError(f"task {name!r} is listed twice in tasks; name each task once", field="tasks")
        seen.add(name)
    return [suite.task(name) for name in names]


def check_hardware_class(*, hardware_class: str, settings: Settings | None = None) -> None:
    """Only the configured classes (an allow-list): each has its own queue."""
    known = (settings or get_settings()).hardware_classes
    if hardware_class not in known:
        raise InvalidRequestError(f"unknown hardware class {hardware_class!r}; known: {', '.join(known)}",
                                  field="hardware_class")


def check_webhook_secret(*, webhook_url: str | None, webhook_secret: str | None) -> None:
    if webhook_url and not webhook_secret:
        raise InvalidRequestError("a webhook needs a webhook_secret (16+ characters) to sign its calls",
                                  field="webhook_secret")


def check_webhook_address(*, webhook_url: str | None, settings: Settings | None = None) -> None:
    """A webhook goes to a public address only (checked again, resolving afresh, when it is sent)."""
    if not webhook_url:
        return
    why = webhooks.refusal(webhook_url, allow_private=(settings or get_settings()).webhook_allow_private)
    if why:
        raise InvalidRequestError(f"webhook_url is refused: {why}", field="webhook_url")


def require_live_worker(*, session: Session, hardware_class: str, settings: Settings | None = None) -> int:
    """The class's live workers; none is a refusal only where the deployment says so (else a warning)."""
    workers = live_worker_count(session=session, hardware_class=hardware_class)
    if not workers and (settings or get_settings()).refuse_without_live_worker:
        raise InvalidRequestError(f"no {hardware_class} worker is online; try another hardware class or later",
                                  field="hardware_class")
    return workers


def no_worker_warning(hardware_class: str, *, would: bool = False) -> str:
    """The warning beside an accepted submission (or pre-flight, `would`) whose class has no live worker."""
    wait = "would wait" if would else "wait"
    return (f"no {hardware_class} worker has been seen in the last minutes: the runs {wait} in the queue until "
            f"one starts")


def check_precision(*, session: Session, precision: str, hardware_class: str) -> None:
    """A precision some worker of the class has shown it runs (8/4-bit waits until one has)."""
    supported = crud.supported_precisions(session=session, hardware_class=hardware_class)
    why = precisions.refusal(precision, hardware_class, supported)
    if why:
        raise InvalidRequestError(why, field="precision")


def check_family(*, suite: Suite, family: str) -> None:
    """The checkpoint is of the family the suite evaluates."""
    if family != suite.family:
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, but the checkpoint is "
                                  f"{family}", field="suite")


def check_param_cap(*, params: int | None, precision: str, settings: Settings | None = None) -> None:
    """At most the configured parameter count for the precision (unknown counts pass: the worker re-checks)."""
    cap = precisions.param_cap(settings or get_settings(), precision)
    if params and params > cap:
        raise InvalidRequestError(f"the checkpoint has {params:,} parameters, over the cap of {cap:,} for "
                                  f"{precision}; a lower precision may fit", field="precision")


def prompt_options(*, suite: Suite, model_type: str, apply_chat_template: bool | None,
                   fewshot_as_multiturn: bool | None, system_instruction: str | None) -> dict:
    """The canonical chat options (core.submission_options); a chat template only for causal-lm suites."""
    chat = chat_options(model_type, apply_chat_template=apply_chat_template,
                        fewshot_as_multiturn=fewshot_as_multiturn, system_instruction=system_instruction)
    if chat["apply_chat_template"] and suite.family != "causal-lm":
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, which have no chat "
                                  f"template", field="apply_chat_template")
    return chat


def declared_base_models(*, names: list[str], model_type: str) -> list[str]:
    """A merge's declared sources: short plain names (hub ids, with or without a revision), shown as text."""
    if names and model_type != "merge":
        raise InvalidRequestError("base_models is for merges: set model_type to merge", field="base_models")
    for name in names:
        if not (0 < len(name) <= 200) or not all(c.isalnum() or c in "._-/@:" for c in name) or not name[0].isalnum():
            raise InvalidRequestError(f"base_models: {name[:60]!r} is not a model name (letters, digits and ._-/@: "
                                      f"only, up to 200 characters)", field="base_models")
    if len(set(names)) != len(names):
        raise InvalidRequestError("base_models names a model twice", field="base_models")
    return list(names)


def check_base_model(*, session: Session, user: User, suite: Suite, base_model: str | None) -> None:
    """An adapter's base: causal-lm suites only; an uploaded base must be one of the user's own uploads."""
    if not base_model:
        return
    if suite.family != "causal-lm":
        raise InvalidRequestError("base_model names an adapter's base: only causal-lm suites take adapters",
                                  field="base_model")
    if not base_model.startswith("hf://") and crud.checkpoint_of_uploader(
            session=session, sha256=base_model, user=user) is None:
        raise NotFoundError("none of your uploaded checkpoints has the base_model's sha256; upload the base "
                            "first, or name it on the hub as hf://org/name@commit", field="base_model")


def resolve_checkpoint(*, session: Session, user: User, checkpoint_sha256: str | None, source: str | None,
                       settings: Settings | None = None) -> Checkpoint:
    """The checkpoint a submission names: one of the user's uploads, or a hub model pinned to its commit."""
    if (checkpoint_sha256 is None) == (source is None):
        raise InvalidRequestError("give either checkpoint_sha256 (an upload) or source (hf://… or hf-hub:…), "
                                  "not both or neither", field="checkpoint_sha256")
    if source:
        return pinned_hub_checkpoint(session=session, user=user, source=source, settings=settings)
    # Only the user's own uploads: another author's sha256 answers exactly as an unknown one.
    checkpoint = crud.checkpoint_of_uploader(session=session, sha256=checkpoint_sha256, user=user)
    if checkpoint is None:
        raise NotFoundError("none of your uploaded checkpoints has this sha256; "
                            "upload it first with POST /api/v1/checkpoints", field="checkpoint_sha256")
    return checkpoint


def pinned_hub_checkpoint(*, session: Session, user: User, source: str, settings: Settings | None = None
                          ) -> Checkpoint:
    """hf://… or hf-hub:…, pinned to its commit (core.hub); one checkpoint row per pinned content."""
    clip = hub.is_clip_source(source)
    pinned = (hub.pin_clip if clip else hub.pin)(source, (settings or get_settings()).max_params())
    checkpoint = crud.get_checkpoint(session=session, sha256=pinned.sha256)
    if checkpoint is None:
        family = Family.clip if clip else Family.causal_lm
        checkpoint = Checkpoint(sha256=pinned.sha256, family=family, format="hub", size_bytes=0,
                                storage_uri=pinned.uri, params=pinned.params, uploaded_by=user.id)
        session.add(checkpoint)
        session.flush()
    crud.record_uploader(session=session, checkpoint=checkpoint, user=user)  # hub weights are anyone's to name
    return checkpoint


def find_duplicate(*, session: Session, user: User, checkpoint: Checkpoint, suite: Suite, precision: str,
                   hardware_class: str, chat: dict, base_model: str | None,
                   tasks: list[TaskSpec] | None = None) -> Submission | None:
    """The user's own earlier submission of the same configuration (not cancelled), if any.

    Per owner: the same configuration submitted by someone else is theirs, never handed over. The
    prompts (chat template or not) are part of the configuration: the same weights with and without
    the template are two submissions; the model type is a label and is not. So are the suite's version
    and the tasks asked for: a whole-suite submission after a one-task one is a new submission, not the
    earlier one handed back."""
    candidates = session.exec(select(Submission).where(
        Submission.submitted_by == user.id, Submission.checkpoint_id == checkpoint.id, Submission.suite == suite.name,
        Submission.suite_version.is_not_distinct_from(suite.version),
        Submission.precision == precision, Submission.hardware_class == hardware_class,
        Submission.chat_options == chat, Submission.base_model.is_not_distinct_from(base_model),
        Submission.status != Status.cancelled).order_by(Submission.submitted_at.desc())).all()
    if tasks is None:
        return candidates[0] if candidates else None
    wanted = {t.name for t in tasks}
    for candidate in candidates:
        if set(session.exec(select(Run.task).where(Run.submission_id == candidate.id)).all()) == wanted:
            return candidate
    return None


def check_rate_limit(*, session: Session, user: User) -> None:
    """At most N new submissions (re-runs included) per user in any rolling 24 hours; duplicates are free,
    so this comes after `find_duplicate`. 429 with Retry-After (core.crud.check_daily_limit)."""
    crud.check_daily_limit(session=session, user=user)
