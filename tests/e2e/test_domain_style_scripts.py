"""Scripts in the styles of other model domains, rewritten and run:

- torchvision detection's contract (a dict of losses in train mode, lists of images): the
  fit in the last epoch saves the int8 model it evaluates (it was lost: the epoch's
  checkpoint is written before the fit), and bf16 measures the model on the list of
  images the evaluation called it with (it crashed: the list was spread over forward's
  parameters);
- a segmentation model returning `{"out": logits}` under a BCE + dice criterion:
  distillation runs (it crashed: 'no logits tensor'), by MSE."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, run_script

pytestmark = pytest.mark.e2e

RELOAD = """\
import detection_loss_dict_train as script
from neural_coder.runtime import load

model = load({folder!r}, script.TinyDetector(num_classes=3))
print(sorted({{type(m).__module__ for m in model.modules()}}))
"""


def test_the_detection_fit_in_the_last_epoch_saves_the_int8_model(tmp_path: Path):
    summary = rewrite_and_run(tmp_path, "detection_loss_dict_train.py", "-a", "ptq-static")
    assert summary["quantized_modules"] == 4, summary  # two convs, two heads
    saved = tmp_path / "neural_coder_ptq-static"
    assert (saved / "best_model.pt").is_file()
    (tmp_path / "reload.py").write_text(RELOAD.format(folder=str(saved)))
    loaded = run_script(tmp_path / "reload.py")[0]
    assert "torch.ao.nn.quantized.modules.linear" in loaded.stdout, loaded.stdout


def test_bf16_measures_a_detection_model_on_its_list_of_images(tmp_path: Path):
    script = tmp_path / "detection_loss_dict_train.py"
    script.write_text(script_path("detection_loss_dict_train.py").read_text())
    result = run_cli("optimize", script, "--approach", "bf16")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    run, summary = run_script(script)
    # measured module by module: converted where bf16 is faster here, else refused so
    assert summary["bf16_measurements"], summary
    assert "eval accuracy" in run.stdout.splitlines()[-1]


def test_a_segmentation_output_dict_is_distilled(tmp_path: Path):
    summary = rewrite_and_run(tmp_path, "segmentation_dict_out.py", "-a", "distillation")
    text = (tmp_path / "segmentation_dict_out.py").read_text()
    assert 'loss_types=["MSE", "MSE"]' in text
    assert summary["distillation_steps"] == 8, summary  # 2 epochs x 4 batches
