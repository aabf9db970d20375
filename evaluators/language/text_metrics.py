"""Per-item text metrics for lm-eval's free-form tasks that the harness does not ship.

lm-eval has exact_match, BLEU and chrF built in; token F1 (SQuAD's) and ROUGE-L it leaves to
tasks. The bundled task YAMLs name these as `metric: !function evaluators.language.text_metrics.token_f1`,
so the `lm_eval` command line (with `--include_path datasets/lm_eval_tasks`) and the service
score them with the same code. Each is called as lm-eval calls a metric: with one reference and
one prediction, and returns that item's score; the task's aggregation (mean) makes the set's.
"""
import re
import string
from collections import Counter
from functools import cache

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def _tokens(text: str) -> list[str]:
    """SQuAD's normalisation: lower case, no punctuation, no articles, split on whitespace."""
    text = _PUNCTUATION.sub(" ", text.lower())
    return [t for t in text.split() if t not in ("a", "an", "the")]


def f1_of(reference: str, prediction: str) -> float:
    ref, pred = _tokens(reference), _tokens(prediction)
    if not ref or not pred:
        return float(ref == pred)  # both empty: a match; one empty: nothing in common
    common = sum((Counter(ref) & Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(references: list[str], predictions: list[str]) -> float:
    """Token-overlap F1 of one item (lm-eval passes one-element lists)."""
    return f1_of(references[0], predictions[0])


def rouge_l(references: list[str], predictions: list[str]) -> float:
    """ROUGE-L F-measure of one item, by Google's rouge-score (the reference implementation)."""
    return _rouge_l_scorer().score(references[0], predictions[0])["rougeL"].fmeasure


@cache
def _rouge_l_scorer():
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"])
