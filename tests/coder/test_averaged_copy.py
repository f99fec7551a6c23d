"""Pruning a model the script keeps a moving average of: `track_copy(<the copy>)` goes
where both the manager and the copy are bound, or the plan is refused as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status

HEAD = """import argparse
import torch
from timm.utils import ModelEmaV2

parser = argparse.ArgumentParser()
parser.add_argument("--model-ema", action="store_true")
args = parser.parse_args()
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
"""

LOOP = """for epoch in range(2):
    for x, y in [(torch.randn(3, 4), torch.tensor([0, 1, 0]))]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if model_ema is not None:
            model_ema.update(model)
torch.save(model_ema.module.state_dict() if model_ema else model.state_dict(), "m.pt")
"""


def rewrite(text: str, approach: str = "pruning", target: str = "runtime") -> tuple[str, list]:
    options = build_options(approach, target, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.warnings


def lines(text: str) -> list[str]:
    return [line.split("  # neural-coder")[0] for line in text.splitlines()]


def test_a_copy_with_a_default_is_tracked_next_to_the_prepare():
    # DeiT / timm: `model_ema = None`, then built when the flag asks for it
    text = (
        HEAD
        + ("model_ema = None\nif args.model_ema:\n    model_ema = ModelEmaV2(model, decay=0.999)\n")
        + LOOP
    )
    out, warnings = rewrite(text)
    got = lines(out)
    prepare = next(i for i, line in enumerate(got) if "prepare_compression(" in line)
    track = got.index("compression_manager.track_copy(model_ema)")
    assert prepare < track < got.index("for epoch in range(2):")
    assert got[track - 1] == "compression_manager.callbacks.on_train_begin()"
    assert not any("moving average" in w for w in warnings), warnings


def test_a_copy_built_after_the_prepare_is_tracked_where_it_is_built():
    # the manager is prepared before the wrap; the copy is made of the wrapped model
    text = HEAD + ("model = torch.compile(model)\nmodel_ema = ModelEmaV2(model)\n") + LOOP
    got = lines(rewrite(text)[0])
    built = got.index("model_ema = ModelEmaV2(model)")
    assert got[built + 1] == "compression_manager.track_copy(model_ema)"
    assert next(i for i, line in enumerate(got) if "prepare_compression(" in line) < built


def test_a_copy_only_bound_on_one_path_keeps_the_refusal():
    text = HEAD + "if torch.cuda.is_available():\n    model_ema = ModelEmaV2(model)\n" + LOOP
    with pytest.raises(NeuralCoderError, match=r"ModelEmaV2\(model\) at line 11 keeps a moving"):
        rewrite(text)


def test_a_copy_behind_a_flag_without_a_default_is_tracked_under_that_flag():
    text = HEAD + "if args.model_ema:\n    model_ema = ModelEmaV2(model)\n" + LOOP
    out, warnings = rewrite(text)
    got = lines(out)
    start = got.index("compression_manager.callbacks.on_train_begin()")
    assert got[start + 1 : start + 3] == [
        "if args.model_ema:",
        "    compression_manager.track_copy(model_ema)",
    ]
    assert not any("moving average" in w for w in warnings), warnings


@pytest.mark.parametrize(("approach", "target"), [("qat", "inc"), ("pruning", "inc")])
def test_inc_keeps_the_refusal(approach, target):
    # INC has no track_copy
    text = HEAD + "model_ema = ModelEmaV2(model)\n" + LOOP
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(text, approach, target)


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_qat_is_prepared_before_the_copy_so_the_copy_is_of_the_fake_quant_model(approach):
    # before: refused, QAT would have left the copy float
    text = HEAD + "model_ema = None\nif args.model_ema:\n    model_ema = ModelEmaV2(model)\n" + LOOP
    got = lines(rewrite(text, approach)[0])
    branch = got.index("if args.model_ema:")
    assert got.index("model = compression_manager.model") < branch
    assert got[branch + 1 : branch + 3] == [
        "    model_ema = ModelEmaV2(model)",
        "    compression_manager.track_copy(model_ema)",
    ]


def test_qat_rebinds_a_bare_deep_copy_to_its_int8_module_after_training():
    text = (
        HEAD
        + "ema = copy.deepcopy(model)\n"
        + LOOP.replace(
            "        if model_ema is not None:\n            model_ema.update(model)\n",
            "        with torch.no_grad():\n"
            "            for pe, pm in zip(ema.parameters(), model.parameters()):\n"
            "                pe.lerp_(pm, 0.1)\n",
        ).replace(
            "model_ema.module.state_dict() if model_ema else model.state_dict()", "ema.state_dict()"
        )
    )
    got = lines(rewrite("import copy\n" + text, "qat")[0])
    end = got.index("compression_manager.callbacks.on_train_end()")
    assert got[end + 1] == "ema = compression_manager.converted_copy(ema)"
    assert got[got.index("ema = copy.deepcopy(model)") - 1] == "model = compression_manager.model"


def test_qat_keeps_the_refusal_for_a_copy_of_averaged_tensors():
    # diffusers' EMAModel keeps a list of tensors: no module to convert to int8
    text = SHADOW.replace("FLAG_LINE", "")
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(
            text.replace('"--use_ema", action="store_true"', '"--use_ema", default=True'), "qat"
        )


def test_distillation_with_pruning_tracks_the_copy_too():
    text = HEAD + "model_ema = ModelEmaV2(model)\n" + LOOP
    options = build_options("pruning+distillation", None, {}, {"distillation": {"teacher": "copy"}})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    assert "compression_manager.track_copy(model_ema)" in lines(out)


SHADOW = """import argparse
import torch
from diffusers.training_utils import EMAModel

