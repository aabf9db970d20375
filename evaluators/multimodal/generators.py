"""Seeded generators for the bundled image sets (DESIGN §5), rendered with Pillow.

Each set is a pure function of its seed, written as PNG files plus JSONL and a manifest,
so the published files can be rebuilt to the byte. Three sets:

- shapes_scenes: one to three shapes of one colour, size and side, captioned in English,
  Chinese and German; labelled by "colour shape" for zero-shot classification (24 classes),
  captioned uniquely in the test split for retrieval. Train renders are new draws (no test
  image appears in train) for the demo models.
- shapes_pairs: Winoground-style pairs — two images, two captions with the same words in
  another order (swapped colours, or a swapped left-of relation).
- digits: scikit-learn's 8×8 handwritten digits (bundled with scikit-learn, no download),
  a small real image set, split into disjoint train and test by a seeded stratified draw.

Images are tiny (64×64 or 32×32 PNG) so the bundled data stays well under a megabyte per set.
"""
import hashlib
import json
import random
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from evaluators.set_files import SetGenerator, registrar, write_splits

LANGUAGES = ("en", "zh", "de")
SIZE = 64
BACKGROUND = (128, 128, 128)

# name → (RGB, Chinese, German adjective stem)
COLOURS = {"red": ((220, 30, 30), "红色", "rot"), "green": ((30, 170, 30), "绿色", "grün"),
           "blue": ((30, 60, 220), "蓝色", "blau"), "yellow": ((240, 220, 20), "黄色", "gelb"),
           "black": ((10, 10, 10), "黑色", "schwarz"), "white": ((250, 250, 250), "白色", "weiß")}
# name → (English plural, Chinese, German singular, German plural, German gender)
SHAPES = {"circle": ("circles", "圆形", "Kreis", "Kreise", "m"), "square": ("squares", "正方形", "Quadrat", "Quadrate", "n"),
          "triangle": ("triangles", "三角形", "Dreieck", "Dreiecke", "n"), "cross": ("crosses", "十字", "Kreuz", "Kreuze", "n")}
CLASSES = [(c, s) for c in COLOURS for s in SHAPES]  # 24 zero-shot classes
COUNTS = {1: ("one", "一个", "ein"), 2: ("two", "两个", "zwei"), 3: ("three", "三个", "drei")}
SIZES = {"small": (7, "小", "klein"), "large": (12, "大", "groß")}
SIDES = {"left": ("on the left", "在左边", "links"), "right": ("on the right", "在右边", "rechts")}
DIGITS = {"en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
          "zh": ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"],
          "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]}

# Prompt templates per language for zero-shot classification (CLIP's ensemble, in small).
SHAPE_TEMPLATES = {"en": ["a picture of a {}.", "a drawing of a {}.", "a {} on a grey background."],
                   "zh": ["一张{}的图片。", "一幅{}的画。", "灰色背景上的{}。"],
                   "de": ["Ein Bild: {}.", "Eine Zeichnung: {}.", "{} auf grauem Hintergrund."]}
DIGIT_TEMPLATES = {"en": ["a photo of the digit {}.", "a handwritten {}.", "the number {}."],
                   "zh": ["数字{}的照片。", "手写的{}。", "数字{}。"],
                   "de": ["ein Foto der Ziffer {}.", "eine handgeschriebene {}.", "die Zahl {}."]}


def german_adjective(stem: str, gender: str, case: str = "nom") -> str:
    """Strong/mixed declension after 'ein'/no article: nominative -er (m) / -es (n); dative -en; plural -e."""
    return stem + {"m": "er", "n": "es", "pl": "e", "dat": "en"}[gender if case == "nom" else "dat"]


def class_names(lang: str) -> list[str]:
    if lang == "en":
        return [f"{c} {s}" for c, s in CLASSES]
    if lang == "zh":
        return [COLOURS[c][1] + SHAPES[s][1] for c, s in CLASSES]
    return [f"{german_adjective(COLOURS[c][2], SHAPES[s][4])} {SHAPES[s][2]}" for c, s in CLASSES]


def scene_caption(lang: str, count: int, size: str, colour: str, shape: str, side: str) -> str:
    if lang == "en":
        noun = shape if count == 1 else SHAPES[shape][0]
        return f"{COUNTS[count][0]} {size} {colour} {noun} {SIDES[side][0]}"
    if lang == "zh":
        return f"{SIDES[side][1]}有{COUNTS[count][1]}{SIZES[size][1]}的{COLOURS[colour][1]}{SHAPES[shape][1]}"
    gender = SHAPES[shape][4] if count == 1 else "pl"
    noun = SHAPES[shape][2] if count == 1 else SHAPES[shape][3]
    adjs = " ".join(german_adjective(w, gender) for w in (SIZES[size][2], COLOURS[colour][2]))
    return f"{COUNTS[count][2]} {adjs} {noun} {SIDES[side][2]}"


def _noun_phrase(lang: str, colour: str, shape: str, case: str = "nom") -> str:
    if lang == "en":
        return f"a {colour} {shape}"
    if lang == "zh":
        return f"一个{COLOURS[colour][1]}{SHAPES[shape][1]}"
    article = "ein" if case == "nom" else "einem"
    return f"{article} {german_adjective(COLOURS[colour][2], SHAPES[shape][4], case)} {SHAPES[shape][2]}"


def pair_caption(lang: str, kind: str, a: tuple[str, str], b: tuple[str, str]) -> str:
    """'and' for attribute swaps, 'left of' for relation swaps; a is the left object in the image."""
    if kind == "attribute":
        joiner = {"en": " and ", "zh": "和", "de": " und "}[lang]
        return _noun_phrase(lang, *a) + joiner + _noun_phrase(lang, *b)
    if lang == "en":
        return f"{_noun_phrase(lang, *a)} to the left of {_noun_phrase(lang, *b)}"
    if lang == "zh":
        return f"{_noun_phrase(lang, *a)}在{_noun_phrase(lang, *b)}的左边"
    return f"{_noun_phrase(lang, *a)} links von {_noun_phrase(lang, *b, case='dat')}"


def _draw_shape(draw, shape: str, colour: str, cx: float, cy: float, r: float) -> None:
    fill = COLOURS[colour][0]
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:  # a cross: two bars a third of the size wide
        w = r / 3
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)


