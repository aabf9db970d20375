"""CLIP-style evaluations through open_clip (DESIGN §5), with mCLIPEval's metric names.

- zero-shot classification: acc1, acc5, mean per-class recall; class prompts per language
  from the set's templates, averaged per class as in CLIP's prompt ensembling.
- image↔text retrieval: IR@1/5/10 (a caption finds its image, averaged over captions), TR@1/5/10
  (an image finds one of its captions, averaged over images) and their mean, MR.
- compositionality (Winoground): text, image and group score.

A task names a bundled set (`dataset: multimodal/<set>`) or a standard one
(`clip_benchmark_dataset: <name>`, suite clip-open, read by standard_sets.py from `dataset_root`),
and a `language`. Bundled files are checked against the set's manifest before anything is scored;
standard sets are digested file by file. The dataset's identity and digest, a hash of the
resolved config and the images/s of the evaluation go into the provenance.
"""
import hashlib
import json
import math
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from evaluators.base import (
    EvalOutcome,
    EvalSpec,
    Evaluator,
    MetricValue,
    ProgressFn,
    SampleRecord,
)
from evaluators.multimodal.generators import images_digest
from evaluators.multimodal.standard_sets import (
    SETS,
    DatasetUnavailableError,
    RetrievalSet,
    ZeroShotSet,
    open_standard_set,
)
from evaluators.precision import torch_dtype

__all__ = ["Compositionality", "DatasetUnavailableError", "Retrieval", "ZeroShotClassification"]


# ---------------------------------------------------------------- data


def load_bundled_set(dataset: str, datasets_dir: Path) -> tuple[Path, dict, list[dict]]:
    """(folder, manifest, test rows) of a bundled set under `datasets_dir`, every file checked against the manifest."""
    folder = datasets_dir / dataset
    if not (folder / "manifest.json").is_file():
        raise DatasetUnavailableError(f"bundled set {dataset!r} is missing (no {folder}/manifest.json); "
                                      f"regenerate it: python -m evaluators.multimodal.generators")
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in manifest["splits"].values():
        _check(folder / split["file"], split["sha256"])
    for name, sha in manifest["files"].items():
        _check(folder / name, sha)
    rows = [json.loads(line) for line in (folder / manifest["splits"]["test"]["file"]).read_text().splitlines()]
    paths = sorted({p for row in rows for p in ([row["image"]] if "image" in row else row["images"])})
    test_images = {p: hashlib.sha256((folder / p).read_bytes()).hexdigest() for p in paths}
    train_images = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in (folder / "images").rglob("*.png") if p.relative_to(folder).as_posix() not in test_images}
    if images_digest({**test_images, **train_images}) != manifest["images"]["sha256"]:
        raise RuntimeError(f"the images of {dataset} do not match its manifest")
    return folder, manifest, rows


