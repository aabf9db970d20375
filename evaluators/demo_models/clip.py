"""Tiny open_clip checkpoints built from code: for the demo, the tests and benchmarks.

Nothing is downloaded: the architecture is a small custom config (a 2-layer ViT on 32×32
inputs, a 2-layer text transformer), the tokenizer is open_clip's SimpleTokenizer whose BPE
vocabulary ships inside the package, and training (if any) is a few hundred contrastive
AdamW steps on the bundled train splits on the CPU. The folder is open_clip's hub layout
(open_clip_config.json, open_clip_model.safetensors) plus README.md and LICENSE, so the real
loader reads it like any submitted checkpoint.
"""
import json
from pathlib import Path

from evaluators.base import BUNDLED_DATASETS_DIR
from evaluators.train_splits import train_pairs

TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
    # Context 48 fits the longest Chinese caption in byte-level BPE tokens.
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2, "mlp_ratio": 2.0},
}
# The bundled images are rendered on a grey background: plain 0.5 normalisation suits them.
TINY_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
                   "resize_mode": "shortest"}
# name → contrastive steps; more training should rank higher (`evalboard demo-models` builds them).
DEMO_CLIPS = {"tiny-clip-untrained": 0, "tiny-clip-brief": 150}


def build_demo_clip_models(out_dir: Path) -> dict[str, Path]:
    """name → checkpoint folder, untrained then briefly trained; a folder already built is reused."""
    built = {}
    for name, steps in DEMO_CLIPS.items():
        folder = out_dir / name
        if not (folder / "open_clip_model.safetensors").exists():
            build_clip(folder, train_steps=steps, seed=0)
        built[name] = folder
    return built


def build_clip(out_dir: Path, *, train_steps: int = 0, seed: int = 0, batch_size: int = 64,
               card: str = "A tiny open_clip model built by Evalboard for demos and tests.",
               datasets_dir: Path = Path(BUNDLED_DATASETS_DIR)) -> Path:
    """Write a tiny open_clip checkpoint folder; `train_steps` contrastive AdamW steps on the train splits
    under `datasets_dir`."""
    import torch
    from safetensors.torch import save_file

    from evaluators.loaders.open_clip import _build, _preprocess, _tokenizer

    torch.manual_seed(seed)
    model = _build(TINY_CONFIG, "float32")
    if train_steps:
        _train(model, _preprocess(model, TINY_PREPROCESS), _tokenizer(TINY_CONFIG, None),
               train_pairs(datasets_dir, seed), train_steps, seed, batch_size)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Tied or shared tensors would break safetensors; open_clip's CLIP has none, so a plain copy is exact.
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              out_dir / "open_clip_model.safetensors")
    (out_dir / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": TINY_PREPROCESS}, indent=2) + "\n")
    (out_dir / "README.md").write_text(f"---\nlicense: apache-2.0\n---\n# {out_dir.name}\n\n{card}\n"
                                       f"Contrastively trained for {train_steps} steps (seed {seed}).\n")
    (out_dir / "LICENSE").write_text("Apache-2.0\n")
    return out_dir


def _train(model, preprocess, tokenizer, pairs: list[tuple[Path, str]], steps: int, seed: int,
           batch_size: int) -> None:
    """CLIP's symmetric InfoNCE on random batches; images and captions are encoded once up front."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    paths = sorted({p for p, _ in pairs})
    index = {p: i for i, p in enumerate(paths)}
    pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
    image_of = torch.tensor([index[p] for p, _ in pairs])
    tokens = tokenizer([caption for _, caption in pairs])
    generator = torch.Generator().manual_seed(seed)
    # The 49408-row token table is most of the parameters: keeping it at its random init makes a
    # step several times cheaper on a CPU, and the text transformer learns to read those vectors.
    model.token_embedding.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(steps):
        batch = torch.randperm(len(pairs), generator=generator)[:batch_size]
        # The same image twice in a batch would be a false negative: keep the first caption of each.
        _, first = torch.unique(image_of[batch], return_inverse=True)
        keep = torch.zeros(len(batch), dtype=torch.bool)
        seen: set[int] = set()
        for j, u in enumerate(first.tolist()):
            keep[j] = u not in seen
            seen.add(u)
        batch = batch[keep]
        image = F.normalize(model.encode_image(pixels[image_of[batch]]), dim=-1)
        text = F.normalize(model.encode_text(tokens[batch]), dim=-1)
        logits = model.logit_scale.exp() * image @ text.T
        labels = torch.arange(len(batch))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # ln 100, CLIP's cap
