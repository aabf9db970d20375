"""Tiny GPT-2 style checkpoints built from code: for the demo, the tests and benchmarks.

Nothing is downloaded: the tokenizer is trained here with `tokenizers` on the bundled
train splits, and training (if any) runs a few hundred AdamW steps on the CPU.
The result is a normal Hugging Face folder (config.json, model.safetensors, tokenizer
files, README.md, LICENSE) that the real loader reads like any hub model.
"""
import random
from pathlib import Path

from evaluators.base import BUNDLED_DATASETS_DIR
from evaluators.train_splits import train_texts


def build_tokenizer(texts: list[str], vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>", pad_token="<|endoftext|>")


def build_causal_lm(out_dir: Path, *, train_steps: int = 0, seed: int = 0, n_layer: int = 2, n_embd: int = 64,
                    card: str = "A tiny GPT-2 style model built by Evalboard for demos and tests.",
                    datasets_dir: Path = Path(BUNDLED_DATASETS_DIR)) -> Path:
    """Write a tiny GPT-2 checkpoint folder; `train_steps` AdamW steps on the train splits under `datasets_dir`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    texts = train_texts(datasets_dir)
    tokenizer = build_tokenizer(texts)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=4,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    if train_steps:
        _train(model, tokenizer, texts, train_steps, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "README.md").write_text(f"# {out_dir.name}\n\n{card}\nTrained for {train_steps} steps (seed {seed}).\n")
    (out_dir / "LICENSE").write_text("Apache-2.0\n")
    return out_dir


def _train(model, tokenizer, texts: list[str], steps: int, seed: int, batch_size: int = 32) -> None:
    import torch

    rng = random.Random(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    eos = tokenizer.eos_token
    # Matrices this small gain nothing from a second thread, and on a shared CPU the threads'
    # spin-waiting made training ~9x slower (measured: 0.40 s/step with 2 threads, 0.045 with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            batch = [eos + t + eos for t in rng.sample(texts, batch_size)]
            _accumulate_batch_gradient(model, tokenizer, batch)
            optimiser.step()
            optimiser.zero_grad()
    finally:
        torch.set_num_threads(threads)


def _accumulate_batch_gradient(model, tokenizer, batch: list[str], micro_batches: int = 4) -> None:
    """The gradient of the batch's mean token loss, computed in micro-batches of similar length.

    Padded to its longest text, a batch that holds one reading-comprehension passage costs the
    whole batch that length; sorted by length and split, each part pads only to its own longest.
    Each part's mean loss is weighted by its share of the batch's predicted tokens, so the sum of
    the parts' gradients is the whole batch's.
    """
    lengths = [len(ids) for ids in tokenizer(batch)["input_ids"]]
    ordered = [text for _, text in sorted(zip(lengths, batch), key=lambda pair: pair[0])]
    total = sum(n - 1 for n in lengths)  # every token but each text's first is predicted
    size = -(-len(ordered) // micro_batches)
    for start in range(0, len(ordered), size):
        enc = tokenizer(ordered[start:start + size], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        predicted = int((labels[:, 1:] != -100).sum())
        (model(**enc, labels=labels).loss * (predicted / total)).backward()
