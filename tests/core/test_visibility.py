"""What the public reads of a failure: one line, no host paths, no traceback; moderation kept apart
from the owner's withdrawal."""
import pytest

from core import visibility
from core.models import Family, Model, Role, User


@pytest.mark.parametrize("error, shown", [
    ("the checkpoint could not be loaded: OSError: /srv/data/artifacts/ab/model.safetensors: bad header",
     "the checkpoint could not be loaded: OSError: <path>: bad header"),
    ("FileNotFoundError: [Errno 2] No such file or directory: '/home/eval/.cache/x.json'",
     "FileNotFoundError: [Errno 2] No such file or directory: '<path>'"),
    (r"OSError: C:\Users\eval\model.bin is missing", "OSError: <path> is missing"),
    ("see ~/logs/run.txt and ./tmp/x or ../up/y", "see <path> and <path> or <path>"),
    ("could not open file:///etc/passwd", "could not open file:<path>"),
    ("evaluation failed: Traceback (most recent call last):", "evaluation failed"),
    ("line one\n  File \"/usr/lib/python3/x.py\", line 3\nValueError", "line one"),
    # Ordinary slashes between words and numbers stay.
    ("accuracy and/or loss: 1/2 tasks failed", "accuracy and/or loss: 1/2 tasks failed"),
    (None, None),
])
def test_the_public_reason_is_one_line_without_paths_or_traceback(error, shown):
    assert visibility.public_reason(error) == shown


def test_a_long_reason_is_cut_to_a_line():
    reason = visibility.public_reason("ValueError: " + "x" * 5000)
    assert len(reason) == visibility.PUBLIC_REASON_CHARS and reason.endswith("…")


def test_owner_and_admin_moderation_do_not_undo_each_other():
    model = Model(name="m", family=Family.causal_lm, owner_id=1)
    visibility.admin_hide(model, reason="copied weights")
    visibility.withdraw(model)
    visibility.republish(model)  # the owner's re-run
    assert model.hidden and visibility.visibility(model) == "hidden" and model.hidden_reason == "copied weights"
    visibility.withdraw(model)
    visibility.admin_unhide(model)  # the admin lifts theirs; the owner's withdrawal stands
    assert model.hidden and visibility.visibility(model) == "withdrawn"
    visibility.republish(model)
    assert not model.hidden and visibility.visibility(model) == "public"


def test_only_owner_and_admins_see_a_private_model():
    model = Model(name="m", family=Family.causal_lm, owner_id=1, hidden=True)
    owner, other, admin = User(id=1, name="a"), User(id=2, name="b"), User(id=3, name="r", role=Role.admin)
    assert [visibility.can_see(model, v) for v in (None, other, owner, admin)] == [False, False, True, True]
