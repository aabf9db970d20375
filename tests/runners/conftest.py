import pytest

from tests.conftest import DATA_DIR


@pytest.fixture(scope="session")
def slower_lm_dir():
    """A model big enough that evaluating one task takes seconds on this CPU."""
    from evaluators.demo_models.causal_lm import build_causal_lm
    return build_causal_lm(DATA_DIR / "models" / "slower", n_layer=6, n_embd=384, seed=1)
