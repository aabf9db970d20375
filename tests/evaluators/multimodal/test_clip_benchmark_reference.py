"""Our zero-shot and retrieval metrics equal clip_benchmark's own evaluate functions, to 1e-6.

clip_benchmark is fed the same loaded model, its tokenizer and preprocessing, the same images,
class names and templates: any difference is in how the metrics are computed.
"""
import json

import pytest
import torch
from PIL import Image

from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from evaluators.loaders import load
from evaluators.registry import get_evaluator
from tests.evaluators.multimodal import fabricate

DATA = get_settings().datasets_dir
CORE = get_suite("clip-core")


@pytest.fixture(scope="module")
def loaded(briefly_trained_clip_dir):
    return load("clip", briefly_trained_clip_dir)


class Images(torch.utils.data.Dataset):
    """(preprocessed image, target) pairs, as clip_benchmark's dataloaders yield them."""

    def __init__(self, paths, targets, preprocess, classes=None):
        self.paths, self.targets, self.preprocess, self.classes = paths, targets, preprocess, classes

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.preprocess(Image.open(self.paths[i]).convert("RGB")), self.targets[i]


def _ours(loaded, task, **args):
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args={**task.args, **args},
                    primary_metric=task.primary_metric)
    outcome = get_evaluator(task.evaluator).evaluate(loaded, spec, lambda stage, fraction: None)
    return {m.name: m.value for m in outcome.metrics}


def _retrieval_loader(dataset, batch_size=64):
    from clip_benchmark.datasets.builder import image_captions_collate_fn
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=image_captions_collate_fn)


def _clip_benchmark_retrieval(loaded, dataloader):
    from clip_benchmark.metrics import zeroshot_retrieval
    got = zeroshot_retrieval.evaluate(loaded.model, dataloader, loaded.tokenizer, "cpu", amp=False,
                                      recall_k_list=[1, 5, 10])
    return {f"{side}@{k}": got[f"{name}_retrieval_recall@{k}"]
            for k in (1, 5, 10) for side, name in (("IR", "image"), ("TR", "text"))}


def _accuracy(output, target, topk=(1,)):
    """clip_benchmark's accuracy() line for line, but .item() where it calls float() on a 1-element array,
    which NumPy 2.4 refuses (TypeError: only 0-dimensional arrays can be converted to Python scalars)."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).cpu().numpy().item() / n for k in topk]


@pytest.mark.parametrize("task", [t for t in CORE.tasks if t.evaluator == "clip-zeroshot"], ids=lambda t: t.name)
def test_zero_shot_equals_clip_benchmark(task, loaded, monkeypatch):
    from clip_benchmark.metrics import zeroshot_classification

    monkeypatch.setattr(zeroshot_classification, "accuracy", _accuracy)

    folder = DATA / task.args["dataset"]
    lang = task.args["language"]
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    classes = json.loads((folder / "classes.json").read_text())[lang]
    # clip_benchmark fills `{c}`; the bundled templates say `{}`: the same prompts either way.
    templates = [t.replace("{}", "{c}") for t in json.loads((folder / "templates.json").read_text())[lang]]
    dataset = Images([folder / r["image"] for r in rows], [r["label"] for r in rows], loaded.preprocess, classes)
    expected = zeroshot_classification.evaluate(loaded.model, torch.utils.data.DataLoader(dataset, batch_size=64),
                                                loaded.tokenizer, classes, templates, "cpu", amp=False)
    got = _ours(loaded, task)
    for name in ("acc1", "acc5", "mean_per_class_recall"):
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


@pytest.mark.parametrize("task", [t for t in CORE.tasks if t.evaluator == "clip-retrieval"], ids=lambda t: t.name)
def test_retrieval_equals_clip_benchmark(task, loaded):
    folder = DATA / task.args["dataset"]
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    dataset = Images([folder / r["image"] for r in rows], [[r["captions"][task.args["language"]]] for r in rows],
                     loaded.preprocess)
    expected = _clip_benchmark_retrieval(loaded, _retrieval_loader(dataset))
    got = _ours(loaded, task)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name


def test_retrieval_with_several_captions_per_image_equals_clip_benchmark(tmp_path, loaded):
    """Flickr30k's layout, read by clip_benchmark's own Flickr class for its side."""
    from clip_benchmark.datasets.flickr import Flickr

    fabricate.flickr30k(tmp_path / "flickr30k", n=40)
    dataset = Flickr(str(tmp_path / "flickr30k"), str(tmp_path / "flickr30k" / "flickr30k_test_karpathy.txt"),
                     transform=loaded.preprocess)
    expected = _clip_benchmark_retrieval(loaded, _retrieval_loader(dataset, batch_size=16))
    got = _ours(loaded, get_suite("clip-open").task("flickr30k"), dataset_root=str(tmp_path), batch_size=16)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
