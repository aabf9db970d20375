"""An independent scorer for the CLIP tests: the model rebuilt from its files with open_clip directly."""
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


class Reference:
    """The model rebuilt from its files with open_clip and safetensors directly, scored as clip_benchmark does."""

    def __init__(self, folder):
        import open_clip
        from safetensors.torch import load_file

        raw = json.loads((folder / "open_clip_config.json").read_text())
        self.model = open_clip.CLIP(**raw["model_cfg"]).eval()
        self.model.load_state_dict(load_file(folder / "open_clip_model.safetensors"))
        pp = raw["preprocess_cfg"]
        self.preprocess = open_clip.image_transform(raw["model_cfg"]["vision_cfg"]["image_size"], is_train=False,
                                                    mean=pp["mean"], std=pp["std"], interpolation=pp["interpolation"],
                                                    resize_mode=pp["resize_mode"])
        self.tokenize = open_clip.tokenizer.SimpleTokenizer(context_length=raw["model_cfg"]["text_cfg"]["context_length"])

    @torch.no_grad()
    def images(self, items, batch=64):
        """Per item a file path or a PIL image."""
        def pil(p):
            return (Image.open(p) if isinstance(p, (str, Path)) else p).convert("RGB")
        out = [self.model.encode_image(torch.stack([self.preprocess(pil(p)) for p in items[i:i + batch]]))
               for i in range(0, len(items), batch)]
        return F.normalize(torch.cat(out), dim=-1)

    @torch.no_grad()
    def texts(self, texts, batch=64):
        out = [self.model.encode_text(self.tokenize(texts[i:i + batch])) for i in range(0, len(texts), batch)]
        return F.normalize(torch.cat(out), dim=-1)

    def zero_shot(self, items, labels, classes, templates) -> dict[str, float]:
        """clip_benchmark's zero_shot_classifier and accuracy: prompt ensemble, top-k, balanced accuracy."""
        weights = torch.stack([F.normalize(self.texts([t.format(c, c=c) for t in templates]).mean(0), dim=0)
                               for c in classes])
        logits = self.images(items) @ weights.T
        target = torch.as_tensor(np.asarray(labels))
        top5 = logits.topk(min(5, len(classes)), dim=1).indices
        pred = top5[:, 0].numpy()
        recall = np.mean([(pred[target.numpy() == c] == c).mean() for c in np.unique(target.numpy())])
        return {"acc1": (top5[:, 0] == target).double().mean().item(),
                "acc5": (top5 == target[:, None]).any(1).double().mean().item(), "mean_per_class_recall": recall}

    def retrieval(self, items, captions: list[list[str]]) -> dict[str, float]:
        """Recall@k as CLIP papers count it: a caption finds its image; an image finds any of its captions."""
        flat = [c for caps in captions for c in caps]
        owner = torch.tensor([i for i, caps in enumerate(captions) for _ in caps])
        scores = self.images(items) @ self.texts(flat).T  # [images, captions]
        positive = owner[None, :] == torch.arange(len(captions))[:, None]
        expected = {}
        for k in (1, 5, 10):
            expected[f"IR@{k}"] = positive.T.gather(1, scores.T.topk(k, dim=1).indices).any(1).double().mean().item()
            expected[f"TR@{k}"] = positive.gather(1, scores.topk(k, dim=1).indices).any(1).double().mean().item()
        expected["MR"] = sum(expected.values()) / 6
        return expected
