"""Load failures an author can act on: the file at fault and the fix, from the real loader's exceptions."""
import json
import shutil

import pytest

from evaluators.loaders.errors import explain
from evaluators.loaders import load_causal_lm


def _spoil_tokenizer(folder):
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "NoSuchModel"}}))


def _edit_config(**changes):
    def edit(folder):
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
    return edit


@pytest.mark.parametrize("spoil, expected", [
    (_spoil_tokenizer, ["tokenizer.json", "save_pretrained"]),
    (_edit_config(vocab_size=520), ["do not fit config.json"]),
    (_edit_config(n_layer=3), ["missing from the checkpoint", "transformer.h.2"]),
    (lambda folder: (folder / "model.safetensors").unlink(), ["no weights found", "model.safetensors"]),
    (_edit_config(model_type="nosuch"), ["model_type 'nosuch'", "not an architecture"]),
])
def test_a_load_failure_names_the_file_and_the_fix(tiny_lm_dir, tmp_path, spoil, expected):
    folder = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, folder)
    spoil(folder)
    with pytest.raises(Exception) as failure:
        load_causal_lm(folder)
    message = explain(failure.value)
    assert message.startswith("the checkpoint could not be loaded") or message.startswith("the checkpoint was refused")
    for words in expected:
        assert words in message, message


def test_an_unknown_failure_is_reported_as_it_is():
    assert explain(ZeroDivisionError("boom")) == "the checkpoint could not be loaded: ZeroDivisionError: boom"
