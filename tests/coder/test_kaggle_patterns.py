"""Kaggle / competition-style scripts: a `CFG` settings class, training repeated per fold
(in the fold loop, or in a `train_loop(folds, fold)` the loop calls) with the best
checkpoint kept inside the epoch loop, `pbar = tqdm(enumerate(loader))` step loops over
dict batches, gradient accumulation by `CFG.accum`, `del model` between folds, and
inference over an ensemble of fold checkpoints. Before/after pairs and second runs
(no-ops); the sample runs in tests/e2e/test_kaggle_kfold_scripts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

HEADER = """\
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm


class CFG:
    n_fold = 3
    epochs = 2
    accum = 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.backbone(x).relu())


data = TensorDataset(torch.randn(24, 4), torch.zeros(24).long())
"""

TRAIN_FN = """\


def train_fn(loader, model, optimizer):
    for step, (x, y) in enumerate(loader):
        loss = nn.functional.cross_entropy(model(x), y) / CFG.accum
        loss.backward()
        if (step + 1) % CFG.accum == 0:
            optimizer.step()
            optimizer.zero_grad()


def valid_fn(loader, model):
    preds = []
    with torch.no_grad():
        for x, y in loader:
            preds.append(model(x).softmax(1).numpy())
    return 0.5, np.concatenate(preds)

"""

FOLD_BODY = """\
    loader = DataLoader(data, batch_size=4)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    best = 1e9
    for epoch in range(CFG.epochs):
        train_fn(loader, model, optimizer)
        val_loss, preds = valid_fn(loader, model)
        if val_loss < best:
            best = val_loss
            torch.save({"model": model.state_dict(), "preds": preds}, f"fold{fold}_best.pth")
"""


def in_fold_loop(after: str = "") -> str:
    """Each fold's model built and trained in the fold loop at module level."""
    return HEADER + TRAIN_FN + "for fold in range(CFG.n_fold):\n" + FOLD_BODY + after


def in_train_loop() -> str:
    """Each fold's model built and trained in `train_loop(fold)`, called per fold."""
    body = FOLD_BODY.replace("\n    ", "\n        ").replace("    loader", "        loader", 1)
    return (
        HEADER
        + TRAIN_FN
        + "def train_loop(folds, fold):\n"
        + body
        + "\n\nfolds = None\nfor fold in range(CFG.n_fold):\n    train_loop(folds, fold)\n"
    )


def rewrite(source: str, approach: str, **extra):
    return rewrite_source(Path("train.py"), source, build_options(approach, "runtime", {}, extra))


def transformed(source: str, approach: str) -> tuple[str, list[str]]:
    text, report = rewrite(source, approach)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite(text, approach)
    assert second.status is not Status.TRANSFORMED and again == text
    return text, [*report.placed, *report.warnings]


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_qat_in_the_fold_loop_saves_each_folds_int8_model_in_its_folder(approach):
    before = in_fold_loop()
    assert "compression_manager.save" not in before
    text, said = transformed(before, approach)
    assert (
        f'    compression_manager.save(f"neural_coder_output/{approach}/fold{{fold}}")'
        "  # neural-coder\n" in text
    )
    assert any("one folder per fold" in s for s in said), said


def test_ptq_in_a_train_loop_called_per_fold_saves_to_the_folds_folder():
    text, said = transformed(in_train_loop(), "ptq-dynamic")
    assert 'quantized_model.save(f"neural_coder_output/ptq-dynamic/fold{fold}")' in text
    # the fit is in train_loop(), after its epoch loop
    assert (
        text.index("def train_loop")
        < text.index("quantization.fit(")
        < text.index("\nfolds = None")
    )


def test_save_dir_gets_a_folder_per_fold_too():
    text, _ = rewrite(in_fold_loop(), "ptq-dynamic", ptq={"save_dir": "out/int8"})
    assert 'quantized_model.save(f"out/int8/fold{fold}")' in text