parser = argparse.ArgumentParser()
parser.add_argument("--use_ema", action="store_true")
args = parser.parse_args()
unet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
if args.use_ema:
    ema_unet = EMAModel(unet.parameters(), decay=0.9999)
FLAG_LINE
optimizer = torch.optim.AdamW(unet.parameters())
for epoch in range(2):
    for x, y in [(torch.randn(3, 4), torch.randn(3, 2))]:
        loss = torch.nn.functional.mse_loss(unet(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if args.use_ema:
            ema_unet.step(unet.parameters())
if args.use_ema:
    ema_unet.copy_to(unet.parameters())
torch.save(unet.state_dict(), "unet.pt")
"""


def test_a_copy_built_under_a_flag_is_tracked_under_the_same_flag():
    got = lines(rewrite(SHADOW.replace("FLAG_LINE", ""))[0])
    start = got.index("compression_manager.callbacks.on_train_begin()")
    assert got[start + 1 : start + 3] == [
        "if args.use_ema:",
        "    compression_manager.track_copy(ema_unet)",
    ]


def test_a_flag_changed_before_the_prepare_keeps_the_warning():
    text = SHADOW.replace("FLAG_LINE", "args.use_ema = args.use_ema and torch.cuda.is_available()")
    out, warnings = rewrite(text)
    assert "track_copy" not in out
    assert any("with --use_ema, EMAModel(unet.parameters())" in w for w in warnings), warnings


def test_a_copy_built_from_a_second_instance_is_found_by_its_step_with_the_model():
    # diffusers' train_text_to_image: the average starts from a second load of the model
    text = SHADOW.replace(
        "    ema_unet = EMAModel(unet.parameters(), decay=0.9999)",
        "    ema_unet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))\n"
        "    ema_unet = EMAModel(ema_unet.parameters(), decay=0.9999)",
    ).replace("FLAG_LINE", "")
    got = lines(rewrite(text)[0])
    assert "    compression_manager.track_copy(ema_unet)" in got
    out, warnings = rewrite(text, "qat")
    assert "track_copy" not in out
    assert any("EMAModel(ema_unet.parameters()) at line 11 keeps" in w for w in warnings), warnings


TRAINER_CLASS = """import torch
import torch.nn as nn
from timm.utils import ModelEmaV2


class Trainer:
    def __init__(self, model, loader, epochs=2):
        self.model = model
        self.loader = loader
        self.epochs = epochs
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        EMA_LINE

    def train_step(self, x, y):
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.model_ema.update(self.model)

    def fit(self):
        for epoch in range(self.epochs):
            for x, y in self.loader:
                self.train_step(x, y)
        torch.save(self.model_ema.module.state_dict(), "ema.pt")


model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
Trainer(model, [(torch.randn(4, 8), torch.randint(0, 4, (4,)))]).fit()
"""


@pytest.mark.parametrize("built", ["ModelEmaV2(self.model)", "ModelEmaV2(model)"])
def test_a_copy_the_class_makes_in_its_init_is_tracked_with_the_prepare(built):
    # found by its argument, or (the constructor's parameter) by its update with self.model
    text = TRAINER_CLASS.replace("EMA_LINE", f"self.model_ema = {built}")
    got = lines(rewrite(text)[0])
    start = got.index("        self.compression_manager.callbacks.on_train_begin()")
    assert got[start + 1] == "        self.compression_manager.track_copy(self.model_ema)"
    with pytest.raises(NeuralCoderError, match=r"ModelEmaV2\(.*\) at line 12 keeps a moving"):
        rewrite(text, "qat")  # before: no word, and the saved average stayed float


def test_a_copy_the_init_makes_on_one_path_only_is_refused():
    text = TRAINER_CLASS.replace(
        "EMA_LINE", "if epochs > 1:\n            self.model_ema = ModelEmaV2(self.model)"
    )
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(text)


def test_a_copy_built_on_the_else_path_is_not_tracked_under_the_test():
    text = (
        HEAD
        + ("plain = False\nif plain:\n    pass\nelse:\n    model_ema = ModelEmaV2(model)\n")
        + LOOP
    )
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(text)
    text = text.replace("if plain:\n    pass\nelse:\n", "if not plain:\n")
    assert "    compression_manager.track_copy(model_ema)" in lines(rewrite(text)[0])


SETUP_METHOD = """import torch
import torch.nn as nn
from ultralytics.utils.torch_utils import ModelEMA


class Trainer:
    def __init__(self, model, loader, epochs=2):
        self.model, self.loader, self.epochs = model, loader, epochs

    def _setup_train(self):
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.ema = ModelEMA(self.model)

    def optimizer_step(self):
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.ema.update(self.model)

    def train(self):
        SETUP_CALL
        for epoch in range(self.epochs):
            for x, y in self.loader:
                loss = nn.functional.cross_entropy(self.model(x), y)
                loss.backward()
                self.optimizer_step()
        torch.save(self.ema.ema.state_dict(), "last.pt")


model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
Trainer(model, [(torch.randn(4, 8), torch.randint(0, 4, (4,)))]).train()
"""


def test_a_copy_built_by_a_setup_method_called_before_training_is_tracked():
    # YOLOv8's trainer: _do_train() calls self._setup_train(), which builds self.ema
    got = lines(rewrite(SETUP_METHOD.replace("SETUP_CALL", "self._setup_train()"))[0])
    start = got.index("        self.compression_manager.callbacks.on_train_begin()")
    assert got[start + 1] == "        self.compression_manager.track_copy(self.ema)"


def test_a_setup_method_called_only_on_one_path_keeps_the_refusal():
    text = SETUP_METHOD.replace("SETUP_CALL", "if self.epochs:\n            self._setup_train()")
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(text)


def test_a_post_training_fit_says_it_does_not_quantize_the_average():
    options = build_options("ptq-dynamic", None, {}, {})
    _, report = rewrite_source(
        Path("s.py"), HEAD + "model_ema = ModelEmaV2(model)\n" + LOOP, options
    )
    assert report.status is Status.TRANSFORMED, report.message
    assert any("the fit quantizes model itself, not that copy" in w for w in report.warnings)


def test_a_copy_built_when_an_off_flag_is_off_is_tracked_under_qat():
    # on the `else` path the default run builds the copy (was refused): prepared before
    # the branches, the copy is tracked where it is built
    text = HEAD + "if args.model_ema:\n    pass\nelse:\n    model_ema = ModelEmaV2(model)\n" + LOOP
    got = lines(rewrite(text, "qat")[0])
    built = got.index("    model_ema = ModelEmaV2(model)")
    assert got[built + 1] == "    compression_manager.track_copy(model_ema)"
    assert got.index("model = compression_manager.model") < got.index("if args.model_ema:")


ONLY_THE_COPY = LOOP.replace(
    "model_ema.module.state_dict() if model_ema else model.state_dict()",
    "model_ema.module.state_dict()",
)
EVALUATE = """loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(6, 4), torch.tensor([0, 1] * 3)), batch_size=3
)


