"""The int8 model still serves the script's own code: its class's methods survive FX
(`net.init_hidden(batch)` on the prepared model its evaluation calibrates with, and on the
int8 model), and an int8 model with no float weight left still answers
`next(self.parameters())`, which RNN code reads for the dtype and device of its state."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig
from neural_coder.runtime.loading import structure_for
from neural_coder.runtime.quant.module_tree import FLOAT_ANCHOR

HIDDEN, LAYERS, BATCH = 16, 2, 4


class Sentiment(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, HIDDEN, LAYERS, batch_first=True)
        self.fc = nn.Linear(HIDDEN, 1)
        self.hidden_dim = HIDDEN

    def forward(self, x, hidden):
        out, hidden = self.lstm(self.embedding(x), hidden)
        return torch.sigmoid(self.fc(out[:, -1])).squeeze(1), hidden

    def init_hidden(self, batch_size):
        weight = next(self.parameters()).data
        shape = (LAYERS, batch_size, self.hidden_dim)
        return weight.new_zeros(shape), weight.new_zeros(shape)


class Tabular(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 12), nn.Linear(12, 2)
        self.scale = 0.5

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    def predict(self, x):
        return self(x * self.scale).argmax(1)


def batches():
    g = torch.Generator().manual_seed(0)
    ids, labels = (
        torch.randint(0, 50, (16, 7), generator=g),
        torch.randint(0, 2, (16,), generator=g),
    )
    data = TensorDataset(ids, labels.float())
    return DataLoader(data, batch_size=BATCH, drop_last=True)


def evaluate(net):
    net.eval()
    hidden, hits = net.init_hidden(BATCH), 0
    with torch.no_grad():
        for x, y in batches():
            out, hidden = net(x, hidden)
            hits += (out.round() == y).sum().item()
    return hits / 16


def test_an_int8_model_with_no_float_weight_left_keeps_one_empty_parameter():
    torch.manual_seed(0)
    q = quantization.fit(Sentiment(), PostTrainingQuantConfig(approach="dynamic")).model
    params = dict(q.named_parameters())
    assert list(params) == [FLOAT_ANCHOR]  # embedding, LSTM and Linear are all int8
    assert params[FLOAT_ANCHOR].numel() == 0 and params[FLOAT_ANCHOR].dtype == torch.float32
    assert evaluate(q) >= 0  # init_hidden: next(self.parameters()) no longer raises
    state = q.state_dict()
    assert state[FLOAT_ANCHOR].numel() == 0
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    fresh, loaded = structure_for(loaded, Sentiment())
    fresh.load_state_dict(loaded)  # strict
    # a state dict saved without the anchor (an earlier int8 model) still loads strictly
    earlier = copy.copy(loaded)  # keeps the state dict's `_metadata` (layout versions)
    del earlier[FLOAT_ANCHOR]
    fresh.load_state_dict(earlier)
    assert evaluate(fresh) == evaluate(q)
    assert evaluate(copy.deepcopy(q)) == evaluate(pickle.loads(pickle.dumps(q)))


def test_a_model_with_float_weights_left_gets_no_extra_parameter():
    conf = PostTrainingQuantConfig(
        approach="dynamic", op_name_dict={"fc": {"weight": {"dtype": ["fp32"]}}}
    )
    q = quantization.fit(Sentiment(), conf).model
    assert FLOAT_ANCHOR not in dict(q.named_parameters())


def test_static_fx_keeps_the_models_methods_for_calibration_and_after():
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(32, 6), torch.zeros(32)), batch_size=8)
    seen = []

    def calibrate(prepared):
        seen.append(prepared.predict(torch.randn(2, 6)).shape)  # the class's own method
        for x, _ in loader:
            prepared(x)

    q = quantization.fit(Tabular(), PostTrainingQuantConfig(), calib_func=calibrate)
    assert q is not None and q.q_config["path"] == "fx"
    int8 = q.model
    assert seen == [torch.Size([2])]
    assert int8.predict(torch.randn(3, 6)).shape == (3,) and int8.scale == 0.5
    assert (
        sum(
            type(m).__name__ == "LinearReLU" or type(m).__name__ == "Linear" for m in int8.modules()
        )
        == 2
    )


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_the_script_evaluation_of_a_recurrent_model_tunes_the_fit(approach):
    torch.manual_seed(0)
    q = quantization.fit(
        Sentiment(),
        # any accuracy meets the goal: the fit returns the first candidate the evaluation
        # ran on (before, calibration failed on the GraphModule's missing init_hidden)
        PostTrainingQuantConfig(
            approach=approach,
            accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=1.0),
        ),
        calib_func=evaluate if approach == "static" else None,
        eval_func=evaluate,
    )
    assert q is not None and evaluate(q.model) >= 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_model_cast_to_16_bits_fails_once_with_the_reason(dtype, caplog):
    calls = []

    def evaluate_half(net):
        calls.append(1)
        return 1.0

    loader = DataLoader(TensorDataset(torch.randn(8, 6), torch.zeros(8)), batch_size=4)
    model = Tabular().to(dtype)
    q = quantization.fit(
        model, PostTrainingQuantConfig(), calib_dataloader=loader, eval_func=evaluate_half
    )
    assert q is None
    assert f"the model's weights are {dtype}" in caplog.text
    assert calls == []  # no trial ran (each one failed the same way before)