def test_training_outside_any_loop_keeps_the_one_folder():
    source = HEADER + TRAIN_FN + "fold = 0\n" + FOLD_BODY.replace("\n    ", "\n")[4:]
    text, _ = transformed(source, "qat")
    assert 'compression_manager.save("neural_coder_output/qat")' in text


def test_a_fold_loop_without_an_index_is_warned_of():
    source = in_fold_loop().replace(
        "for fold in range(CFG.n_fold):", "for trn_idx, val_idx in [(0, 1), (1, 0)]:"
    )
    source = source.replace('f"fold{fold}_best.pth"', '"best.pth"')
    text, said = transformed(source, "qat")
    assert 'compression_manager.save("neural_coder_output/qat")' in text
    assert any("overwriting the one before" in s for s in said), said


def test_del_model_after_training_is_no_read_the_fit_is_saved():
    source = in_fold_loop("    del model, optimizer\n")
    text, _ = transformed(source, "ptq-dynamic")
    fit, save, delete = (text.index(s) for s in ("quantization.fit(", ".save(f", "del model"))
    assert fit < save < delete


def test_accumulation_by_a_cfg_class_attribute_shortens_the_pruning_schedule():
    text, said = transformed(in_train_loop(), "pruning")
    assert "// CFG.accum" in text
    assert not any("not visible where training starts" in s for s in said), said


ENSEMBLE = """\
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def predict(model, loader):
    model.eval()
    preds = []
    with torch.no_grad():
        for (x,) in loader:
            preds.append(model(x).softmax(1))
    return torch.cat(preds).cpu().numpy()


loader = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
"""


def test_an_ensemble_of_fold_checkpoints_is_fitted_per_checkpoint_without_tuning():
    source = ENSEMBLE + (
        "outputs = []\n"
        "for path in ['fold0.pth', 'fold1.pth']:\n"
        "    model = Net()\n"
        "    model.load_state_dict(torch.load(path)['model'])\n"
        "    outputs.append(predict(model, loader))\n"
        "print(np.mean(outputs, axis=0))\n"
    )
    text, said = transformed(source, "ptq-dynamic")
    load = text.index("model.load_state_dict")
    assert (
        load < text.index("    quantized_model = quantization.fit(") < text.index("outputs.append")
    )
    # predict() returns the predictions (torch.cat(...).cpu().numpy()): no metric to tune
    assert "eval_func" not in text


def test_a_function_loading_checkpoints_into_the_fitted_model_is_refused():
    source = ENSEMBLE + (
        "def inference(model, states, loader):\n"
        "    probs = []\n"
        "    for state in states:\n"
        "        model.load_state_dict(state['model'])\n"
        "        probs.append(predict(model, loader))\n"
        "    return np.mean(probs, axis=0)\n"
        "\n\n"
        "model = Net()\n"
        "states = [torch.load(f'fold{i}.pth') for i in range(2)]\n"
        "print(inference(model, states, loader))\n"
    )
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, "ptq-dynamic")
    message = str(refused.value)
    assert "inference() at line" in message and "loads weights into model" in message
    assert "model.load_state_dict(state['model'])" in message


DICT_BATCHES = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.fc = nn.Linear(8, 1)

    def forward(self, ids, mask):
        return self.fc((self.embed(ids) * mask.unsqueeze(-1)).mean(1))


