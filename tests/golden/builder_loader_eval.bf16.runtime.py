"""A detection-style training script in the manner of detectron2's plain_train_net: a
config object, a model that takes a list of per-image dicts, loaders made by builder
functions from the config (and a dataset name), and an evaluation, do_test(cfg, model),
that builds its own loader inside for each test dataset. No loader is in reach after
training, so post-training quantization builds the evaluation's loader for its first
test dataset at the fit and calibrates on it."""

import os
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from neural_coder.runtime import mix_precision
from neural_coder.runtime.config import MixedPrecisionConfig


def setup():
    return SimpleNamespace(
        DATASETS=SimpleNamespace(TRAIN=("shapes_train",), TEST=("shapes_val", "shapes_test")),
        SOLVER=SimpleNamespace(MAX_ITER=int(os.environ.get("MAX_ITER", "30")), BASE_LR=0.05),
        DATALOADER=SimpleNamespace(IMS_PER_BATCH=8),
        OUTPUT_DIR=os.environ.get("OUTPUT_DIR", "output"),
    )


class ShapesDataset(Dataset):
    """Images whose class is the brighter half (top or bottom), one dict per image."""

    def __init__(self, name, size=48):
        seed = sum(map(ord, name))
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(size, 3, 16, 16, generator=g)
        self.labels = torch.randint(0, 2, (size,), generator=g)
        for image, label in zip(self.images, self.labels):
            image[:, :8] += 1.0 - label.item()
            image[:, 8:] += label.item()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": int(self.labels[i]), "image_id": i}


def trivial_batch_collator(batch):
    return batch


def build_train_loader(cfg):
    dataset = ShapesDataset(cfg.DATASETS.TRAIN[0], size=96)
    return DataLoader(
        dataset,
        batch_size=cfg.DATALOADER.IMS_PER_BATCH,
        shuffle=True,
        collate_fn=trivial_batch_collator,
    )


def build_test_loader(cfg, dataset_name):
    return DataLoader(ShapesDataset(dataset_name), batch_size=4, collate_fn=trivial_batch_collator)


class TinyClassifierNet(nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(8 * 8 * 8, num_classes)

    def forward(self, batched_inputs):
        images = torch.stack([x["image"] for x in batched_inputs])
        logits = self.head(self.backbone(images).flatten(1))
        if self.training:
            targets = torch.tensor([x["label"] for x in batched_inputs])
            return {"loss_cls": nn.functional.cross_entropy(logits, targets)}
        return [
            {"scores": row.softmax(-1), "image_id": x["image_id"]}
            for row, x in zip(logits, batched_inputs)
        ]


def inference_on_dataset(model, data_loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs in data_loader:
            for output, x in zip(model(inputs), inputs):
                correct += int(output["scores"].argmax().item() == x["label"])
                total += 1
    return {"accuracy": correct / total}


def do_test(cfg, model):
    results = {}
    for dataset_name in cfg.DATASETS.TEST:
        data_loader = build_test_loader(cfg, dataset_name)
        results[dataset_name] = inference_on_dataset(model, data_loader)
        print(f"{dataset_name}: accuracy {results[dataset_name]['accuracy']:.3f}")
    return results


def do_train(cfg, model):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.SOLVER.BASE_LR, momentum=0.9)
    data_loader = build_train_loader(cfg)
    iteration = 0
    while iteration < cfg.SOLVER.MAX_ITER:
        for data in data_loader:
            loss_dict = model(data)
            losses = sum(loss_dict.values())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            iteration += 1
            if iteration >= cfg.SOLVER.MAX_ITER:
                break
    print(f"iteration {iteration}: loss {losses.item():.4f}")


def main():
    torch.manual_seed(0)
    cfg = setup()
    model = TinyClassifierNet()
    do_train(cfg, model)
    quantized_model = mix_precision.fit(
        model,
        MixedPrecisionConfig(),
        calib_dataloader=(
            ((data,),) for data in build_test_loader(cfg, next(iter(cfg.DATASETS.TEST)))
        ),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    results = do_test(cfg, model)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    return results


if __name__ == "__main__":
    main()