def evaluate(net, loader):
    return sum(net(x).argmax(1).eq(y).float().mean().item() for x, y in loader)


"""


def ptq(text: str, approach: str = "ptq-static") -> tuple[str, list[str], list[str]]:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    return out, report.warnings, report.placed


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic", "bf16"])
def test_post_training_on_a_script_that_only_reads_the_copy_quantizes_the_copy(approach):
    # before: refused (and before that, the fit quantized the model and saved it aside
    # while the script evaluated and saved the float average)
    text = (
        HEAD
        + EVALUATE
        + "model_ema = ModelEmaV2(model)\n"
        + ONLY_THE_COPY
        + "print(evaluate(model_ema.module, loader))\n"
    )
    out, warnings, placed = ptq(text, approach)
    got = lines(out)
    replaced = (
        "model_ema.module = quantized_model if quantized_model is not None else model_ema.module"
    )
    assert got.index(replaced) < got.index('torch.save(model_ema.module.state_dict(), "m.pt")')
    assert "fit(\n    model_ema.module," in out
    assert "eval_func=lambda candidate: evaluate(candidate, loader)" in out
    assert any("model_ema.module is quantized" in p for p in placed), placed
    assert not any("moving average" in w for w in warnings), warnings


def test_a_moving_average_of_the_library_classes_is_quantized_in_its_module():
    # torch's AveragedModel keeps the copy in .module (its forward runs it), YOLOv5's
    # ModelEMA in .ema; the evaluation of the wrapper tunes the fit with the candidate
    swa = (
        HEAD.replace(
            "from timm.utils import ModelEmaV2",
            "from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn",
        )
        + EVALUATE
        + "ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99))\n"
        + LOOP.replace("model_ema.update(model)", "ema_model.update_parameters(model)")
        .replace("model_ema is not None", "True")
        .replace(
            "torch.save(model_ema.module.state_dict() if model_ema else model.state_dict(), ",
            "print(evaluate(ema_model, loader))\ntorch.save(ema_model.state_dict(), ",
        )
    )
    got = lines(ptq(swa)[0])
    assert (
        "ema_model.module = quantized_model if quantized_model is not None else ema_model.module"
        in got
    )
    assert "    eval_func=lambda candidate: evaluate(candidate, loader)," in got
    yolo = (
        HEAD.replace(
            "from timm.utils import ModelEmaV2",
            "from ultralytics.utils.torch_utils import ModelEMA",
        )
        + EVALUATE
        + "model_ema = ModelEMA(model)\n"
        + ONLY_THE_COPY.replace("model_ema.module.state_dict()", "model_ema.ema.state_dict()")
    )
    assert (
        "model_ema.ema = quantized_model if quantized_model is not None else model_ema.ema"
        in lines(ptq(yolo)[0])
    )


@pytest.mark.parametrize("approach", ["ptq-static", "bf16"])
def test_stochastic_weight_averaging_is_quantized_after_update_bn(approach):
    """SWA: `update_bn(loader, swa_model)` recomputes the batch norm statistics of the
    averaged weights after training; the fit went before it (the int8 model then had no
    BN left to update, and kept the stale averaged statistics)."""
    text = (
        HEAD.replace(
            "from timm.utils import ModelEmaV2",
            "from torch.optim.swa_utils import AveragedModel, update_bn",
        )
        + EVALUATE
        + "swa_model = AveragedModel(model)\n"
        + LOOP.replace("model_ema.update(model)", "swa_model.update_parameters(model)")
        .replace("model_ema is not None", "True")
        .replace(
            "torch.save(model_ema.module.state_dict() if model_ema else model.state_dict(), ",
            "update_bn(loader, swa_model)\nprint(evaluate(swa_model, loader))\n"
            "torch.save(swa_model.module.state_dict(), ",
        )
    )
    out, _, placed = ptq(text, approach)
    got = lines(out)
    fit = next(i for i, line in enumerate(got) if ".fit(" in line)
    assert got.index("update_bn(loader, swa_model)") < fit
    assert any("update_bn at line" in p for p in placed), placed


def test_post_training_on_a_copy_evaluated_during_training_only_is_refused():
    text = (
        HEAD
        + "model_ema = ModelEmaV2(model)\n"
        + (
            "def evaluate(net):\n    return net(torch.randn(3, 4)).argmax(1).float().mean().item()\n"
        )
        + LOOP.replace(
            'torch.save(model_ema.module.state_dict() if model_ema else model.state_dict(), "m.pt")\n',
            "    print(evaluate(model_ema.module))\n",
        )
    )
    options = build_options("ptq-static", None, {}, {})
    with pytest.raises(
        NeuralCoderError,
        match=r"ModelEmaV2\(\.\.\.\) at line 10 .* during training only \(line 21\)",
    ):
        rewrite_source(Path("s.py"), text, options)


def test_a_copy_only_saved_in_the_loop_beside_the_evaluated_model_quantizes_the_model():
    """deit: each epoch evaluates the model and saves a checkpoint holding the average
    too; nothing reads either after training. The model is what the script measures:
    quantized at its last epoch, with the warning (it was refused as a copy 'evaluated
    during training only')."""
    text = (
        HEAD
        + "model_ema = ModelEmaV2(model)\n"
        + (
            "def evaluate(net):\n    return net(torch.randn(3, 4)).argmax(1).float().mean().item()\n"
        )
        + LOOP.replace(
            'torch.save(model_ema.module.state_dict() if model_ema else model.state_dict(), "m.pt")\n',
            "    print(evaluate(model))\n"
            '    torch.save({"model": model.state_dict(), "ema": model_ema.module.state_dict()}, "c.pt")\n',
        )
    )
    out, warnings, _ = ptq(text)
    assert "quantization.fit(\n    model," in out
    assert any("the fit quantizes model itself, not that copy" in w for w in warnings), warnings


def test_post_training_on_a_copy_whose_module_cannot_be_told_is_refused():
    # diffusers' EMAModel keeps a list of tensors: no module to quantize
    text = SHADOW.replace("FLAG_LINE", "").replace(
        "if args.use_ema:\n    ema_unet.copy_to(unet.parameters())\n"
        'torch.save(unet.state_dict(), "unet.pt")\n',
        'torch.save(ema_unet.state_dict(), "ema.pt")\n',
    )
    options = build_options("ptq-dynamic", None, {}, {})
    with pytest.raises(NeuralCoderError, match="which of its attributes holds the averaged module"):
        rewrite_source(Path("s.py"), text, options)


def test_post_training_on_a_script_that_reads_the_model_too_keeps_the_warning():
    text = HEAD + "model_ema = ModelEmaV2(model)\n" + LOOP
    out, warnings = rewrite(text, "ptq-dynamic")
    assert any("keeps a moving average of model" in w for w in warnings), warnings


def test_qat_prepares_before_the_copy_out_of_the_with_around_the_loop():
    text = HEAD + "model_ema = ModelEmaV2(model)\nwith torch.autograd.set_detect_anomaly(False):\n"
    text += "".join("    " + line + "\n" for line in LOOP.splitlines())
    got = lines(rewrite(text, "qat")[0])
    built = got.index("model_ema = ModelEmaV2(model)")
    assert got[built - 1] == "model = compression_manager.model"
    assert got[built + 1] == "compression_manager.track_copy(model_ema)"


@pytest.mark.parametrize(
    "between",
    [
        "model = torch.nn.Sequential(torch.nn.Linear(4, 2))\n",  # another model trains
        "def helper():\n    pass\nfor fold in range(2):\n    pass\n",  # only unrelated code: fine
    ],
)
def test_qat_keeps_the_refusal_when_the_model_is_rebound_after_the_copy(between):
    text = HEAD + "model_ema = ModelEmaV2(model)\n" + between + LOOP
    if "Sequential" in between:
        with pytest.raises(NeuralCoderError, match="keeps a moving average"):
            rewrite(text, "qat")
    else:
        assert "track_copy(model_ema)" in rewrite(text, "qat")[0]


def test_qat_keeps_the_refusal_for_a_copy_built_in_a_loop_around_training():
    # the training loop runs in a loop of its own, the copy is built outside it: the
    # prepare cannot leave the outer loop
    text = HEAD + "model_ema = ModelEmaV2(model)\nfor run in range(2):\n"
    text += "".join("    " + line + "\n" for line in LOOP.splitlines())
    with pytest.raises(NeuralCoderError, match="keeps a moving average"):
        rewrite(text, "qat")
