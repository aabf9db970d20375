"""Build the three demo models and score them on every language-core task, in-process.

Prints each task's primary score, the normalised capability means and the overall score
(the board's aggregation), and the time taken, so the demo ranking (untrained < brief <
longer on cognition and overall) can be checked:  .venv/bin/python -m benchmarks.demo_ranking
"""
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    from cli.demo import build_demo_models, score_in_process

    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        folders = build_demo_models(Path(tmp))
        built = time.monotonic()
        scores = score_in_process(folders)
        done = time.monotonic()
    for name, s in scores.items():
        print(f"{name:22s} overall {s['overall']:.3f}  capabilities "
              + "  ".join(f"{c} {v:.3f}" for c, v in s["capabilities"].items()))
        print(" " * 23 + "tasks " + "  ".join(f"{t} {v:.3f}" for t, v in s["tasks"].items()))
    print(f"build {built - started:.1f}s, evaluate {done - built:.1f}s")


if __name__ == "__main__":
    main()
