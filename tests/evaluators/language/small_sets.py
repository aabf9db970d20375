"""Fixtures for lm-eval runs that must be quick: a datasets folder whose arithmetic_mc test split is
cut to a few dozen items (its manifest re-hashed, so the evaluator's sha256 check still holds), and
tiny checkpoints with and without a chat template. Imported by the test modules that use them."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from core.config import get_settings
from evaluators.base import EvalSpec
from runners.eval_sandbox import with_worker_folders
from tests.conftest import DATA_DIR

ITEMS = 30
CHAT_TEMPLATE = ("{%- for m in messages -%}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor -%}"
                 "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}")


def build_small_datasets(root: Path, items: int = ITEMS) -> Path:
    source = get_settings().datasets_dir
    if not (root / "lm_eval_tasks").exists():
        shutil.copytree(source / "lm_eval_tasks", root / "lm_eval_tasks")
    folder = root / "language" / "arithmetic_mc"
    if not folder.exists():
        shutil.copytree(source / "language" / "arithmetic_mc", folder)
        test = folder / "test.jsonl"
        test.write_text("".join(test.read_text().splitlines(keepends=True)[:items]))
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["splits"]["test"].update(rows=items, sha256=hashlib.sha256(test.read_bytes()).hexdigest())
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


@pytest.fixture
def small_datasets(monkeypatch) -> Path:
    """DATASETS_DIR pointed at the cut-down copy for this test (the evaluation child inherits it too)."""
    root = build_small_datasets(DATA_DIR / "small-datasets")
    monkeypatch.setenv("DATASETS_DIR", str(root))
    get_settings.cache_clear()
    yield root
    monkeypatch.undo()
    get_settings.cache_clear()


def worker_spec(spec: EvalSpec) -> EvalSpec:
    """The spec as a worker hands it over: its data folders from the settings, which `small_datasets`
    points at the cut-down copy (an evaluator reads no settings of its own)."""
    return with_worker_folders(spec, get_settings())


def with_chat_template(source: Path, out: Path, template: str = CHAT_TEMPLATE) -> Path:
    """A copy of a tiny checkpoint whose tokenizer carries `template` (saved as transformers saves it)."""
    from transformers import AutoTokenizer

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    tokenizer.chat_template = template
    tokenizer.save_pretrained(str(out))
    return out
