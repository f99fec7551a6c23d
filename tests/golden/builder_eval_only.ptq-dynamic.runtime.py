"""Train or evaluate a classifier through a trainer class, in the style of detection tool scripts.

The model comes from the trainer's `build_model(cfg)` classmethod and its weights from a
checkpointer object (`Checkpointer(model, save_dir=...).resume_or_load(path)`); with
`--eval-only` the script evaluates it with `Trainer.test(cfg, model)`, which returns a
dict of metrics per dataset, and returns them. Training runs elsewhere.
"""

import argparse
import os

import torch
import torch.nn as nn
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig


class Classifier(nn.Module):
    def __init__(self, in_features, num_classes):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(in_features, 32), nn.ReLU())
        self.cls_head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.cls_head(self.backbone(x))


class Trainer:
    @classmethod
    def build_model(cls, cfg):
        return Classifier(cfg["in_features"], cfg["num_classes"])

    @classmethod
    def test(cls, cfg, model):
        generator = torch.Generator().manual_seed(1)
        x = torch.randn(64, cfg["in_features"], generator=generator)
        y = torch.randint(0, cfg["num_classes"], (64,), generator=generator)
        model.eval()
        with torch.no_grad():
            accuracy = (model(x).argmax(-1) == y).float().mean().item()
        print(f"evaluated {type(model.cls_head).__module__}.{type(model.cls_head).__name__}")
        return {"val": {"accuracy": accuracy}}


def setup(args):
    return {
        "in_features": 16,
        "num_classes": 4,
        "output_dir": args.output_dir,
        "weights": args.weights,
    }


def main(args):
    cfg = setup(args)

    if args.eval_only:
        model = Trainer.build_model(cfg)
        Checkpointer(model, save_dir=cfg["output_dir"]).resume_or_load(
            cfg["weights"], resume=args.resume
        )
        quantized_model = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
        res = Trainer.test(cfg, model)
        print(res)
        return res

    raise SystemExit("this tool evaluates checkpoints: pass --eval-only (train with train.py)")


# the checkpointer keeps the model it is given and loads weights into it
class Checkpointer:
    def __init__(self, model, save_dir="."):
        self.model, self.save_dir = model, save_dir

    def resume_or_load(self, path, resume=False):
        if resume and os.path.exists(os.path.join(self.save_dir, "last.pth")):
            path = os.path.join(self.save_dir, "last.pth")
        self.model.load_state_dict(torch.load(path, map_location="cpu"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--weights", default="classifier_final.pth")
    parser.add_argument("--output-dir", default="output")
    main(parser.parse_args())
