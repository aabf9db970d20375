"""A CLIP's parameter count from its open_clip config alone, without torch (DESIGN §6).

Exact for open_clip's plain CLIP: a ViT image tower and its own text transformer, the layout of
the demo models and of the ViT-* configs. Other towers (ResNet, timm, Hugging Face text models)
and variant options return None: the safetensors headers are then the only count.
"""

# Options that add or remove parameters beyond the plain layout, with the value that keeps it plain.
_PLAIN_BLOCK = {"ls_init_value": None, "act_kwargs": None, "norm_kwargs": None, "block_type": None,
                "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False,
                "scale_attn": False, "scale_fc": False, "final_ln_after_pool": False}
_PLAIN_VISION = {**_PLAIN_BLOCK, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
                 "pool_type": "tok"}
_PLAIN_TEXT = {**_PLAIN_BLOCK, "embed_cls": False, "no_causal_mask": False, "pool_type": "argmax",
               "proj_bias": False, "proj_type": "linear"}


def _block(width: int, mlp_ratio: float) -> int:
    """One residual block: two LayerNorms, attention (qkv and out projections with biases), the MLP."""
    mlp = int(width * mlp_ratio)
    return 4 * width + (3 * width * width + 3 * width) + (width * width + width) + 2 * width * mlp + mlp + width


def estimate_clip_params(model_cfg: dict) -> int | None:
    """Parameters of a plain open_clip CLIP, as `sum(p.numel() for p in model.parameters())`; else None."""
    vision, text = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    embed = model_cfg.get("embed_dim")
    if not isinstance(embed, int) or not _plain(vision, _PLAIN_VISION, "timm_model_name") \
            or not _plain(text, _PLAIN_TEXT, "hf_model_name") or "multimodal_cfg" in model_cfg:
        return None
    layers = vision.get("layers", 12)
    if not isinstance(layers, int):  # a tuple of stage depths is a ResNet
        return None
    width, patch, size = vision.get("width", 768), vision.get("patch_size", 16), vision.get("image_size", 224)
    if isinstance(size, (list, tuple)):
        size = size[0] if size[0] == size[1] else None
    if not size:
        return None
    grid = size // patch
    image = (3 * width * patch * patch + width + (grid * grid + 1) * width + 2 * width
             + layers * _block(width, vision.get("mlp_ratio", 4.0)) + 2 * width + width * embed)
    t_width = text.get("width", 512)
    words = (text.get("vocab_size", 49408) * t_width + text.get("context_length", 77) * t_width
             + text.get("layers", 12) * _block(t_width, text.get("mlp_ratio", 4.0)) + 2 * t_width + t_width * embed)
    return image + words + 1 + (1 if model_cfg.get("init_logit_bias") is not None else 0)  # logit scale, bias


def _plain(cfg: dict, plain: dict, foreign_key: str) -> bool:
    return isinstance(cfg, dict) and foreign_key not in cfg and all(cfg.get(k, v) == v for k, v in plain.items())
