"""A trainer class whose caller loads the best epoch's checkpoint back into
`trainer.model` after `trainer.fit()`: rewritten, the script loads it (the fake-quant
checkpoint before QAT converts, the float one before the fit quantizes), evaluates the
int8 model and ends with it. Also with the model built by the caller, handed to the
trainer (`self.model = model.to(device)`) and reloaded under the caller's own name."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, run_script

pytestmark = pytest.mark.e2e

NAME = "trainer_best_reload.py"

HANDED_IN = [
    ("    def __init__(self, args):\n", "    def __init__(self, args, model):\n"),
    ("        self.model = SmallConvNet()\n", '        self.model = model.to("cpu")\n'),
    (
        "    trainer = Trainer(args)\n",
        "    model = SmallConvNet()\n    trainer = Trainer(args, model)\n",
    ),
    (
        "    recorded = trainer.load_checkpoint(args.best)\n",
        '    state = torch.load(args.best)\n    model.load_state_dict(state["model"])\n'
        '    recorded = state["acc"]\n',
    ),
]


@pytest.mark.parametrize("approach", ["qat", "ptq-static"])
def test_the_best_checkpoint_reloaded_by_the_caller_ends_int8(tmp_path, approach):
    summary = rewrite_and_run(tmp_path, NAME, "--approach", approach)
    assert summary["quantized_modules"] > 0, summary
    assert (tmp_path / "outputs" / "best.pth").is_file()


def test_a_model_handed_to_the_trainer_is_trained_in_place_and_reloaded_by_its_builder(
    tmp_path,
):
    source = script_path(NAME).read_text()
    for before, after in HANDED_IN:
        assert before in source
        source = source.replace(before, after)
    script = tmp_path / NAME
    script.write_text(source)
    result = run_cli("optimize", script, "--approach", "qat")
    assert result.exit_code == 0, result.output
    assert "in_place=True" in script.read_text()
    run, summary = run_script(script)
    assert summary["quantized_modules"] > 0, summary
    assert "reloaded:" in run.stdout
