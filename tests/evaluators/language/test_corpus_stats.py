"""Memoised segment statistics give sacrebleu's corpus scores bit for bit, on the resamples lm-eval draws."""
import random

import pytest
import sacrebleu

from evaluators.language.corpus_stats import memoised_segment_statistics

REFERENCES = [f"the {c} fox eats {f}" for c in ("red", "blue", "green") for f in ("fish", "seeds", "honey", "bread")]
HYPOTHESES = [r.replace("fox", "owl") if i % 3 else r for i, r in enumerate(REFERENCES)]


def resamples(n: int = 30) -> list[list[tuple[str, str]]]:
    rng, items = random.Random(0), list(zip(REFERENCES, HYPOTHESES))
    return [rng.choices(items, k=len(items)) for _ in range(n)]


@pytest.mark.parametrize("score", [
    lambda hyps, refs: sacrebleu.corpus_bleu(hyps, [refs]),
    lambda hyps, refs: sacrebleu.corpus_chrf(hyps, [refs]),
    lambda hyps, refs: sacrebleu.corpus_chrf(hyps, [refs], word_order=2),
    lambda hyps, refs: sacrebleu.corpus_bleu(hyps, [refs], lowercase=True),
], ids=["bleu", "chrf", "chrf++", "bleu-lowercase"])
def test_memoised_scores_equal_sacrebleus_own(score):
    def run() -> list:
        out = []
        for sample in resamples():
            result = score([h for _, h in sample], [r for r, _ in sample])
            out.append((result.score, str(result)))
        return out

    plain = run()
    with memoised_segment_statistics():
        memoised = run()
    assert memoised == plain


def test_metrics_with_different_settings_do_not_share_statistics():
    hyps, refs = ["The Red Fox"], ["the red fox"]
    with memoised_segment_statistics():
        cased = sacrebleu.CHRF().corpus_score(hyps, [refs]).score
        lowered = sacrebleu.CHRF(lowercase=True).corpus_score(hyps, [refs]).score
    assert lowered == 100.0 and cased < 100.0


def test_the_patch_is_gone_after_the_block():
    from sacrebleu.metrics.base import Metric
    original = Metric._extract_corpus_statistics
    with memoised_segment_statistics():
        assert Metric._extract_corpus_statistics is not original
    assert Metric._extract_corpus_statistics is original
