"""Demo models: built from code, uploaded and submitted through the API like any author's."""
from pathlib import Path

from cli.client import EvalboardClient

# name → AdamW steps on the bundled train splits; more training should rank higher.
DEMO_CAUSAL_LMS = {"tiny-gpt2-untrained": 0, "tiny-gpt2-brief": 200, "tiny-gpt2-longer": 400}


def build_demo_models(out_dir: Path) -> dict[str, Path]:
    from evaluators.language.tiny_models import build_causal_lm

    built = {}
    for name, steps in DEMO_CAUSAL_LMS.items():
        folder = out_dir / name
        if not (folder / "model.safetensors").exists():
            build_causal_lm(folder, train_steps=steps, seed=0)
        built[name] = folder
    return built


def submit_demo_models(client: EvalboardClient, out_dir: Path, suite: str = "language-core") -> list[str]:
    ids = []
    for name, folder in build_demo_models(out_dir).items():
        checkpoint = client.upload_checkpoint(folder, "causal-lm")
        submission = client.submit(model_name=name, checkpoint_sha256=checkpoint["sha256"], suite=suite,
                                   license="Apache-2.0")
        ids.append(submission["id"])
    return ids