def _png(image) -> bytes:
    buf = BytesIO()
    image.save(buf, format="PNG", optimize=False)  # no timestamps or text chunks: byte-stable
    return buf.getvalue()


def render_scene(rng: random.Random, count: int, size: str, colour: str, shape: str, side: str) -> bytes:
    """Shapes stacked vertically in the named half, with a seeded jitter so every render differs."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    # Shrink stacked shapes so three large ones still do not touch.
    draw, r = ImageDraw.Draw(image), SIZES[size][0] * {1: 1.0, 2: 0.85, 3: 0.65}[count]
    x0 = SIZE * (0.27 if side == "left" else 0.73) + rng.uniform(-3, 3)
    slots = [SIZE * (i + 1) / (count + 1) for i in range(count)]
    for y in slots:
        _draw_shape(draw, shape, colour, x0 + rng.uniform(-1.5, 1.5), y + rng.uniform(-2, 2), r)
    return _png(image)


def render_pair(rng: random.Random, left: tuple[str, str], right: tuple[str, str]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw, y = ImageDraw.Draw(image), SIZE / 2 + rng.uniform(-8, 8)
    for (colour, shape), x in ((left, SIZE * 0.27), (right, SIZE * 0.73)):
        _draw_shape(draw, shape, colour, x + rng.uniform(-2, 2), y + rng.uniform(-2, 2), rng.uniform(9, 12))
    return _png(image)


@dataclass
class BuiltSet:
    splits: dict[str, list[dict]]
    """split → rows; each row names its images by relative path."""
    images: dict[str, bytes]
    """relative path → PNG bytes."""
    extras: dict[str, object]
    """extra JSON files (classes, templates) by file name."""


GENERATORS: dict[str, SetGenerator] = {}
register = registrar(GENERATORS)


@register("shapes_scenes", "1.0", "64×64 scenes of one to three shapes of one colour, size and side, captioned in "
          "English, Chinese and German. Labelled by 'colour shape' (24 classes) for zero-shot classification; "
          "the test split's captions are unique per image for retrieval. Train renders are fresh draws.",
          default_seed=2024)
def shapes_scenes(seed: int) -> BuiltSet:
    rng = random.Random(seed)
    combos = [(n, z, c, s, d) for n in COUNTS for z in SIZES for c, s in CLASSES for d in SIDES]
    test_combos = rng.sample(combos, 240)
    images, test_bytes, splits = {}, set(), {"train": [], "test": []}
    for split, draws in (("test", test_combos), ("train", [rng.choice(combos) for _ in range(720)])):
        for i, (n, z, c, s, d) in enumerate(draws):
            png = render_scene(rng, n, z, c, s, d)
            while split == "train" and png in test_bytes:  # keep train disjoint from test, image for image
                png = render_scene(rng, n, z, c, s, d)
            if split == "test":
                test_bytes.add(png)
            path = f"images/{split}/{i:04d}.png"
            images[path] = png
            splits[split].append({"id": f"{split}-{i:04d}", "image": path, "label": CLASSES.index((c, s)),
                                  "count": n, "size": z, "colour": c, "shape": s, "side": d,
                                  "captions": {lang: scene_caption(lang, n, z, c, s, d) for lang in LANGUAGES}})
    extras = {"classes.json": {lang: class_names(lang) for lang in LANGUAGES}, "templates.json": SHAPE_TEMPLATES}
    return BuiltSet(splits, images, extras)


@register("shapes_pairs", "1.0", "Winoground-style pairs: two 64×64 images and two captions with the same words in "
          "another order — colours swapped between two shapes ('a red circle and a blue square' / 'a blue circle "
          "and a red square') or the left-of relation swapped. Captions in English, Chinese and German.",
          default_seed=3141)
def shapes_pairs(seed: int) -> BuiltSet:
    rng = random.Random(seed)
    images, rows, seen = {}, [], set()
    while len(rows) < 120:
        kind = "attribute" if len(rows) % 2 == 0 else "relation"
        c1, c2 = rng.sample(list(COLOURS), 2)
        s1, s2 = rng.sample(list(SHAPES), 2)
        if (kind, c1, c2, s1, s2) in seen:
            continue
        seen.add((kind, c1, c2, s1, s2))
        if kind == "attribute":  # image 1 gives each shape the other's colour
            objects = [((c1, s1), (c2, s2)), ((c2, s1), (c1, s2))]
        else:  # image 1 puts the second object on the left
            objects = [((c1, s1), (c2, s2)), ((c2, s2), (c1, s1))]
        i = len(rows)
        paths = [f"images/test/{i:04d}_{k}.png" for k in (0, 1)]
        for path, (left, right) in zip(paths, objects):
            images[path] = render_pair(rng, left, right)
        rows.append({"id": f"pair-{i:04d}", "kind": kind, "images": paths,
                     "captions": {lang: [pair_caption(lang, kind, *objects[k]) for k in (0, 1)] for lang in LANGUAGES}})
    return BuiltSet({"test": rows}, images, {})


@register("digits", "1.0", "scikit-learn's 8×8 handwritten digits (UCI optdigits test set, bundled with "
          "scikit-learn) upscaled to 32×32 greyscale PNG; a seeded stratified draw of 30 per digit is the test "
          "split, the rest is train. Digit names in English, Chinese and German.", default_seed=1797)
def digits(seed: int) -> BuiltSet:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(data.target):
        by_label.setdefault(int(label), []).append(index)
    test_ids = sorted(i for label in sorted(by_label) for i in rng.sample(by_label[label], 30))
    train_ids = sorted(set(range(len(data.target))) - set(test_ids))
    images, splits = {}, {}
    for split, ids in (("test", test_ids), ("train", train_ids)):
        splits[split] = []
        for index in ids:
            pixels = bytes(int(v) * 255 // 16 for v in data.images[index].flatten())
            image = Image.frombytes("L", (8, 8), pixels).resize((32, 32), Image.NEAREST)
            path = f"images/{split}/{index:04d}.png"
            images[path] = _png(image)
            splits[split].append({"id": f"digit-{index:04d}", "image": path, "label": int(data.target[index])})
    extras = {"classes.json": DIGITS, "templates.json": DIGIT_TEMPLATES}
    return BuiltSet(splits, images, extras)


def _json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def images_digest(files: dict[str, str]) -> str:
    """One sha256 over every image's path and sha256, so the manifest stays short."""
    return hashlib.sha256("".join(f"{path} {sha}\n" for path, sha in sorted(files.items())).encode()).hexdigest()


