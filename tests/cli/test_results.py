"""CLI results explain themselves: overall, capabilities, rank and band, the primary-metric marker
and each metric's scale; `list`, `cancel` and bad ids say what they mean. (`submit --wait` printing
the same summary: tests/cli/test_commands.py.)"""
import psycopg
from sqlmodel import select

from core.catalog import get_suite
from core.db import session_scope
from core.models import Run, Score
from tests.cli.test_commands import evalboard
from tests.conftest import DATABASE_URL, make_token
from tests.seed import seed_scored_model


def submission_of(model_id: int) -> str:
    with psycopg.connect(DATABASE_URL) as conn:
        return str(conn.execute("SELECT id FROM submission WHERE model_id = %s", (model_id,)).fetchone()[0])


def every_task(value: float) -> dict[str, float]:
    """A score on every task of language-core: only complete rows are ranked."""
    return {task.name: value for task in get_suite("language-core").tasks}


def seed_board() -> str:
    """Three ranked models; alice's is second and has a chrF score beside its primary acc."""
    seed_scored_model("leader", every_task(0.95), owner="bob")
    mine = seed_scored_model("alice-model", {**every_task(0.7), "arithmetic_mc": 0.6}, owner="alice")
    seed_scored_model("trailer", every_task(0.3), owner="carl")
    submission_id = submission_of(mine)
    with session_scope() as s:
        run = s.exec(select(Run).where(Run.submission_id == submission_id, Run.task == "world_facts")).one()
        s.add(Score(run_id=run.id, metric="chrf", value=41.5, stderr=1.2, n=200))
    return submission_id


def test_results_show_standing_capabilities_legend_and_scales(api_url):
    submission_id = seed_board()
    shown = evalboard("results", submission_id, api_url=api_url)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "overall 0." in out and "rank 2 of 3" in out and "band " in out
    assert "capabilities: cognition 0." in out and "understanding 0." in out
    assert "0 = random guessing, 1 = perfect" in out
    chrf = next(line for line in out.splitlines() if "chrf" in line and "world_facts" in line)
    assert "41.5000" in chrf and "0–100" in chrf
    acc = next(line for line in out.splitlines() if "acc *" in line)
    assert "0–1" in acc
    assert "* primary metric: the one the board ranks by" in out and "chrf and ter are 0–100" in out
    assert "{" not in out  # no Python dicts


def test_format_choices_are_listed_and_checked(api_url):
    submission_id = seed_board()
    help_text = evalboard("results", "--help", api_url=api_url).stdout
    assert "table, json, csv, lm-eval, model-index" in help_text
    wrong = evalboard("results", submission_id, "--format", "xml", api_url=api_url)
    assert wrong.returncode == 2 and "'xml' is not one of: table, json" in wrong.stderr


def test_list_shows_your_submissions_and_cancel_of_a_finished_one_cancels_nothing(api_url):
    submission_id = seed_board()
    token = make_token("alice")
    listed = evalboard("list", token=token, api_url=api_url)
    assert listed.returncode == 0, listed.stderr
    tasks = len(every_task(0))
    assert submission_id in listed.stdout and "alice-model" in listed.stdout and f"{tasks}/{tasks}" in listed.stdout
    assert "leader" not in listed.stdout  # bob's
    cancelled = evalboard("cancel", submission_id, token=token, api_url=api_url)
    assert cancelled.returncode == 1
    assert "nothing was cancelled" in cancelled.stderr and "already ended (finished)" in cancelled.stderr
    for bad in ("12345", "DROP TABLE submission", "1b4e28ba-2fa1-11d2-883f"):
        result = evalboard("status", bad, api_url=api_url)
        assert result.returncode == 2 and "is not a submission id" in result.stderr
        assert "uuid" not in result.stderr.lower() and "Input should be" not in result.stderr


def test_results_of_a_submission_not_yet_scored_say_why_there_is_no_rank(api_url, tiny_lm_dir):
    token = make_token("kim")
    submitted = evalboard("submit", str(tiny_lm_dir), "--suite", "language-core", "--task", "world_facts",
                          token=token, api_url=api_url)
    assert submitted.returncode == 0, submitted.stderr
    shown = evalboard("results", submitted.stdout.split()[1], api_url=api_url)
    assert shown.returncode == 0, shown.stderr
    assert "queued" in shown.stdout and "not on the board: a model is ranked once its tasks have finished" in shown.stdout


def test_an_unranked_row_says_what_it_lacks():
    """A row of a track that lacks tasks (the board ranks only complete ones) says which."""
    from cli.render import results_summary
    payload = {"submission": {"model_name": "m", "suite": "language-core", "hardware_class": "cpu",
                              "precision": "float32", "status": "finished"}, "tasks": []}
    standing = {"overall": 0.41, "rank": None, "band": None, "track": "language-core@1", "coverage": "2/7 tasks",
                "missing_tasks": ["reading_comprehension", "word_problems"], "capabilities": {"cognition": 0.4}}
    text = results_summary(payload, standing).plain
    assert "overall 0.410 over the tasks done" in text
    assert "not ranked on track language-core@1: only models with every task are ranked (2/7 tasks)" in text
    assert "missing reading_comprehension, word_problems" in text
