"""Tiny standard sets written in the exact on-disk layouts clip_benchmark and torchvision read.

The pixels and captions are the bundled clip-core ones (so a briefly trained tiny CLIP scores
off chance), re-saved in each set's format: Flickr30k's Karpathy text file, MSCOCO's COCO-format
JSON over val2014/, XTD's multilingual_mscoco_captions-<lang>.json, CIFAR's pickled batches,
ImageNet's meta.bin and val/<wnid>/ folders.
"""
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from core.config import get_settings

MULTIMODAL = get_settings().datasets_dir / "multimodal"
# A second, distinct caption for some images: the retrieval sets have several captions per image.
EXTRA = ("a picture of {}", "an image showing {}")


def scene_rows(n: int) -> list[dict]:
    rows = [json.loads(line) for line in (MULTIMODAL / "shapes_scenes" / "test.jsonl").read_text().splitlines()]
    return rows[:n]


def captions_of(row: dict, i: int, language: str) -> list[str]:
    """One, two or three captions per image, in turn."""
    base = row["captions"][language]
    return [base] + [t.format(base) for t in EXTRA[:i % 3]]


def _jpeg(row: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(MULTIMODAL / "shapes_scenes" / row["image"]).convert("RGB").save(out, quality=95)
    return out


def flickr30k(root: Path, n: int = 24) -> dict[str, list[str]]:
    """root/flickr30k_test_karpathy.txt ("image,caption" lines under a header) and the images; image → captions."""
    root.mkdir(parents=True, exist_ok=True)
    expected, lines = {}, ["image,caption"]
    for i, row in enumerate(scene_rows(n)):
        name = f"{1000 + i}.jpg"
        _jpeg(row, root / name)
        expected[name] = captions_of(row, i, "en")
        lines += [f"{name},{c}" for c in expected[name]]
    (root / "flickr30k_test_karpathy.txt").write_text("\n".join(lines) + "\n")
    return expected


def mscoco(root: Path, n: int = 24) -> dict[str, list[str]]:
    """root/coco_test_karpathy.json (COCO captions format) and root/val2014/ images; file name → captions."""
    images, annotations, expected = [], [], {}
    for i, row in enumerate(scene_rows(n)):
        name = f"COCO_val2014_{i:012d}.jpg"
        _jpeg(row, root / "val2014" / name)
        images.append({"id": 500 + i, "file_name": name, "width": 64, "height": 64})
        expected[name] = captions_of(row, i, "en")
        annotations += [{"id": len(annotations) + k + 1, "image_id": 500 + i, "caption": c}
                        for k, c in enumerate(expected[name])]
    (root / "coco_test_karpathy.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return expected


def xtd(root: Path, language: str, n: int = 24) -> dict[str, list[str]]:
    """root/multilingual_mscoco_captions-<lang>.json with absolute image paths, as clip_benchmark writes it."""
    paths, captions = [], []
    for i, row in enumerate(scene_rows(n)):
        paths.append(str(_jpeg(row, root / "multilingual_mscoco" / "images" / f"{i:012d}.jpg")))
        captions.append(row["captions"][language])
    (root / f"multilingual_mscoco_captions-{language}.json").write_text(json.dumps(
        {"image_paths": paths, "annotations": captions, "indicies": list(range(n))}, ensure_ascii=False))
    return {p: [c] for p, c in zip(paths, captions)}


def cifar10(root: Path, n: int = 60) -> tuple[list[Image.Image], list[int], list[str], dict[str, str]]:
    """root/cifar-10-batches-py/ as the official archive unpacks: pickled batches and batches.meta.

    The pixels are the bundled digits (32×32) and the class names digit words. Returns the test
    images, labels, class names and each file's md5 (torchvision checks the official ones).
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (MULTIMODAL / "digits" / "test.jsonl").read_text().splitlines()][:n]
    images = [Image.open(MULTIMODAL / "digits" / r["image"]).convert("RGB").resize((32, 32)) for r in rows]
    labels = [r["label"] for r in rows]
    # CIFAR's layout: one row of 3072 bytes per image, the red plane, then green, then blue.
    data = np.stack([np.asarray(im).transpose(2, 0, 1).reshape(-1) for im in images]).astype(np.uint8)
    classes = json.loads((MULTIMODAL / "digits" / "classes.json").read_text())["en"]
    batches = {"test_batch": {"batch_label": "testing batch 1 of 1", "data": data, "labels": labels}}
    for b in range(1, 6):  # torchvision checks the train batches too, even for the test split
        batches[f"data_batch_{b}"] = {"batch_label": f"training batch {b} of 5", "data": data[:2], "labels": labels[:2]}
    batches["batches.meta"] = {"label_names": classes, "num_cases_per_batch": n, "num_vis": 3072}
    md5 = {}
    for name, content in batches.items():
        (folder / name).write_bytes(pickle.dumps(content))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return images, labels, classes, md5


def imagenet(root: Path, wnids: list[str], per_class: int = 1) -> list[tuple[Path, int]]:
    """root/meta.bin (what torchvision's devkit parse writes) and root/val/<wnid>/*.JPEG; (image, label)."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    torch.save(({w: (f"class {w}",) for w in wnids}, []), root / "meta.bin")
    items, pixels = [], np.random.default_rng(0)
    for label, wnid in enumerate(sorted(wnids)):
        for k in range(per_class):
            path = root / "val" / wnid / f"ILSVRC2012_val_{label:05d}{k}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path, format="JPEG")
            items.append((path, label))
    return items
