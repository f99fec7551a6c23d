"""k-NN evaluation of a frozen backbone, in the style of self-supervised evaluation
scripts: `extract_feature_pipeline(args)` builds the loaders and the backbone (one
per architecture), loads its trained weights and hands the model to
`extract_features(model, loader)`, which runs it (through `forward_multi_scale`) over
the data. A k-NN classifier on the features gives top-1 accuracy.
"""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from neural_compressor import mix_precision
from neural_compressor.config import MixedPrecisionConfig


class ReturnIndexDataset(Dataset):
    def __init__(self, n, seed, dim=16, classes=5):
        g = torch.Generator().manual_seed(seed)
        self.centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(7))
        self.labels = torch.randint(0, classes, (n,), generator=g)
        self.samples = self.centers[self.labels] + 0.3 * torch.randn(n, dim, generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return self.samples[idx], idx


class MLPBackbone(nn.Module):
    def __init__(self, dim=16, width=32, out=24):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, width), nn.ReLU(), nn.Linear(width, out))

    def forward(self, x):
        return self.layers(x)


class WideBackbone(MLPBackbone):
    def __init__(self):
        super().__init__(width=64)


def load_pretrained_weights(model, path):
    if path:
        model.load_state_dict(torch.load(path, weights_only=True))
        print(f"loaded weights from {path}")


def forward_multi_scale(samples, model):
    feats = 0
    for scale in (1.0, 0.5):
        feats = feats + model(samples * scale)
    return feats / 2


@torch.no_grad()
def extract_features(model, data_loader, multiscale=False):
    features = None
    for samples, index in data_loader:
        if multiscale:
            feats = forward_multi_scale(samples, model)
        else:
            feats = model(samples).clone()
        if features is None:
            features = torch.zeros(len(data_loader.dataset), feats.shape[-1])
        features.index_copy_(0, index, feats)
    return features


def extract_feature_pipeline(args):
    dataset_train = ReturnIndexDataset(200, 0)
    dataset_val = ReturnIndexDataset(100, 1)
    data_loader_train = DataLoader(dataset_train, batch_size=args.batch_size)
    data_loader_val = DataLoader(dataset_val, batch_size=args.batch_size)

    if args.arch == "mlp":
        model = MLPBackbone()
    elif args.arch == "wide":
        model = WideBackbone()
    else:
        raise SystemExit(f"unknown architecture {args.arch}")
    load_pretrained_weights(model, args.pretrained_weights)
    model.eval()
    quantized_model = mix_precision.fit(model, MixedPrecisionConfig())  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    train_features = extract_features(model, data_loader_train, args.multiscale)
    test_features = extract_features(model, data_loader_val, args.multiscale)
    train_features = nn.functional.normalize(train_features, dim=1, p=2)
    test_features = nn.functional.normalize(test_features, dim=1, p=2)
    if args.dump_model:
        torch.save(model.state_dict(), args.dump_model)
    return train_features, test_features, dataset_train.labels, dataset_val.labels


def knn_classifier(train_features, train_labels, test_features, test_labels, k):
    similarity = test_features @ train_features.t()
    _, indices = similarity.topk(k, dim=1)
    votes = train_labels[indices].mode(dim=1).values
    return (votes == test_labels).float().mean().item() * 100


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--pretrained_weights", default="")
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--multiscale", action="store_true")
    parser.add_argument("--nb_knn", type=int, default=10)
    parser.add_argument("--dump_model", default="")
    args = parser.parse_args()
    train_features, test_features, train_labels, test_labels = extract_feature_pipeline(args)
    top1 = knn_classifier(train_features, train_labels, test_features, test_labels, args.nb_knn)
    print(f"{args.nb_knn}-NN top1: {top1:.2f}")
