"""Hogwild: train() runs in worker processes on the parent's shared model. QAT and the
post-training fits are refused naming the workers (they said nothing called train());
pruning goes through (its masks zero the shared weights the parent evaluates)."""

from __future__ import annotations

import pytest

from tests.coder.test_errors import assert_untouched, write
from tests.conftest import run_cli

HOGWILD = """import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
def train(rank, model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
def test(model, loader):
    model.eval()
    with torch.no_grad():
        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
if __name__ == "__main__":
    loader = [(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))] * 2
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model.share_memory()
    processes = []
    for rank in range(2):
        p = {start}
        p.start()
        processes.append(p)
    for p in processes:
        p.join()
    print(test(model, loader))
"""

STARTS = {
    "process": "mp.Process(target=train, args=(rank, model, loader))",
    "thread": "__import__('threading').Thread(target=train, args=(rank, model, loader))",
}


@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize(
    "approach, says",
    [
        ("qat", "QAT replaces the model with a quantized module inside each worker"),
        ("ptq-dynamic", "the model is final in the parent once they have joined"),
    ],
)
def test_training_in_worker_processes_is_refused_naming_them(tmp_path, start, approach, says):
    source = HOGWILD.replace("{start}", STARTS[start])
    if start == "thread":
        source = source.replace("import torch\n", "import threading\nimport torch\n", 1).replace(
            "__import__('threading').Thread", "threading.Thread"
        )
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", approach)
    assert result.exit_code == 1, result.output
    assert "worker processes run on the model handed to them" in result.output
    assert says in result.output
    assert_untouched(path, source)


def test_pruning_of_a_hogwild_model_goes_through(tmp_path):
    source = HOGWILD.replace("{start}", STARTS["process"])
    path = write(tmp_path, source)
    result = run_cli("optimize", path, "--approach", "pruning", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "prepare_compression(" in path.read_text()
