"""A model built at module level and trained in a function (`def main():` reading the
global `policy`): the re-binding of the compressed model there is declared `global`, so
the earlier reads in the function do not raise UnboundLocalError and the module's other
functions use the compressed model. Also the REINFORCE layout, whose loss is read from
log-probs an earlier call saved: the model is the one the optimizer updates; and an early
stop on a metric (`if running_reward > threshold: break`) is no run length."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

GLOBAL_MODEL = '''import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(3, 4), torch.tensor([0, 1, 0]))] * 4
def main():
    """Train, then save."""
    for epoch in range(2):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(model.state_dict(), "m.pt")
main()
'''

REINFORCE = """import torch
from itertools import count
from torch.distributions import Categorical
policy = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
saved_log_probs, rewards = [], []
def select_action(state):
    m = Categorical(logits=policy(state.unsqueeze(0)))
    action = m.sample()
    saved_log_probs.append(m.log_prob(action))
    return action.item()
def finish_episode():
    returns = torch.tensor(rewards[::-1]).cumsum(0).flip(0)
    loss = torch.cat([-lp * r for lp, r in zip(saved_log_probs, returns)]).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    del rewards[:], saved_log_probs[:]
def main():
    running_reward = 10
    for i_episode in count(1):
        for t in range(20):
            select_action(torch.randn(4))
            rewards.append(1.0)
        running_reward = 0.05 * 20 + 0.95 * running_reward
        finish_episode()
        if running_reward > 15:
            break
    torch.save(policy.state_dict(), "policy.pt")
main()
"""


def _rewrite(text: str, approach: str) -> tuple[str, list[str]]:
    options = build_options(approach, None, {}, {})
    out, report = rewrite_source(Path("s.py"), text, options)
    assert report.status is Status.TRANSFORMED, report
    again, second = rewrite_source(Path("s.py"), out, options)
    assert second.status is Status.UNCHANGED and again == out
    compile(out, "s.py", "exec")  # a `global` after a read of the name is a SyntaxError
    return out, report.warnings


def _body_of_main(out: str) -> list[str]:
    lines = out.split("def main():\n", 1)[1].splitlines()
    return [line.split("  # neural-coder")[0] for line in lines]


@pytest.mark.parametrize("approach", ["qat", "pruning+qat", "ptq-dynamic"])
def test_a_module_level_model_rebound_in_a_function_is_declared_global(approach):
    out, _ = _rewrite(GLOBAL_MODEL, approach)
    body = _body_of_main(out)
    assert body[0] == '    """Train, then save."""'  # the docstring stays first
    assert body[1] == "    global model"


def test_pruning_rebinds_nothing_and_declares_nothing():
    out, _ = _rewrite(GLOBAL_MODEL, "pruning")
    assert "global model" not in out


@pytest.mark.parametrize(
    "variant",
    [
        # the model is a parameter: the function's own name, re-bound locally
        GLOBAL_MODEL.replace("def main():", "def main(model):").replace(
            "main()\n", "main(model)\n"
        ),
        # the function builds its own model: a local
        GLOBAL_MODEL.replace(
            '    """Train, then save."""\n',
            '    """Train, then save."""\n    model = torch.nn.Linear(4, 2)\n    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n',
        ),
    ],
    ids=["parameter", "local"],
)
def test_a_local_or_parameter_model_gets_no_global(variant):
    out, _ = _rewrite(variant, "qat")
    assert "global model" not in out


def test_reinforce_trains_the_model_its_optimizer_updates():
    out, warnings = _rewrite(REINFORCE, "qat")
    assert "prepare_compression(policy, QuantizationAwareTrainingConfig())" in out
    body = _body_of_main(out)
    assert body[0] == "    global policy"
    assert "finish_episode(compression_manager=compression_manager)" in out


def test_an_early_stop_on_a_reward_is_no_run_length():
    out, warnings = _rewrite(REINFORCE, "pruning")
    assert "end_step=1," in out  # one-shot, not `0.8 * 15` steps
    assert not any("15" in w for w in warnings)
    assert any("run length could not be read" in w for w in warnings), warnings
