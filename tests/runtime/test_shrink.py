"""Structured shrinking (`pruning/shrink.py`, `pruning/structured.py`): the pruned
channels leave the model, the layers after them follow, and the smaller model computes
what the masked model computed."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from neural_coder.runtime.batches import ModelInputs
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.pruning.shrink import (
    ShrinkUnavailableError,
    count_parameters,
    follower_params,
    shrink_model,
)
from neural_coder.runtime.training import prepare_compression

pytest.importorskip("torch_pruning")


class Block(nn.Module):
    """A ResNet basic block: conv-bn-relu-conv-bn plus the identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResidualCNN(nn.Module):
    """stem -> two residual blocks -> a 1x1 side branch concatenated -> MLP head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.block1 = Block(16)
        self.block2 = Block(16)
        self.side = nn.Conv2d(16, 8, 1)
        self.fc1 = nn.Linear(24, 32)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = torch.cat([x, torch.relu(self.side(x))], dim=1).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc1(x)))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _randomise_bn(model: nn.Module) -> None:
    """Batch norms as after training: zero does not map to zero."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _kill_rows(model: nn.Module, x: torch.Tensor, rows: dict[str, list[int]]) -> None:
    """What a `1xchannel` mask with shrink=True leaves: rows, biases and BNs zero."""
    modules = dict(model.named_modules())
    followers = follower_params(model, x, {n: modules[n] for n in rows})
    with torch.no_grad():
        for name, idx in rows.items():
            modules[name].weight[idx] = 0
            for p in followers[name]:
                p[idx] = 0


def test_residual_cnn_loses_dead_channels_and_keeps_its_outputs() -> None:
    torch.manual_seed(0)
    model = ResidualCNN()
    _randomise_bn(model)
    x = torch.randn(4, 3, 8, 8)
    _kill_rows(
        model,
        x,
        {"block1.conv1": [0, 3, 5, 9], "block2.conv1": [1, 2], "side": [0, 7], "fc1": [4, 30]},
    )
    # a residual channel dies only when every writer of it is dead: block1.conv2's
    # channel 6 alone stays (the stem and block2 still write channel 6)
    _kill_rows(model, x, {"block1.conv2": [6]})
    model.eval()
    expected = model(x)
    before = count_parameters(model)

    report = shrink_model(model, x)

    assert model.block1.conv1.out_channels == 12 and model.block1.bn1.num_features == 12
    assert model.block1.conv2.in_channels == 12 and model.block1.conv2.out_channels == 16
    assert model.block2.conv1.out_channels == 14
    assert model.side.out_channels == 6 and model.fc1.in_features == 22  # the concat slice
    assert model.fc1.out_features == 30 and model.head.in_features == 30
    assert model.head.out_features == 5  # the model's outputs never shrink
    assert report.params_before == before and report.params_after == count_parameters(model)
    assert report.params_after < before
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5


def test_residual_channel_dead_in_every_writer_is_removed_everywhere() -> None:
    torch.manual_seed(1)
    model = ResidualCNN()
    _randomise_bn(model)
    x = torch.randn(2, 3, 8, 8)
    _kill_rows(model, x, {"stem": [2, 11], "block1.conv2": [2, 11], "block2.conv2": [2, 11]})
    model.eval()
    expected = model(x)
    shrink_model(model, x)
    assert model.stem.out_channels == 14 and model.block1.conv1.in_channels == 14
    assert model.block2.bn2.num_features == 14 and model.side.in_channels == 14
    assert model.fc1.in_features == 22
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def _train(model: nn.Module, conf: WeightPruningConfig, x: torch.Tensor, y: torch.Tensor):
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    wrapped = cm.model
    optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.05)
    for step in range(6):
        cm.callbacks.on_step_begin(step)
        loss = nn.functional.cross_entropy(wrapped(x), y)
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        optimizer.zero_grad()
    return cm


@pytest.mark.parametrize("pattern", ["1xchannel", "channelx1"])
def test_mlp_pruned_with_shrink_is_smaller_and_equal_to_the_masked_model(pattern: str) -> None:
    torch.manual_seed(2)
    model = MLP()
    x, y = torch.randn(16, 12), torch.randint(0, 3, (16,))
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern=pattern,
        pruning_type="magnitude",
        pruning_scope="local",
        start_step=0,
        end_step=3,
        shrink=True,
    )
    cm = _train(model, conf, x, y)
    masked = copy.deepcopy(model).eval()
    cm.callbacks.on_train_end()
    model.eval()
    assert count_parameters(model) < count_parameters(masked)
    torch.testing.assert_close(model(x), masked(x), atol=1e-5, rtol=1e-5)
    summary = cm.summary
    assert summary["shrink_params_before"] == count_parameters(masked)
    assert summary["shrink_params_after"] == count_parameters(model)
    assert summary["shrink_latency_before_ms"] > 0 and summary["shrink_latency_after_ms"] > 0
    if pattern == "1xchannel":
        assert model.fc1.out_features == 16 and model.fc2.out_features == 16
    else:  # input columns: fc1's 12 inputs are the model's, so fc2's inputs go
        assert model.fc1.out_features == 16 and model.fc2.in_features == 16


