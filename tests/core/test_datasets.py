"""The bundled sets are exactly what their seeded generators make, and fit the rules of DESIGN §5."""
import json
import re

import pytest

from core.config import get_settings
from evaluators.language.generators import GENERATORS, fresh_draw, write_set

LANGUAGE = get_settings().datasets_dir / "language"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_published_set_is_rebuilt_to_the_byte(name, tmp_path):
    published = json.loads((LANGUAGE / name / "manifest.json").read_text())
    rebuilt = write_set(name, tmp_path, seed=published["seed"])
    assert rebuilt == published
    for split in ("train", "test"):
        assert (tmp_path / name / f"{split}.jsonl").read_bytes() == (LANGUAGE / name / f"{split}.jsonl").read_bytes()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_test_split_has_200_items_none_of_them_in_train(name):
    test = [json.loads(line) for line in (LANGUAGE / name / "test.jsonl").read_text().splitlines()]
    train = (LANGUAGE / name / "train.jsonl").read_text()
    assert len(test) >= 200
    assert len({item["id"] for item in test}) == len(test)
    # Reading comprehension asks the same question of different passages: the prompt is both.
    assert len({(item.get("passage"), item["question"]) for item in test}) == len(test)
    for item in test:
        assert item["question"] not in train
        if "choices" in item:  # multiple choice: a valid gold index among distinct choices
            assert 0 <= item["gold"] < len(item["choices"]) == len(set(item["choices"]))
        else:  # free form: a non-empty reference answer
            assert isinstance(item["answer"], str) and item["answer"].strip()


@pytest.mark.parametrize("name", ["weekday_reasoning", "word_problems"])
def test_a_fresh_draw_asks_about_no_one_the_published_train_split_names(name):
    # Contamination is measured against a fresh draw only if that draw is itself unseen.
    train = (LANGUAGE / name / "train.jsonl").read_text()
    for item in fresh_draw(name, seed=999):
        person = re.match(r"[A-Z][a-z]+", item["question"]).group()
        assert not re.search(rf"\b{person}\b", train)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_a_fresh_draw_differs_from_the_published_one(name):
    published = [json.loads(line) for line in (LANGUAGE / name / "test.jsonl").read_text().splitlines()]
    assert fresh_draw(name, seed=999) != published


def test_every_suite_task_points_at_a_bundled_set_and_task_yaml():
    from core.catalog import load_suites
    from evaluators.registry import check_name
    for suite in load_suites().values():
        for task in suite.tasks:
            check_name(task.evaluator)
            assert 0 <= task.random_baseline < 1
            if "lm_eval_task" in task.args:  # a standard lm-eval task: checked in tests/evaluators
                assert suite.name in ("language-open", "language-open-v2", "language-zh")
                continue
            if task.evaluator == "lm-eval":
                assert (get_settings().datasets_dir / "lm_eval_tasks" / task.args["task_yaml"]).is_file()
            if task.evaluator == "lm-eval" or "dataset" in task.args:  # bundled data always has its manifest
                assert (get_settings().datasets_dir / task.args["dataset"] / "manifest.json").is_file()


def test_language_core_covers_every_capability_with_enough_sets():
    from collections import Counter

    from core.catalog import get_suite
    counts = Counter(task.capability for task in get_suite("language-core").tasks)
    assert counts["understanding"] >= 2 and counts["generation"] >= 2 and counts["cognition"] >= 3


def test_reading_comprehension_answers_are_in_the_passage_beside_other_peoples():
    # The distractors come from the same passage, so a model cannot answer without reading it.
    test = [json.loads(line) for line in (LANGUAGE / "reading_comprehension" / "test.jsonl").read_text().splitlines()]
    for item in test:
        answer = item["choices"][item["gold"]]
        assert answer in item["passage"]
        assert sum(choice in item["passage"] for choice in item["choices"]) >= 3
