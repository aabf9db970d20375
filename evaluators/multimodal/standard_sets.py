"""Standard CLIP benchmark sets (suite clip-open), read from disk where an operator put them.

Nothing is fetched at run time. clip_benchmark's `build_dataset` shells out to wget or kaggle
whenever a file is missing, whatever `download` says, so it is not called: each set is read with
the torchvision or clip_benchmark dataset class that `build_dataset` uses for it, with
download=False, after checking that its files are there. Class names and prompt templates are
the ones clip_benchmark ships, so the numbers compare with its published results.

A set's root is `<dataset_root>/<name>` (default dataset_root: EvalSpec.clip_benchmark_dir, the worker's
<data_dir>/clip_benchmark),
which is what `clip_benchmark eval --dataset_root "<dataset_root>/{dataset}"` downloads into:

  cifar10, cifar100    cifar-10-batches-py/ or cifar-100-python/ (torchvision checks the official md5s)
  imagenet1k           meta.bin and val/<wnid>/ (or the two ILSVRC2012 archives, which torchvision unpacks)
  flickr30k            flickr30k_test_karpathy.txt (zh: flickr30k_test_zh.txt) and the images it names
  mscoco_captions      coco_test_karpathy.json and val2014/
  multilingual_mscoco_captions   multilingual_mscoco_captions-<lang>.json and the images it names (XTD)
"""
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from core.errors import DatasetUnavailableError
from evaluators.multimodal.generators import images_digest


@dataclass
class ZeroShotSet:
    images: Sequence
    """Per item a file Path or an in-memory PIL image (CIFAR ships pixel arrays, not files)."""
    labels: np.ndarray
    classes: list[str]
    templates: list[str]
    """Prompts with `{}` (bundled sets) or `{c}` (clip_benchmark) where the class name goes."""
    ids: list[str]
    """Per item what sample records show as the input."""
    provenance: dict


@dataclass
class RetrievalSet:
    images: Sequence
    captions: list[list[str]]
    """Per image its captions, one or more (five for Flickr30k and MSCOCO)."""
    ids: list[str]
    provenance: dict


def set_root(name: str, dataset_root: str | Path | None = None) -> Path:
    """`<dataset_root>/<name>`; a dataset_root holding `{dataset}` is formatted, as clip_benchmark's CLI does."""
    if dataset_root is None:
        raise DatasetUnavailableError(f"standard set {name!r} is not available: the task names no dataset_root and "
                                      f"this evaluation was given no folder for standard sets "
                                      f"(EvalSpec.clip_benchmark_dir); offline, use the clip-core suite")
    base = str(dataset_root)
    return Path(base.format(dataset=name)) if "{dataset}" in base else Path(base) / name


def open_standard_set(name: str, language: str = "en",
                      dataset_root: str | Path | None = None) -> ZeroShotSet | RetrievalSet:
    """Read a standard set from its root; DatasetUnavailableError, naming the path, when it is not all there."""
    if name not in SETS:
        raise ValueError(f"unknown standard set {name!r}; known: {', '.join(sorted(SETS))}")
    root = set_root(name, dataset_root)
    if not root.is_dir():
        raise DatasetUnavailableError(
            f"standard set {name!r} is not available: no data under {root}; this deployment has no copy of it. "
            f"An operator puts it there beforehand (clip_benchmark's download, e.g. clip_benchmark eval "
            f"--dataset {name} --dataset_root <root>/{{dataset}}); offline, use the clip-core suite")
    try:
        data = SETS[name][1](name, root, language)
    except (RuntimeError, FileNotFoundError) as exc:  # ours, torchvision's "not found or corrupted", empty folders
        raise DatasetUnavailableError(f"standard set {name!r} under {root} is incomplete or corrupt: {exc}") from exc
    return data


# ---------------------------------------------------------------- clip_benchmark's packaged names and prompts


def _packaged(kind: str, language: str) -> dict:
    """clip_benchmark's <lang>_classnames.json or <lang>_zeroshot_classification_templates.json ({} if none)."""
    prefix = {"zh": "cn"}.get(language, language)  # clip_benchmark names its Chinese files cn_*
    file = resources.files("clip_benchmark.datasets") / f"{prefix}_{kind}.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def _templates(name: str, language: str) -> list[str]:
    # As build_dataset: the set's own templates, else ImageNet's, for that language.
    found = _packaged("zeroshot_classification_templates", language)
    templates = found.get(name) or found.get("imagenet1k")
    if not templates:
        raise ValueError(f"clip_benchmark has no {language} prompt templates for {name}")
    return templates


# ---------------------------------------------------------------- readers


def _require(path: Path) -> Path:
    if not path.exists():
        raise DatasetUnavailableError(f"{path} is missing")
    return path


def _only(name: str, language: str, languages: Sequence[str]) -> None:
    if language not in languages:
        raise ValueError(f"{name} has no {language} version here; languages: {', '.join(languages)}")