def train_one_epoch(model, optimizer, dataloader, device, epoch):
    model.train()
    bar = tqdm(enumerate(dataloader), total=len(dataloader))
    for step, data in bar:
        ids = data["input_ids"].to(device, dtype=torch.long)
        mask = data["attention_mask"].to(device, dtype=torch.long)
        y = data["target"].to(device)
        loss = nn.functional.mse_loss(model(ids, mask).view(-1), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        bar.set_postfix(Epoch=epoch, Loss=loss.item())


@torch.no_grad()
def valid_one_epoch(model, dataloader, device, epoch):
    model.eval()
    total = 0.0
    for step, data in enumerate(dataloader):
        ids = data["input_ids"].to(device)
        mask = data["attention_mask"].to(device)
        total += nn.functional.mse_loss(model(ids, mask).view(-1), data["target"]).item()
    return total / len(dataloader)


rows = [
    {"input_ids": torch.randint(0, 16, (6,)), "attention_mask": torch.ones(6), "target": torch.rand(())}
    for _ in range(16)
]
train_loader = DataLoader(rows, batch_size=4)
valid_loader = DataLoader(rows, batch_size=8)
model = Net()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for epoch in range(1, 3):
    train_one_epoch(model, optimizer, train_loader, "cpu", epoch)
    val_loss = valid_one_epoch(model, valid_loader, "cpu", epoch)
    if val_loss < 1e-4:
        break
torch.save(model.state_dict(), "last.pt")
"""


def test_dict_batches_behind_a_tqdm_bar_are_fed_as_the_loop_calls_the_model():
    text, said = transformed(DICT_BATCHES, "ptq-static")
    # the epoch loop can stop early: the fit follows it
    assert text.index("    break\n") < text.index("quantization.fit(") < text.index('"last.pt"')
    assert '((data["input_ids"], data["attention_mask"]),) for data in valid_loader' in text
    # the evaluation, called with the epoch variable, tunes the fit after the loop; what it
    # returns is assigned to `val_loss`: lower is better
    assert 'valid_one_epoch(candidate, valid_loader, "cpu", epoch)' in text
    assert "higher_is_better=False" in text
    assert any("lower is better" in s for s in said), said


def test_an_inference_function_over_dict_batches_shapes_the_calibration_batches():
    source = DICT_BATCHES.split("def train_one_epoch")[0] + (
        "@torch.no_grad()\n"
        "def valid_fn(model, dataloader, device):\n"
        "    preds = []\n"
        "    bar = tqdm(enumerate(dataloader), total=len(dataloader))\n"
        "    for step, data in bar:\n"
        '        ids = data["input_ids"].to(device, dtype=torch.long)\n'
        '        mask = data["attention_mask"].to(device, dtype=torch.long)\n'
        "        preds.append(model(ids, mask).view(-1).cpu().numpy())\n"
        "    return np.concatenate(preds)\n"
        "\n\n"
        "rows = [\n"
        '    {"input_ids": torch.randint(0, 16, (6,)), "attention_mask": torch.ones(6)}\n'
        "    for _ in range(8)\n"
        "]\n"
        "test_loader = DataLoader(rows, batch_size=4)\n"
        "final = []\n"
        "for path in ['fold0.bin', 'fold1.bin']:\n"
        "    model = Net()\n"
        "    model.load_state_dict(torch.load(path)['model'])\n"
        "    final.append(valid_fn(model, test_loader, 'cpu'))\n"
        "print(np.mean(final, axis=0))\n"
    )
    source = "import numpy as np\n" + source
    text, said = transformed(source, "bf16")
    assert '((data["input_ids"], data["attention_mask"]),) for data in test_loader' in text
    assert "eval_func" not in text  # valid_fn returns the predictions
    assert any("as valid_fn() calls it" in s for s in said), said


EARLY_STOPPING = """

class EarlyStopping:
    def __init__(self, patience=2, path="checkpoint.pt"):
        self.patience, self.path = patience, path
        self.best_score = None
        self.counter = 0
        self.early_stop = False

    def __call__(self, val_loss, model):
        score = -val_loss
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.save_checkpoint(model)
            self.counter = 0
        else:
            self.counter += 1
            self.early_stop = self.counter >= self.patience

    def save_checkpoint(self, model):
        torch.save(model.state_dict(), self.path)

"""


def test_an_early_stopping_object_that_saves_the_best_checkpoint_prunes_in_epoch_one():
    """`early_stopping(val_loss, model)` saves through its class's `__call__`: the best
    checkpoint, which pruning must reach its target by the end of the first epoch for."""
    source = (
        in_fold_loop()
        .replace(
            "        if val_loss < best:\n"
            "            best = val_loss\n"
            '            torch.save({"model": model.state_dict(), "preds": preds}, f"fold{fold}_best.pth")\n',
            "        early_stopping(val_loss, model)\n"
            "        if early_stopping.early_stop:\n"
            "            break\n",
        )
        .replace("    best = 1e9\n", '    early_stopping = EarlyStopping(path=f"fold{fold}.pt")\n')
    )
    source = source.replace("\n\nfor fold in", EARLY_STOPPING + "\nfor fold in")
    assert "early_stopping(val_loss, model)" in source
    text, said = transformed(source, "pruning")
    assert any("keeps the best checkpoint" in s and "first epoch" in s for s in said), said


def test_an_enumerated_split_names_the_fold_folder():
    source = in_fold_loop().replace(
        "for fold in range(CFG.n_fold):",
        "for fold, (trn_idx, val_idx) in enumerate(tqdm([(0, 1), (1, 0)])):",
    )
    text, _ = transformed(source, "qat")
    assert 'compression_manager.save(f"neural_coder_output/qat/fold{fold}")' in text


def test_a_custom_model_with_a_pretrained_backbone_and_its_own_head_is_no_teacher():
    """`CustomModel(cfg, pretrained=True)`: the backbone is pretrained, the `fc` head the
    class builds is random, so a frozen copy would teach random logits."""
    source = in_fold_loop().replace(
        "    def __init__(self):\n        super().__init__()\n        self.backbone",
        "    def __init__(self, pretrained=False):\n        super().__init__()\n        self.backbone",
    )
    source = source.replace("    model = Net()\n", "    model = Net(pretrained=True)\n")
    with pytest.raises(NeuralCoderError) as refused:
        rewrite(source, "distillation")
    assert "Net.__init__ builds self.fc at line" in str(refused.value)
    # a teacher the user names is taken
    text, report = rewrite(source, "distillation", distillation={"teacher": "copy"})
    assert report.status is Status.TRANSFORMED, report.message


RUN_TRAINING = (
    HEADER
    + TRAIN_FN
    + """def run_training(model, optimizer, loader, num_epochs, fold):
    best_wts = copy.deepcopy(model.state_dict())
    best = 1e9
    for epoch in range(num_epochs):
        train_fn(loader, model, optimizer)
        val_loss, preds = valid_fn(loader, model)
        if val_loss <= best:
            best = val_loss
            best_wts = copy.deepcopy(model.state_dict())
            torch.save(model.state_dict(), f"Loss-Fold-{fold}.bin")
    model.load_state_dict(best_wts)
    return model, best


for fold in range(CFG.n_fold):
    loader = DataLoader(data, batch_size=4)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model, history = run_training(model, optimizer, loader, num_epochs=CFG.epochs, fold=fold)
    del model, history
"""
).replace("import numpy as np\n", "import copy\n\nimport numpy as np\n")


def test_run_training_returning_model_and_history_to_a_fold_loop_that_drops_it_qat():
    """`model, history = run_training(model, ...)` then `del model`: the int8 model the
    function hands back is saved in the function, per fold (QAT is not refused)."""
    text, said = transformed(RUN_TRAINING, "qat")
    reload = text.index("model.load_state_dict(best_wts)")
    end = text.index("on_train_end()")
    save = text.index('compression_manager.save(f"neural_coder_output/qat/fold{fold}")')
    assert reload < end < save < text.index("return model, best")


def test_run_training_returning_model_to_a_fold_loop_that_drops_it_ptq():
    text, _ = transformed(RUN_TRAINING, "ptq-dynamic")
    assert text.index("model.load_state_dict(best_wts)") < text.index("quantization.fit(")
    assert 'quantized_model.save(f"neural_coder_output/ptq-dynamic/fold{fold}")' in text


def test_run_training_whose_caller_uses_the_returned_model_saves_nothing_more():
    source = RUN_TRAINING.replace(
        "    del model, history\n", '    torch.save(model, f"m{fold}.pt")\n'
    )
    for approach in ("qat", "ptq-dynamic"):
        text, _ = transformed(source, approach)
        assert '.save(f"neural_coder_output' not in text, approach
