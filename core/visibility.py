"""Who sees what: a model's moderation state, private models, and failures as the public reads them.

A model is private (`Model.hidden`) while an admin hides it or its owner has withdrawn it. Its
submissions, runs, results, samples and logs are then its owner's and the admins' only: to anyone
else they answer as if they did not exist. The two causes are kept apart so that neither party undoes
the other's: an owner's re-run republishes only what the owner withdrew, an admin lifting a hide
does not publish what the owner withdrew.

Failures carry the evaluation's own words, which can hold host paths and tracebacks. The owner (and
admins) read them whole, with the log tail; the public reads the error kind and one scrubbed line.
"""
import re

from core.models import Model, Role, Run, Status, User

PUBLIC_REASON_CHARS = 300
# A path starts a token (not "and/or", "1/2"): /abs, ./rel, ../rel, ~/home, C:\win; it runs to a
# space, quote or separator. URLs lose their path too (file:///…), which the public does not need.
_PATH = re.compile(r"""(?<![\w])(?:[A-Za-z]:\\|~/|\.{1,2}/|/)[^\s'"`,;:()\[\]]*""")


def _sync(model: Model) -> None:
    model.hidden = model.hidden_by_admin or model.withdrawn


def admin_hide(model: Model, *, reason: str | None) -> None:
    model.hidden_by_admin, model.hidden_reason = True, reason
    _sync(model)


def admin_unhide(model: Model) -> None:
    model.hidden_by_admin, model.hidden_reason = False, None
    _sync(model)


def withdraw(model: Model) -> None:
    """The owner takes the model off the board; moderation fields are not theirs to touch."""
    model.withdrawn = True
    _sync(model)


def republish(model: Model) -> None:
    """The owner undoes their own withdrawal (a re-run does); an admin's hide stands."""
    model.withdrawn = False
    _sync(model)


def visibility(model: Model) -> str:
    """public, hidden (by an admin) or withdrawn (by its owner)."""
    if model.hidden_by_admin:
        return "hidden"
    return "withdrawn" if model.withdrawn else "public"


def is_privileged(model: Model, viewer: User | None) -> bool:
    """The model's owner or an admin: they see private data and failures in full."""
    return viewer is not None and (viewer.role == Role.admin or viewer.id == model.owner_id)


def can_see(model: Model, viewer: User | None) -> bool:
    return not model.hidden or is_privileged(model, viewer)


def public_reason(error: str | None) -> str | None:
    """One line of an error, without host paths or traceback: what a visitor may read."""
    if not error:
        return error
    line = error.strip().splitlines()[0] if error.strip() else ""
    line = line.split("Traceback", 1)[0].rstrip(" :;,")
    line = _PATH.sub("<path>", line)
    if len(line) > PUBLIC_REASON_CHARS:
        line = line[:PUBLIC_REASON_CHARS - 1].rstrip() + "…"
    return line or "the evaluation failed"


def public_submission_error(error: str | None, runs: list[Run]) -> str | None:
    """A submission's error rebuilt from its failed runs' public reasons (the stored one joins raw errors)."""
    if not error:
        return error
    failed = [r for r in runs if r.status == Status.failed and r.error]
    return "; ".join(f"{r.task}: {public_reason(r.error)}" for r in failed) or public_reason(error)


def samples_are_gated(suite: str, task: str) -> bool:
    """Whether a task's per-sample records (prompts, answers) are its owner's only: the suite marks the
    task `gated` when its data's terms forbid publishing examples (GPQA). Scores stay public."""
    from core.catalog import load_suites
    spec = load_suites().get(suite)
    return spec is not None and any(t.name == task and t.gated for t in spec.tasks)


def can_read_samples(model: Model, viewer: User | None, *, suite: str, task: str) -> bool:
    return is_privileged(model, viewer) or not samples_are_gated(suite, task)


PRIVATE_PROVENANCE = ("log_tail",)


def public_provenance(provenance: dict) -> dict:
    """A run's provenance without what only its owner reads (the evaluation's log)."""
    return {k: v for k, v in provenance.items() if k not in PRIVATE_PROVENANCE}
