"""The bundled sets' train splits as training material: texts for a causal LM (the demo models and
`efficiency-training` both train on them) and (image, caption) pairs for a CLIP (the demo CLIPs).

Every function takes the datasets folder (EvalSpec.datasets_folder in an evaluator, the bundled one
for the demo builders): nothing here reads the service's settings.
"""
import json
import random
from pathlib import Path


def train_texts(datasets_dir: Path, names: list[str] | None = None) -> list[str]:
    """The `text` of every train row of the named language sets (all of them when `names` is None)."""
    root = Path(datasets_dir) / "language"
    folders = [root / n for n in names] if names else sorted(p for p in root.iterdir() if p.is_dir())
    texts = []
    for folder in folders:
        for line in (folder / "train.jsonl").read_text().splitlines():
            texts.append(json.loads(line)["text"])
    return texts


def train_pairs(datasets_dir: Path, seed: int = 0) -> list[tuple[Path, str]]:
    """(image path, caption) from the image sets' train splits: scene captions and digit prompts, every language."""
    from evaluators.multimodal.generators import DIGIT_TEMPLATES, DIGITS

    root, rng = Path(datasets_dir) / "multimodal", random.Random(seed)
    pairs = []
    for line in (root / "shapes_scenes" / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        pairs += [(root / "shapes_scenes" / row["image"], caption) for caption in row["captions"].values()]
    for line in (root / "digits" / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        lang = rng.choice(list(DIGITS))
        template = rng.choice(DIGIT_TEMPLATES[lang])
        pairs.append((root / "digits" / row["image"], template.format(DIGITS[lang][row["label"]])))
    return pairs
