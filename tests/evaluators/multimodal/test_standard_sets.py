"""clip-open's standard sets run from their on-disk layouts, offline, and score what an independent computation gives.

Each set is fabricated small in the exact layout clip_benchmark / torchvision read (fabricate.py);
the evaluator reads it from `dataset_root` with nothing fetched, and its metrics are checked
against the Reference scorer on the same images, captions, class names and templates.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import CIFAR10

from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from evaluators.multimodal.standard_sets import (
    DatasetUnavailableError,
    _packaged,
    _templates,
    open_standard_set,
)
from evaluators.registry import get_evaluator
from runners.eval_sandbox import with_worker_folders
from tests.evaluators.multimodal import fabricate

OPEN = get_suite("clip-open")


def _run(loaded, task_name: str, dataset_root: Path, **overrides):
    task = OPEN.task(task_name)
    args = {**task.args, "dataset_root": str(dataset_root), "batch_size": 16, **overrides}
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=args, primary_metric=task.primary_metric)
    outcome = get_evaluator(task.evaluator).evaluate(loaded, spec, lambda stage, fraction: None)
    return {m.name: m.value for m in outcome.metrics}, outcome


def _assert_close(got: dict, expected: dict):
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def _digest_covers(outcome, root: Path, files: int):
    dataset = outcome.provenance["dataset"]
    assert dataset["root"] == str(root) and dataset["files"] == files
    assert len(dataset["files_sha256"]) == 64
    assert "clip-benchmark" in outcome.provenance["library_versions"]


def test_flickr30k_retrieval_with_several_captions_per_image(tmp_path, loaded, reference):
    expected = fabricate.flickr30k(tmp_path / "flickr30k")
    got, outcome = _run(loaded, "flickr30k", tmp_path)
    _assert_close(got, reference.retrieval([tmp_path / "flickr30k" / p for p in expected], list(expected.values())))
    assert 0 < got["MR"] < 1
    assert [m.name for m in outcome.metrics if m.primary] == ["MR"]
    assert [s.input for s in outcome.samples] == list(expected)
    assert [s.metrics["captions"] for s in outcome.samples][:3] == [1, 2, 3]
    _digest_covers(outcome, tmp_path / "flickr30k", files=1 + len(expected))  # the annotation file and the images
    assert outcome.provenance["dataset"]["annotation"] == "flickr30k_test_karpathy.txt"


def test_mscoco_retrieval_from_its_coco_annotation_file(tmp_path, loaded, reference):
    expected = fabricate.mscoco(tmp_path / "mscoco_captions")
    got, outcome = _run(loaded, "mscoco_captions", tmp_path)
    images = [tmp_path / "mscoco_captions" / "val2014" / p for p in expected]
    _assert_close(got, reference.retrieval(images, list(expected.values())))
    _digest_covers(outcome, tmp_path / "mscoco_captions", files=1 + len(expected))


@pytest.mark.parametrize("task_name, language", [("xtd_zh", "zh"), ("xtd_de", "de")])
def test_xtd_retrieval_in_each_language(task_name, language, tmp_path, loaded, reference):
    expected = fabricate.xtd(tmp_path / "multilingual_mscoco_captions", language)
    got, outcome = _run(loaded, task_name, tmp_path)
    _assert_close(got, reference.retrieval([Path(p) for p in expected], list(expected.values())))
    assert outcome.samples[0].target == next(iter(expected.values()))[0]


def test_cifar10_zero_shot_through_torchvision(tmp_path, loaded, reference, monkeypatch):
    images, labels, classes, md5 = fabricate.cifar10(tmp_path / "cifar10")
    # torchvision accepts only files with the official archive's md5s: it is told the fabricated ones.
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{b}", md5[f"data_batch_{b}"]] for b in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    templates = _templates("cifar10", "en")
    assert len(templates) == 18 and "{c}" in templates[0]  # clip_benchmark's CIFAR prompts

    got, outcome = _run(loaded, "cifar10", tmp_path)
    _assert_close(got, reference.zero_shot(images, labels, classes, templates))
    assert [s.target for s in outcome.samples] == [classes[y] for y in labels]
    _digest_covers(outcome, tmp_path / "cifar10", files=2)  # test_batch and batches.meta


def test_cifar10_with_other_files_than_the_official_ones_is_refused(tmp_path, loaded):
    fabricate.cifar10(tmp_path / "cifar10")  # md5s not patched: torchvision rejects them
    with pytest.raises(DatasetUnavailableError, match="cifar10.*incomplete or corrupt.*not found or corrupted"):
        _run(loaded, "cifar10", tmp_path)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_imagenet1k_is_read_with_clip_benchmarks_names_and_prompts(language, tmp_path):
    # Not scored here: 1000 classes × 80 prompts is too many text encodings for a unit test on a CPU.
    wnids = [f"n{i:08d}" for i in range(1000)]
    items = fabricate.imagenet(tmp_path / "imagenet1k", wnids)
    data = open_standard_set("imagenet1k", language, tmp_path)
    assert data.classes == _packaged("classnames", language)["imagenet1k"]
    assert data.templates == _packaged("zeroshot_classification_templates", language)["imagenet1k"]
    assert len(data.templates) == 80
    assert list(zip(data.images, data.labels.tolist())) == items
    assert data.provenance["files"] == 1 + len(items)


def test_imagenet1k_with_a_partial_val_folder_is_refused(tmp_path):
    fabricate.imagenet(tmp_path / "imagenet1k", ["n01440764", "n01443537", "n01484850"])
    with pytest.raises(DatasetUnavailableError, match="holds 3 classes, not 1000"):
        open_standard_set("imagenet1k", "en", tmp_path)


@pytest.mark.parametrize("task", OPEN.tasks, ids=lambda t: t.name)
def test_a_missing_set_fails_at_once_naming_where_it_was_looked_for(task, loaded):
    # No dataset_root: the worker's folder for standard sets (settings.data_dir/clip_benchmark), which tests leave empty.
    root = get_settings().data_dir / "clip_benchmark" / task.args["clip_benchmark_dataset"]
    spec = with_worker_folders(EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args,
                                        primary_metric=task.primary_metric), get_settings())
    with pytest.raises(DatasetUnavailableError, match=re.escape(f"not available: no data under {root};")):
        get_evaluator(task.evaluator).evaluate(loaded, spec, lambda stage, fraction: None)


def test_without_a_dataset_root_or_a_workers_folder_a_standard_set_is_refused_in_words(loaded):
    task = OPEN.tasks[0]
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=task.args, primary_metric=task.primary_metric)
    with pytest.raises(DatasetUnavailableError, match="names no dataset_root"):
        get_evaluator(task.evaluator).evaluate(loaded, spec, lambda stage, fraction: None)


def test_missing_annotation_and_missing_images_are_named(tmp_path, loaded):
    expected = fabricate.flickr30k(tmp_path / "flickr30k")
    (tmp_path / "flickr30k" / next(iter(expected))).unlink()
    with pytest.raises(DatasetUnavailableError, match=r"1 of the 24 images .* missing, e\.g\. .*1000\.jpg"):
        _run(loaded, "flickr30k", tmp_path)
    (tmp_path / "flickr30k" / "flickr30k_test_karpathy.txt").unlink()
    with pytest.raises(DatasetUnavailableError, match="flickr30k_test_karpathy.txt is missing"):
        _run(loaded, "flickr30k", tmp_path)


def test_dataset_root_may_name_the_set_with_a_placeholder(tmp_path, loaded, reference):
    expected = fabricate.flickr30k(tmp_path / "sets" / "flickr30k-copy", n=12)
    got, _ = _run(loaded, "flickr30k", tmp_path / "sets" / "{dataset}-copy")
    _assert_close(got, reference.retrieval([tmp_path / "sets" / "flickr30k-copy" / p for p in expected],
                                           list(expected.values())))


def test_a_retrieval_set_under_a_zero_shot_evaluator_is_a_config_error(tmp_path, loaded):
    with pytest.raises(ValueError, match="flickr30k is a retrieval set, not a zero-shot one"):
        _run(loaded, "cifar10", tmp_path, clip_benchmark_dataset="flickr30k")


def test_fabricated_layouts_are_what_clip_benchmark_itself_reads(tmp_path):
    """The fabricated files parse with clip_benchmark's own dataset classes as they are built in build_dataset."""
    from clip_benchmark.datasets.flickr import Flickr
    from clip_benchmark.datasets.multilingual_mscoco import Multilingual_MSCOCO

    flickr = fabricate.flickr30k(tmp_path / "f")
    assert dict(Flickr(str(tmp_path / "f"), str(tmp_path / "f" / "flickr30k_test_karpathy.txt")).data) == flickr
    xtd = fabricate.xtd(tmp_path / "x", "zh")
    ds = Multilingual_MSCOCO(str(tmp_path / "x"), str(tmp_path / "x" / "multilingual_mscoco_captions-zh.json"))
    assert {p: [c] for p, c in ds.data} == xtd
    images, labels, _, md5 = fabricate.cifar10(tmp_path / "c")
    assert set(md5) == {n for n, _ in CIFAR10.train_list + CIFAR10.test_list} | {CIFAR10.meta["filename"]}
    assert np.asarray(images[0]).shape == (32, 32, 3) and len(labels) == len(images)
