"""CLIP-style evaluations through open_clip (DESIGN §5), with mCLIPEval's metric names.

- zero-shot classification: acc1, acc5, mean per-class recall; class prompts per language
  from the set's templates, averaged per class as in CLIP's prompt ensembling.
- image↔text retrieval: IR@1/5/10 (a caption finds its image), TR@1/5/10 (an image finds its
  caption) and their mean, MR.
- compositionality (Winoground): text, image and group score.

A task names a bundled set (`dataset: multimodal/<set>`) and a `language`. Files are checked
against the set's manifest before anything is scored; the manifest's sha256, a hash of the
resolved config and the images/s of the evaluation go into the provenance. A task naming a
standard set (`clip_benchmark_dataset`, suite clip-open) needs that data on this deployment;
when it is not there the evaluator refuses with an error that says so.
"""
import hashlib
import json
import math
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.config import get_settings
from evaluators.base import (
    EvalOutcome,
    EvalSpec,
    Evaluator,
    MetricValue,
    ProgressFn,
    SampleRecord,
)
from evaluators.multimodal.generators import images_digest


class DatasetUnavailableError(RuntimeError):
    """A RuntimeError so the runner records it as the submission's task failing, at once, not retried."""


# ---------------------------------------------------------------- data


def load_bundled_set(dataset: str) -> tuple[Path, dict, list[dict]]:
    """(folder, manifest, test rows) of a bundled set, every file checked against the manifest."""
    folder = get_settings().datasets_dir / dataset
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


def refuse_standard_set(args: dict) -> None:
    """clip-open tasks: the data must already be on this machine (nothing is fetched at run time)."""
    name = args["clip_benchmark_dataset"]
    root = Path(args.get("dataset_root", get_settings().data_dir / "clip_benchmark")) / name
    hint = ("this deployment has no copy of it; an operator downloads it there beforehand with clip_benchmark "
            "(pip install clip_benchmark) — offline, use the clip-core suite")
    if not root.is_dir():
        raise DatasetUnavailableError(f"standard set {name!r} is not available: no data under {root}; {hint}")
    raise DatasetUnavailableError(f"standard set {name!r}: running clip_benchmark sets needs the connected "
                                  f"build of this evaluator; {hint}")


# ---------------------------------------------------------------- encoding


class Encoder:
    """Normalised embeddings of images and texts in batches; times the image side for images/s."""

    def __init__(self, loaded, batch_size: int):
        self.loaded, self.batch_size = loaded, batch_size
        self.image_seconds, self.images = 0.0, 0

    def images_of(self, paths: list[Path]) -> np.ndarray:
        import torch
        from PIL import Image

        out = []
        started = time.perf_counter()
        for i in range(0, len(paths), self.batch_size):
            pixels = torch.stack([self.loaded.preprocess(Image.open(p).convert("RGB"))
                                  for p in paths[i:i + self.batch_size]])
            with torch.no_grad():
                emb = self.loaded.model.encode_image(pixels.to(self.loaded.device, self._dtype()))
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        self.image_seconds += time.perf_counter() - started
        self.images += len(paths)
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
        import torch
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.loaded.dtype]

    @property
    def images_per_s(self) -> float:
        return round(self.images / self.image_seconds, 2) if self.image_seconds else 0.0


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


