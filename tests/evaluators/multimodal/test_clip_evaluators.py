"""The CLIP evaluators report what an independent computation on the same model and data gives."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from evaluators.registry import get_evaluator

CORE = get_suite("clip-core")
DATA = get_settings().datasets_dir


def _spec(task) -> EvalSpec:
    return EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args, primary_metric=task.primary_metric)


def _rows(dataset):
    return [json.loads(line) for line in (DATA / dataset / "test.jsonl").read_text().splitlines()]


def _run(loaded, task):
    return get_evaluator(task.evaluator).evaluate(loaded, _spec(task), lambda stage, fraction: None)


def _check_provenance(outcome, dataset):
    manifest = json.loads((DATA / dataset / "manifest.json").read_text())
    assert outcome.provenance["images_per_s"] > 0
    assert outcome.provenance["dataset"]["sha256"] == {s: v["sha256"] for s, v in manifest["splits"].items()}
    assert len(outcome.provenance["config_hash"]) == 64


@pytest.mark.parametrize("task", [t for t in CORE.tasks if t.evaluator == "clip-zeroshot"], ids=lambda t: t.name)
def test_zero_shot_equals_reference(task, loaded, reference):
    dataset, lang = task.args["dataset"], task.args["language"]
    rows = _rows(dataset)
    classes = json.loads((DATA / dataset / "classes.json").read_text())[lang]
    templates = json.loads((DATA / dataset / "templates.json").read_text())[lang]
    # clip_benchmark's zeroshot_classifier: per class, mean of normalised template embeddings, renormalised.
    weights = torch.stack([F.normalize(reference.texts([t.format(c) for t in templates]).mean(0), dim=0)
                           for c in classes])
    logits = reference.images([DATA / dataset / r["image"] for r in rows]) @ weights.T
    target = torch.tensor([r["label"] for r in rows])
    top5 = logits.topk(5, dim=1).indices
    acc1 = (top5[:, 0] == target).sum().item() / len(rows)
    acc5 = (top5 == target[:, None]).any(1).sum().item() / len(rows)
    pred = top5[:, 0].numpy()
    recall = np.mean([(pred[target.numpy() == c] == c).mean() for c in range(len(classes))])

    outcome = _run(loaded, task)
    got = {m.name: m.value for m in outcome.metrics}
    assert got["acc1"] == pytest.approx(acc1, abs=1e-9)
    assert got["acc5"] == pytest.approx(acc5, abs=1e-9)
    assert got["mean_per_class_recall"] == pytest.approx(recall, abs=1e-9)
    assert [m.name for m in outcome.metrics if m.primary] == ["acc1"]
    assert len(outcome.samples) == len(rows)
    _check_provenance(outcome, dataset)


@pytest.mark.parametrize("task", [t for t in CORE.tasks if t.evaluator == "clip-retrieval"], ids=lambda t: t.name)
def test_retrieval_equals_reference(task, loaded, reference):
    dataset, lang = task.args["dataset"], task.args["language"]
    rows = _rows(dataset)
    scores = reference.images([DATA / dataset / r["image"] for r in rows]) @ reference.texts(
        [r["captions"][lang] for r in rows]).T
    positive = torch.eye(len(rows), dtype=torch.bool)
    expected = {}
    for k in (1, 5, 10):  # clip_benchmark's recall_at_k: is a positive among the top k?
        expected[f"IR@{k}"] = positive.T.gather(1, scores.T.topk(k, dim=1).indices).any(1).sum().item() / len(rows)
        expected[f"TR@{k}"] = positive.gather(1, scores.topk(k, dim=1).indices).any(1).sum().item() / len(rows)
    expected["MR"] = sum(expected.values()) / 6

    outcome = _run(loaded, task)
    got = {m.name: m.value for m in outcome.metrics}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    assert 0 < got["MR"] < 1
    _check_provenance(outcome, dataset)


@pytest.mark.parametrize("task", [t for t in CORE.tasks if t.evaluator == "clip-winoground"], ids=lambda t: t.name)
def test_winoground_equals_reference(task, loaded, reference):
    dataset, lang = task.args["dataset"], task.args["language"]
    text_ok = image_ok = group_ok = 0
    rows = _rows(dataset)
    for r in rows:  # Winoground's definitions, pair by pair: c(caption, image)
        img = reference.images([DATA / dataset / p for p in r["images"]])
        txt = reference.texts(r["captions"][lang])
        c = (txt @ img.T).tolist()
        t = c[0][0] > c[1][0] and c[1][1] > c[0][1]
        i = c[0][0] > c[0][1] and c[1][1] > c[1][0]
        text_ok, image_ok, group_ok = text_ok + t, image_ok + i, group_ok + (t and i)

    outcome = _run(loaded, task)
    got = {m.name: m.value for m in outcome.metrics}
    n = len(rows)
    assert (got["text_score"], got["image_score"], got["group_score"]) == pytest.approx(
        (text_ok / n, image_ok / n, group_ok / n), abs=1e-9)
    assert [m.name for m in outcome.metrics if m.primary] == ["group_score"]
    _check_provenance(outcome, dataset)


def test_clip_open_refuses_with_a_clear_error_when_the_data_is_not_there(loaded):
    from evaluators.multimodal.clip_evaluators import DatasetUnavailableError
    task = get_suite("clip-open").task("cifar10")
    with pytest.raises(DatasetUnavailableError, match="cifar10.*not available.*clip-core"):
        _run(loaded, task)