def write_set(name: str, root: Path, seed: int | None = None) -> dict:
    """Write images/, <split>.jsonl, extras and manifest.json of one set under root/name; return the manifest."""
    gen = GENERATORS[name]
    seed = gen.default_seed if seed is None else seed
    built = gen.build(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    splits, files = write_splits(folder, built.splits), {}
    for file_name, obj in built.extras.items():
        data = _json(obj)
        (folder / file_name).write_bytes(data)
        files[file_name] = hashlib.sha256(data).hexdigest()
    image_shas = {}
    for path, png in built.images.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(png)
        image_shas[path] = hashlib.sha256(png).hexdigest()
    manifest = {"name": name, "version": gen.version, "seed": seed, "license": "CC0-1.0" if name != "digits" else
                "CC-BY-4.0 (UCI optdigits, via scikit-learn)",
                "how_made": f"evaluators.multimodal.generators:{gen.build.__name__} (seeded, Pillow rendering)",
                "description": gen.description, "splits": splits, "files": files,
                "images": {"count": len(image_shas), "sha256": images_digest(image_shas)}}
    (folder / "manifest.json").write_bytes(_json(manifest))
    return manifest


def main() -> None:
    """Regenerate the published sets: python -m evaluators.multimodal.generators [datasets-dir]."""
    import sys
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "datasets"
    for name in GENERATORS:
        print(write_set(name, root / "multimodal")["images"])


if __name__ == "__main__":
    main()