def retrieval_metrics(similarity: np.ndarray) -> dict[str, float]:
    """similarity[i, j] = image i · caption j, caption i describing image i."""
    n = len(similarity)
    text_ranks = ranks_of_targets(similarity, np.arange(n))  # image → its caption (TR)
    image_ranks = ranks_of_targets(similarity.T, np.arange(n))  # caption → its image (IR)
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
        if "clip_benchmark_dataset" in spec.args:
            refuse_standard_set(spec.args)
        folder, manifest, rows = load_bundled_set(spec.args["dataset"])
        language = spec.args.get("language", "en")
        encoder = Encoder(model, int(spec.args.get("batch_size", 64)))
        progress("encode", 0.0)
        values, samples, extra = self._score(folder, rows, language, encoder, progress)
        n = extra.pop("n", len(rows))
        metrics = [MetricValue(name, value, stderr=_binomial_stderr(value, n) if "@" not in name and name != "MR"
                               else None, n=n, primary=name == spec.primary_metric)
                   for name, value in values.items()]
        resolved = {"evaluator": self.name, "args": spec.args, "language": language, **extra}
        provenance = {
            "dataset": {"name": manifest["name"], "version": manifest["version"], "seed": manifest["seed"],
                        "manifest_sha256": hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest(),
                        "sha256": {s: v["sha256"] for s, v in manifest["splits"].items()},
                        "images_sha256": manifest["images"]["sha256"]},
            "config_hash": hashlib.sha256(json.dumps(resolved, sort_keys=True, ensure_ascii=False).encode()).hexdigest(),
            "images_per_s": encoder.images_per_s, "images": encoder.images, "batch_size": encoder.batch_size,
            "language": language, "seed": spec.seed, "device": model.device, "precision": model.dtype,
            "library_versions": {lib: version(lib) for lib in ("open_clip_torch", "torch", "pillow")},
        }
        progress("done", 1.0)
        return EvalOutcome(metrics=metrics, samples=samples, provenance=provenance)

    def _score(self, folder, rows, language, encoder, progress):
        raise NotImplementedError


class ZeroShotClassification(_ClipEvaluator):
    name = "clip-zeroshot"

    def _score(self, folder, rows, language, encoder, progress):
        classes = json.loads((folder / "classes.json").read_text())[language]
        templates = json.loads((folder / "templates.json").read_text())[language]
        prompts = [t.format(c) for c in classes for t in templates]
        text = encoder.texts_of(prompts).reshape(len(classes), len(templates), -1).mean(axis=1)
        text /= np.linalg.norm(text, axis=-1, keepdims=True)  # CLIP's prompt ensemble: mean, renormalised
        progress("encode", 0.3)
        images = encoder.images_of([folder / r["image"] for r in rows])
        logits = images @ text.T
        labels = np.array([r["label"] for r in rows])
        ranks = ranks_of_targets(logits, labels)
        samples = [SampleRecord(i, r["image"], classes[r["label"]], classes[int(logits[i].argmax())],
                                {"correct": int(ranks[i] == 0), "rank": int(ranks[i])}) for i, r in enumerate(rows)]
        return classification_metrics(logits, labels), samples, {"templates": templates, "classes": classes}


class Retrieval(_ClipEvaluator):
    name = "clip-retrieval"

    def _score(self, folder, rows, language, encoder, progress):
        captions = [r["captions"][language] for r in rows]
        if len(set(captions)) != len(captions):
            raise RuntimeError("retrieval needs one distinct caption per image")
        text = encoder.texts_of(captions)
        progress("encode", 0.3)
        similarity = encoder.images_of([folder / r["image"] for r in rows]) @ text.T
        image_ranks = ranks_of_targets(similarity.T, np.arange(len(rows)))
        text_ranks = ranks_of_targets(similarity, np.arange(len(rows)))
        samples = [SampleRecord(i, r["image"], captions[i], captions[int(similarity[i].argmax())],
                                {"text_rank": int(text_ranks[i]), "image_rank": int(image_ranks[i])})
                   for i, r in enumerate(rows)]
        return retrieval_metrics(similarity), samples, {}


class Compositionality(_ClipEvaluator):
    name = "clip-winoground"

    def _score(self, folder, rows, language, encoder, progress):
        text = encoder.texts_of([c for r in rows for c in r["captions"][language]]).reshape(len(rows), 2, -1)
        progress("encode", 0.3)
        images = encoder.images_of([folder / p for r in rows for p in r["images"]]).reshape(len(rows), 2, -1)
        s = np.einsum("pcd,pid->pci", text, images)
        per_pair = winoground_scores(s)
        samples = [SampleRecord(i, " | ".join(r["images"]), " | ".join(r["captions"][language]),
                                "", {"kind": r["kind"], **{k: int(v[i]) for k, v in per_pair.items()},
                                     "scores": [[round(float(x), 6) for x in row] for row in s[i]]})
                   for i, r in enumerate(rows)]
        return {k: float(v.mean()) for k, v in per_pair.items()}, samples, {}