def _cifar(name: str, root: Path, language: str) -> ZeroShotSet:
    from PIL import Image
    from torchvision.datasets import CIFAR10, CIFAR100

    _only(name, language, ["en"])  # clip_benchmark uses the set's own English class names
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    folder = _require(root / cls.base_folder)
    ds = cls(root=str(root), train=False, download=False)  # raises unless every official file's md5 matches
    files = [folder / f for f, _ in ds.test_list] + [folder / ds.meta["filename"]]
    return ZeroShotSet(images=[Image.fromarray(x) for x in ds.data], labels=np.array(ds.targets),
                       classes=list(ds.classes), templates=_templates(name, language),
                       ids=[f"{ds.test_list[0][0]}[{i}]" for i in range(len(ds.data))],
                       provenance=_provenance(name, root, language, files))


def _imagenet(name: str, root: Path, language: str) -> ZeroShotSet:
    from torchvision.datasets import ImageNet

    classes = _packaged("classnames", language).get("imagenet1k")
    if not classes:
        raise ValueError(f"clip_benchmark has no {language} ImageNet class names")
    # meta.bin is read with torch.load(weights_only=True); without it torchvision unpacks the local archives.
    ds = ImageNet(root=str(root), split="val")
    if len(ds.wnids) != len(classes):  # labels index the sorted wnids: a partial val/ would shift them
        raise DatasetUnavailableError(f"{root / 'val'} holds {len(ds.wnids)} classes, not {len(classes)}")
    images = [Path(p) for p, _ in ds.samples]
    return ZeroShotSet(images=images, labels=np.array([t for _, t in ds.samples]), classes=classes,
                       templates=_templates(name, language), ids=[_relative(p, root) for p in images],
                       provenance=_provenance(name, root, language, [root / "meta.bin", *images]))


def _flickr(name: str, root: Path, language: str) -> RetrievalSet:
    from clip_benchmark.datasets.flickr import Flickr

    _only(name, language, ["en", "zh"])
    ann = _require(root / {"en": "flickr30k_test_karpathy.txt", "zh": "flickr30k_test_zh.txt"}[language])
    ds = Flickr(root=str(root), ann_file=str(ann))
    return _retrieval(name, root, language, ann, [(root / img, caps) for img, caps in ds.data])


def _coco(name: str, root: Path, language: str) -> RetrievalSet:
    from torchvision.datasets import CocoCaptions

    _only(name, language, ["en"])
    ann, images = _require(root / "coco_test_karpathy.json"), _require(root / "val2014")
    ds = CocoCaptions(root=str(images), annFile=str(ann))
    coco = ds.coco  # pycocotools' index of the annotation file; ds.ids are its image ids, sorted
    return _retrieval(name, root, language, ann, [
        (images / coco.loadImgs(i)[0]["file_name"], [a["caption"] for a in coco.loadAnns(coco.getAnnIds(imgIds=i))])
        for i in ds.ids])


def _xtd(name: str, root: Path, language: str) -> RetrievalSet:
    from clip_benchmark.datasets import multilingual_mscoco as xtd

    _only(name, language, xtd.SUPPORTED_LANGUAGES)
    ann = _require(root / xtd.OUTPUT_FILENAME_TEMPLATE.format(language))
    ds = xtd.Multilingual_MSCOCO(root=str(root), ann_file=str(ann))
    # clip_benchmark writes absolute image paths; relative ones are taken from the set's root.
    return _retrieval(name, root, language, ann, [(root / path, [caption]) for path, caption in ds.data])


def _retrieval(name, root, language, ann: Path, pairs: list[tuple[Path, list[str]]]) -> RetrievalSet:
    images = [p for p, _ in pairs]
    missing = [p for p in images if not p.is_file()]
    if missing:  # before anything is encoded: a set scored on part of its images would mislead
        raise DatasetUnavailableError(f"{len(missing)} of the {len(images)} images {ann.name} names are missing, "
                                      f"e.g. {missing[0]}")
    return RetrievalSet(images=images, captions=[list(c) for _, c in pairs], ids=[_relative(p, root) for p in images],
                        provenance={**_provenance(name, root, language, [ann, *images]),
                                    "annotation": _relative(ann, root)})


# name → (kind, reader(name, root, language)): the sets clip-open may name.
SETS: dict[str, tuple[str, Callable[[str, Path, str], ZeroShotSet | RetrievalSet]]] = {
    "cifar10": ("zero-shot", _cifar), "cifar100": ("zero-shot", _cifar), "imagenet1k": ("zero-shot", _imagenet),
    "flickr30k": ("retrieval", _flickr), "mscoco_captions": ("retrieval", _coco),
    "multilingual_mscoco_captions": ("retrieval", _xtd),
}


# ---------------------------------------------------------------- provenance


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _provenance(name: str, root: Path, language: str, files: list[Path]) -> dict:
    """Which data was scored: one sha256 over every file read (path and content), as for the bundled sets."""
    digest = images_digest({_relative(f, root): _sha256(f) for f in files})
    return {"name": name, "source": "clip_benchmark layout", "root": str(root), "split": "test",
            "language": language, "files": len(files), "files_sha256": digest}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
