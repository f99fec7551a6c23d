"""Analysis finds the training loop's parts, with lines, in every style."""

from __future__ import annotations

import pytest

from neural_coder.api import inspect
from tests.conftest import script_path


def loop_of(name: str):
    facts = inspect(script_path(name))
    assert facts.loop is not None, facts.loop_error
    return facts, facts.loop


def test_epoch_function_called_from_main():
    facts, loop = loop_of("epoch_fn_style.py")
    src = facts.source
    assert facts.index.describe(loop.entry_scope) == "main()"
    assert facts.index.describe(loop.step_scope) == "train()"
    assert (src.line(loop.entry_loop), src.line(loop.step_loop), src.line(loop.optimizer_step)) == (
        76,
        35,
        41,
    )
    assert loop.model_in_entry == "model" and loop.model_origin == "LeNet()"
    assert loop.optimizer == "optimizer"
    assert loop.epoch_var == "epoch" and loop.step_index == "batch_idx"
    assert loop.model_output == "output" and loop.model_inputs == "data"
    assert loop.total_steps == "len(range(1, args.epochs + 1)) * len(train_loader)"
    assert [h.function.key for h in loop.hops] == ["train"]


def test_module_level_with_gradient_accumulation():
    facts, loop = loop_of("flat_script.py")
    assert facts.index.describe(loop.entry_scope) == "module level"
    assert loop.model_in_entry == "mlp" and loop.optimizer == "optim"
    # the optimizer step sits under `if (it + 1) % grad_accum == 0`
    assert loop.total_steps == "3 * len(train_dl) // grad_accum"
    assert loop.hops == []


def test_trainer_class_loop_across_three_methods_with_scaler():
    facts, loop = loop_of("trainer_class.py")
    assert facts.index.describe(loop.entry_scope) == "Trainer.fit()"
    assert [h.function.key for h in loop.hops] == ["Trainer._run_batch", "Trainer._run_epoch"]
    assert loop.optimizer == "self.optimizer"  # from scaler.step(self.optimizer)
    assert loop.model_in_entry == "self.model" and loop.model_origin == "SmallConvNet()"
    assert loop.step_index is None
    assert loop.total_steps == "self.max_epochs * len(self.train_data)"


def test_hugging_face_model_in_custom_loop():
    facts, loop = loop_of("hf_custom_loop.py")
    assert loop.model_origin == "transformers.AutoModelForSequenceClassification.from_config"
    assert loop.model_inputs == "batch" and loop.model_output == "outputs"
    assert loop.loss_name == "loss"
    kinds = {f.kind for f in facts.found}
    assert {"model", "optimizer", "scheduler", "dataloader"} <= kinds


def test_keyword_arguments_are_followed_into_the_callee():
    _, loop = loop_of("one_epoch_helper.py")
    assert loop.total_steps == "cfg.epochs * len(train_loader)"  # data_loader=train_loader
    assert loop.model_origin == "SmallResidual()"


def test_factory_model_and_while_loop_with_step_budget():
    facts, loop = loop_of("step_budget_loop.py")
    assert loop.epoch_loop is None
    assert loop.model_in_entry == "network" and loop.model_origin == "torch.nn.Sequential"
    assert loop.total_steps == "MAX_STEPS"


@pytest.mark.parametrize("name", ["eval_only.py", "hf_trainer.py"])
def test_scripts_without_a_hand_written_loop(name):
    facts = inspect(script_path(name))
    assert facts.loop is None
    assert "backward" in facts.loop_error.message


def test_submodules_of_model_classes_are_not_listed_as_models():
    facts = inspect(script_path("epoch_fn_style.py"))
    assert [f.target for f in facts.found if f.kind == "model"] == ["model"]


def test_trained_model_found_behind_a_long_frozen_branch(tmp_path):
    """Consistency-distillation steps build the loss from a student output and a target
    computed through many names by frozen models; the prediction is re-bound under
    no_grad. The walk back from the loss reaches the student's call (the model the
    optimizer updates), however long the frozen branch is."""
    chain = "\n".join(f"        h{i} = h{i - 1} * 0.5 + shift" for i in range(1, 80))
    text = f'''import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


student = Net()
target = Net()
target.requires_grad_(False)
optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
shift = torch.zeros(4)
for x in torch.randn(3, 2, 4):
    eps = student(x)
    pred = eps - shift
    model_pred = pred * 2
    with torch.no_grad():
        h0 = x + 1
{chain}
        pred = target(h79)
        goal = pred + shift
    loss = F.mse_loss(model_pred, goal)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
'''
    script = tmp_path / "consistency_step.py"
    script.write_text(text)
    loop = inspect(script).loop
    assert loop is not None
    assert loop.model_in_entry == "student"