def _check(path: Path, sha: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise RuntimeError(f"{path} does not match its manifest (sha256 {digest[:12]} ≠ {sha[:12]})")


def _bundled_provenance(folder: Path, manifest: dict) -> dict:
    return {"name": manifest["name"], "version": manifest["version"], "seed": manifest["seed"],
            "manifest_sha256": hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest(),
            "sha256": {s: v["sha256"] for s, v in manifest["splits"].items()},
            "images_sha256": manifest["images"]["sha256"]}


def _standard(spec: EvalSpec, language: str, kind: str):
    name = spec.args["clip_benchmark_dataset"]
    if name in SETS and SETS[name][0] != kind:
        raise ValueError(f"{name} is a {SETS[name][0]} set, not a {kind} one")
    # The task's own dataset_root first, else the worker's folder for standard sets.
    return open_standard_set(name, language, spec.args.get("dataset_root") or spec.clip_benchmark_dir)


@dataclass
class PairsSet:
    """Winoground-style pairs: bundled only (clip_benchmark's winoground needs the gated HF set)."""
    folder: Path
    rows: list[dict]
    provenance: dict


# ---------------------------------------------------------------- encoding


class Encoder:
    """Normalised embeddings of images and texts in batches; times the image side for images/s."""

    def __init__(self, loaded, batch_size: int):
        self.loaded, self.batch_size = loaded, batch_size
        self.image_seconds, self.images = 0.0, 0

    def images_of(self, images) -> np.ndarray:
        """Per item a file path or a PIL image (standard sets such as CIFAR hold pixels, not files)."""
        import torch
        from PIL import Image

        out = []
        started = time.perf_counter()
        for i in range(0, len(images), self.batch_size):
            batch = [Image.open(p) if isinstance(p, Path) else p for p in images[i:i + self.batch_size]]
            pixels = torch.stack([self.loaded.preprocess(im.convert("RGB")) for im in batch])
            with torch.no_grad():
                emb = self.loaded.model.encode_image(pixels.to(self.loaded.device, self._dtype()))
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        self.image_seconds += time.perf_counter() - started
        self.images += len(images)
        return np.concatenate(out)

    def texts_of(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.loaded.tokenizer(texts[i:i + self.batch_size]).to(self.loaded.device)
            with torch.no_grad():
                emb = self.loaded.model.encode_text(tokens)
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(out)

    def _dtype(self):
        return torch_dtype(self.loaded.dtype)

    @property
    def images_per_s(self) -> float:
        return round(self.images / self.image_seconds, 2) if self.image_seconds else 0.0


def class_embeddings(encoder: Encoder, classes: list[str], templates: list[str]) -> np.ndarray:
    """CLIP's prompt ensemble: per class the mean of its normalised prompt embeddings, renormalised."""
    # format(c, c=c) fills both the bundled sets' `{}` and clip_benchmark's `{c}` templates.
    prompts = [t.format(c, c=c) for c in classes for t in templates]
    text = encoder.texts_of(prompts).reshape(len(classes), len(templates), -1).mean(axis=1)
    return text / np.linalg.norm(text, axis=-1, keepdims=True)


# ---------------------------------------------------------------- metrics (pure numpy)


def ranks_of_targets(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target column: how many columns score strictly higher."""
    target_scores = scores[np.arange(len(scores)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    ranks = ranks_of_targets(logits, labels)
    k = min(5, logits.shape[1])
    recalls = [float((ranks[labels == c] == 0).mean()) for c in np.unique(labels)]
    return {"acc1": float((ranks == 0).mean()), "acc5": float((ranks < k).mean()),
            "mean_per_class_recall": float(np.mean(recalls))}


def retrieval_ranks(similarity: np.ndarray, caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per caption the rank of its image, per image the rank of its best-ranked caption).

    similarity[i, j] = image i · caption j; caption j describes image caption_image[j]. Every caption
    scoring above an image's best caption is a negative, so counting them gives that caption's rank.
    """
    image_ranks = ranks_of_targets(similarity.T, caption_image)
    best = np.full(len(similarity), -np.inf)
    np.maximum.at(best, caption_image, similarity[caption_image, np.arange(len(caption_image))])
    text_ranks = (similarity > best[:, None]).sum(axis=1)
    return image_ranks, text_ranks


def retrieval_metrics(similarity: np.ndarray, caption_image: np.ndarray | None = None) -> dict[str, float]:
    """IR@k over captions, TR@k over images, as CLIP papers and clip_benchmark count them; MR their mean.

    Without caption_image, caption i describes image i.
    """
    if caption_image is None:
        caption_image = np.arange(similarity.shape[1])
    image_ranks, text_ranks = retrieval_ranks(similarity, caption_image)
    metrics = {}
    for k in (1, 5, 10):
        metrics[f"IR@{k}"] = float((image_ranks < k).mean())
        metrics[f"TR@{k}"] = float((text_ranks < k).mean())
    metrics["MR"] = float(np.mean(list(metrics.values())))
    return metrics


def winoground_scores(s: np.ndarray) -> dict[str, np.ndarray]:
    """s[p, c, i] = caption c · image i of pair p; per-pair booleans, as Winoground defines them."""
    text = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
    image = (s[:, 0, 0] > s[:, 0, 1]) & (s[:, 1, 1] > s[:, 1, 0])
    return {"text_score": text, "image_score": image, "group_score": text & image}


def _binomial_stderr(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n > 1 else 0.0


# ---------------------------------------------------------------- evaluators


class _ClipEvaluator(Evaluator):
    family = "clip"
    version = "1"

    def evaluate(self, model, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        language = spec.args.get("language", "en")
        data = self._load(spec, language)  # fails here, before any encoding, when the data is not there
        encoder = Encoder(model, int(spec.args.get("batch_size", 64)))
        progress("encode", 0.0)
        values, samples, extra = self._score(data, language, encoder, progress)
        n = len(samples)
        metrics = [MetricValue(name, value, stderr=_binomial_stderr(value, n) if "@" not in name and name != "MR"
                               else None, n=n, primary=name == spec.primary_metric)
                   for name, value in values.items()]
        resolved = {"evaluator": self.name, "args": spec.args, "language": language, **extra}
        libraries = ["open_clip_torch", "torch", "pillow"]
        if "clip_benchmark_dataset" in spec.args:
            libraries += ["torchvision", "clip-benchmark"]
        provenance = {
            "dataset": data.provenance,
            "config_hash": hashlib.sha256(json.dumps(resolved, sort_keys=True, ensure_ascii=False).encode()).hexdigest(),
            "images_per_s": encoder.images_per_s, "images": encoder.images, "batch_size": encoder.batch_size,
            "language": language, "seed": spec.seed, "device": model.device, "precision": model.dtype,
            "library_versions": {lib: version(lib) for lib in libraries},
        }
        progress("done", 1.0)
        return EvalOutcome(metrics=metrics, samples=samples, provenance=provenance)

    def _load(self, spec: EvalSpec, language: str):
        raise NotImplementedError

    def _score(self, data, language, encoder, progress):
        raise NotImplementedError


class ZeroShotClassification(_ClipEvaluator):
    name = "clip-zeroshot"

    def _load(self, spec, language) -> ZeroShotSet:
        if "clip_benchmark_dataset" in spec.args:
            return _standard(spec, language, "zero-shot")
        folder, manifest, rows = load_bundled_set(spec.args["dataset"], spec.datasets_folder)
        return ZeroShotSet(images=[folder / r["image"] for r in rows], labels=np.array([r["label"] for r in rows]),
                           classes=json.loads((folder / "classes.json").read_text())[language],
                           templates=json.loads((folder / "templates.json").read_text())[language],
                           ids=[r["image"] for r in rows], provenance=_bundled_provenance(folder, manifest))

    def _score(self, data: ZeroShotSet, language, encoder, progress):
        text = class_embeddings(encoder, data.classes, data.templates)
        progress("encode", 0.3)
        logits = encoder.images_of(data.images) @ text.T
        ranks = ranks_of_targets(logits, data.labels)
        samples = [SampleRecord(i, data.ids[i], data.classes[label], data.classes[int(logits[i].argmax())],
                                {"correct": int(ranks[i] == 0), "rank": int(ranks[i])})
                   for i, label in enumerate(data.labels.tolist())]
        return (classification_metrics(logits, data.labels), samples,
                {"templates": data.templates, "classes": data.classes})


class Retrieval(_ClipEvaluator):
    name = "clip-retrieval"

    def _load(self, spec, language) -> RetrievalSet:
        if "clip_benchmark_dataset" in spec.args:
            return _standard(spec, language, "retrieval")
        folder, manifest, rows = load_bundled_set(spec.args["dataset"], spec.datasets_folder)
        captions = [r["captions"][language] for r in rows]
        if len(set(captions)) != len(captions):
            raise RuntimeError("retrieval needs one distinct caption per image")
        return RetrievalSet(images=[folder / r["image"] for r in rows], captions=[[c] for c in captions],
                            ids=[r["image"] for r in rows], provenance=_bundled_provenance(folder, manifest))

    def _score(self, data: RetrievalSet, language, encoder, progress):
        flat = [c for caps in data.captions for c in caps]
        caption_image = np.repeat(np.arange(len(data.captions)), [len(caps) for caps in data.captions])
        text = encoder.texts_of(flat)
        progress("encode", 0.3)
        similarity = encoder.images_of(data.images) @ text.T
        image_ranks, text_ranks = retrieval_ranks(similarity, caption_image)
        best_image_rank = np.full(len(data.images), np.iinfo(np.int64).max)
        np.minimum.at(best_image_rank, caption_image, image_ranks)
        # Per image: its best caption's rank (TR) and its own best rank over its captions (IR).
        samples = [SampleRecord(i, data.ids[i], caps[0], flat[int(similarity[i].argmax())],
                                {"text_rank": int(text_ranks[i]), "image_rank": int(best_image_rank[i]),
                                 "captions": len(caps)})
                   for i, caps in enumerate(data.captions)]
        return retrieval_metrics(similarity, caption_image), samples, {}


class Compositionality(_ClipEvaluator):
    name = "clip-winoground"

    def _load(self, spec, language) -> PairsSet:
        if "clip_benchmark_dataset" in spec.args:
            raise ValueError("clip-winoground runs on bundled pair sets only (dataset: multimodal/<set>)")
        folder, manifest, rows = load_bundled_set(spec.args["dataset"], spec.datasets_folder)
        return PairsSet(folder, rows, _bundled_provenance(folder, manifest))

    def _score(self, data: PairsSet, language, encoder, progress):
        rows = data.rows
        text = encoder.texts_of([c for r in rows for c in r["captions"][language]]).reshape(len(rows), 2, -1)
        progress("encode", 0.3)
        images = encoder.images_of([data.folder / p for r in rows for p in r["images"]]).reshape(len(rows), 2, -1)
        s = np.einsum("pcd,pid->pci", text, images)
        per_pair = winoground_scores(s)
        samples = [SampleRecord(i, " | ".join(r["images"]), " | ".join(r["captions"][language]),
                                "", {"kind": r["kind"], **{k: int(v[i]) for k, v in per_pair.items()},
                                     "scores": [[round(float(x), 6) for x in row] for row in s[i]]})
                   for i, r in enumerate(rows)]
        return {k: float(v.mean()) for k, v in per_pair.items()}, samples, {}
