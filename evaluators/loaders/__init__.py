"""Model loaders: `load(family, path, …)` (families.py), the causal-LM loader with adapters and 8/4-bit
weights (causal_lm.py), the open_clip loader (open_clip.py), hub downloads (hub.py) and load failures in
words an author can act on (errors.py)."""
from evaluators.loaders.causal_lm import LoadedCausalLM, load_causal_lm
from evaluators.loaders.families import LOADERS, load
from evaluators.loaders.open_clip import LoadedClip, load_clip

__all__ = ["LOADERS", "LoadedCausalLM", "LoadedClip", "load", "load_causal_lm", "load_clip"]
