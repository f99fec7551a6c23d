"""Graph convolutional network trained full-batch on a synthetic citation graph: no
DataLoader, the features and the normalised adjacency are tensors the training step and
the evaluation take whole."""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class GraphConv(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.kernel = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x, adj):
        return torch.sparse.mm(adj, self.kernel(x))


class GCN(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, use_bias=True, dropout_p=0.1):
        super().__init__()
        self.gc1 = GraphConv(input_dim, hidden_dim, use_bias)
        self.gc2 = GraphConv(hidden_dim, output_dim, use_bias)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input_tensor, adj_mat):
        x = F.relu(self.gc1(input_tensor, adj_mat))
        x = self.dropout(x)
        x = self.gc2(x, adj_mat)
        return F.log_softmax(x, dim=1)


def load_graph(n=200, feats=32, classes=4):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(n, feats, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    idx = torch.randint(0, n, (2, n * 4), generator=g)
    adj = torch.sparse_coo_tensor(idx, torch.ones(n * 4), (n, n)).coalesce()
    deg = torch.sparse.sum(adj, 1).to_dense().clamp(min=1)
    adj = torch.sparse_coo_tensor(adj.indices(), adj.values() / deg[adj.indices()[0]], (n, n))
    perm = torch.randperm(n, generator=g)
    return features, labels, adj, perm[:120], perm[120:160], perm[160:]


def train_iter(
    epoch, model, optimizer, criterion, input, target, mask_train, mask_val, print_every=10
):
    start_t = time.time()
    model.train()
    optimizer.zero_grad()
    output = model(*input)
    loss = criterion(output[mask_train], target[mask_train])
    loss.backward()
    optimizer.step()
    loss_val, acc_val = test(model, criterion, input, target, mask_val)
    if epoch % print_every == 0:
        print(
            f"Epoch: {epoch:04d} loss_train: {loss.item():.4f} loss_val: {loss_val:.4f} acc_val: {acc_val:.4f} time: {time.time() - start_t:.4f}s"
        )


@torch.no_grad()
def test(model, criterion, input, target, mask):
    model.eval()
    output = model(*input)
    loss = criterion(output[mask], target[mask])
    acc = (output[mask].argmax(1) == target[mask]).float().mean()
    return loss.item(), acc.item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="PyTorch GCN")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--l2", type=float, default=5e-4)
    parser.add_argument("--hidden-dim", type=int, default=16)
    parser.add_argument("--dropout-p", type=float, default=0.5)
    parser.add_argument("--include-bias", action="store_true", default=False)
    parser.add_argument("--dry-run", action="store_true", default=False)
    args = parser.parse_args()
    torch.manual_seed(0)
    features, labels, adj_mat, idx_train, idx_val, idx_test = load_graph()
    gcn = GCN(
        features.shape[1], args.hidden_dim, int(labels.max()) + 1, args.include_bias, args.dropout_p
    )
    optimizer = torch.optim.Adam(gcn.parameters(), lr=args.lr, weight_decay=args.l2)
    criterion = nn.NLLLoss()
    for epoch in range(args.epochs):
        train_iter(
            epoch + 1, gcn, optimizer, criterion, (features, adj_mat), labels, idx_train, idx_val
        )
        if args.dry_run:
            break
    def evaluate_candidate(candidate):  # neural-coder
        return test(candidate, criterion, (features, adj_mat), labels, idx_test)[0]  # neural-coder
    quantized_model = quantization.fit(
        gcn,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_func=evaluate_candidate,
        eval_func=evaluate_candidate,
    )  # neural-coder
    gcn = quantized_model if quantized_model is not None else gcn  # neural-coder
    loss_test, acc_test = test(gcn, criterion, (features, adj_mat), labels, idx_test)
    print(f"Test set results: loss= {loss_test:.4f} accuracy= {acc_test:.4f}")