def test_trained_residual_cnn_shrinks_to_what_it_computed_masked(tmp_path) -> None:
    torch.manual_seed(3)
    model = ResidualCNN()
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 5, (8,))
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="1xchannel",
        pruning_type="magnitude",
        pruning_scope="local",
        start_step=1,  # after one forward: the residual stream's writers are known
        end_step=3,
        shrink=True,
    )
    cm = _train(model, conf, x, y)
    masked = copy.deepcopy(model).eval()
    cm.callbacks.on_train_end()
    model.eval()
    assert count_parameters(model) < 0.5 * count_parameters(masked)
    assert model.block1.conv1.out_channels == 8  # half of each block's inner conv
    # the three writers of the residual stream were ranked together: half of it left
    assert model.stem.out_channels == 8 and model.block2.conv2.out_channels == 8
    assert model.side.in_channels == 8 and model.fc1.in_features == 8 + 4
    torch.testing.assert_close(model(x), masked(x), atol=1e-4, rtol=1e-4)
    # the architecture changed: the whole model is saved, and loads back
    path = tmp_path / "shrunk.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False).eval()
    assert count_parameters(loaded) == count_parameters(model)
    torch.testing.assert_close(loaded(x), model(x))


def test_explicit_shrink_after_training_without_the_option() -> None:
    torch.manual_seed(4)
    model = MLP()
    x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="channelx1", pruning_type="magnitude", end_step=2
    )
    cm = _train(model, conf, x, y)
    cm.callbacks.on_train_end()
    assert "shrink_params_after" not in cm.summary
    masked = copy.deepcopy(model).eval()
    result = cm.shrink(x)
    assert result["shrink_params_after"] < result["shrink_params_before"]
    assert cm.summary["shrink_params_after"] == count_parameters(model)
    torch.testing.assert_close(model.eval()(x), masked(x), atol=1e-5, rtol=1e-5)


def test_without_torch_pruning_a_clear_error_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_pruning", None)
    with pytest.raises(ShrinkUnavailableError, match=r"pip install 'neural-coder\[structured\]'"):
        shrink_model(MLP(), torch.randn(2, 12))


def test_the_runtime_imports_without_torch_pruning() -> None:
    code = (
        "import sys; sys.modules['torch_pruning'] = None\n"
        "import neural_coder.runtime.training, neural_coder.runtime.pruning\n"
        "from neural_coder.runtime.pruning import shrink_model\n"
        "from neural_coder.runtime.config import WeightPruningConfig\n"
        "WeightPruningConfig(pattern='1xchannel', shrink=True)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_summary_table_shows_parameters_and_latency_before_and_after() -> None:
    from neural_coder.runtime.summary import format_table

    table = format_table(
        {
            "shrink_params_before": 1000,
            "shrink_params_after": 250,
            "shrink_channels_removed": 12,
            "shrink_latency_before_ms": 2.0,
            "shrink_latency_after_ms": 0.5,
        }
    )
    assert "1000 -> 250 (4.00x fewer, 12 channels removed)" in table
    assert "2.000 ms -> 0.500 ms" in table and "(4.00x)" in table
    assert "shrink_params_before" not in table


def test_bert_feed_forward_shrinks_and_layernorm_groups_stay_whole() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(5)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config).eval()
    inputs = {"input_ids": torch.randint(0, 50, (2, 6)), "attention_mask": torch.ones(2, 6).long()}
    # feed-forward rows 0-11 pruned; a row of the attention output, which feeds the
    # residual stream and a LayerNorm, pruned too: that channel must stay
    _kill_rows(
        model,
        inputs,
        {"bert.encoder.layer.0.intermediate.dense": list(range(12)),
         "bert.encoder.layer.0.attention.output.dense": [3]},
    )  # fmt: skip
    expected = model(**inputs).logits
    # called as model(input_ids, attention_mask=...): positional and keyword inputs
    call = ModelInputs(inputs["input_ids"], attention_mask=inputs["attention_mask"])
    report = shrink_model(model, call)
    layer = model.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 20 and layer.output.dense.in_features == 20
    assert layer.attention.output.dense.out_features == 16
    assert report.channels_removed == {"bert.encoder.layer.0.intermediate.dense": 12}
    torch.testing.assert_close(model(**inputs).logits, expected, atol=1e-5, rtol=1e-5)


class ChannelMixer(nn.Module):
    """A softmax over channels: DepGraph sees an elementwise op, but removing a zero
    channel changes every other channel's value."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.softmax(self.conv(x), dim=1).mean(dim=(2, 3)))


def test_a_shrink_that_would_change_the_outputs_is_undone_and_refused() -> None:
    from neural_coder.runtime.pruning.shrink import ShrinkMismatchError

    torch.manual_seed(6)
    model = ChannelMixer().eval()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        model.conv.weight[:4] = 0
        model.conv.bias[:4] = 0
    conv, expected = model.conv, model(x)
    with pytest.raises(ShrinkMismatchError, match="left as it was"):
        shrink_model(model, x)
    assert model.conv is conv and conv.out_channels == 8 and conv.weight.shape[0] == 8
    assert model.head.in_features == 8
    torch.testing.assert_close(model(x), expected)
