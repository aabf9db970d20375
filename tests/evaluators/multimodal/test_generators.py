"""The bundled image sets are exactly what their seeded generators make, with a disjoint train split."""
import hashlib
import json

import pytest

from core.config import get_settings
from evaluators.multimodal.generators import GENERATORS, write_set

MULTIMODAL = get_settings().datasets_dir / "multimodal"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_published_set_is_rebuilt_to_the_byte(name, tmp_path):
    published = json.loads((MULTIMODAL / name / "manifest.json").read_text())
    assert write_set(name, tmp_path, seed=published["seed"]) == published
    rebuilt = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()}
    bundled = {p.relative_to(MULTIMODAL / name): p.read_bytes() for p in (MULTIMODAL / name).rglob("*") if p.is_file()}
    assert rebuilt == bundled


@pytest.mark.parametrize("name", ["shapes_scenes", "digits"])
def test_no_test_image_is_in_train(name):
    folder = MULTIMODAL / name
    digest = lambda split: {hashlib.sha256((folder / json.loads(line)["image"]).read_bytes()).hexdigest()
                            for line in (folder / f"{split}.jsonl").read_text().splitlines()}
    assert not digest("test") & digest("train")


def test_bundled_images_stay_small():
    assert sum(p.stat().st_size for p in MULTIMODAL.rglob("*") if p.is_file()) < 5 * 1024 * 1024
