"""Hugging Face Trainer scripts of a second new-user probe, rewritten and run:

* a Seq2SeqTrainer script that saves the model between training and evaluation
  (run_summarization's order): the PTQ fit now goes before the save, so the folder it
  writes holds the int8 model (before: the fp32 one, while evaluation ran int8);
* a token-classification script with EarlyStoppingCallback and load_best_model_at_end:
  when an early checkpoint scored best, the Trainer reloaded it at the end, so the
  pruned run ended at that checkpoint's sparsity (0.16 of 0.5); now only checkpoints
  saved after pruning ended compete.
"""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from neural_coder.runtime.integrations.transformers import OptimizedModel
from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e


def _rewritten(tmp_path, name, approach, text=None):
    script = tmp_path / name
    script.write_text(text if text is not None else script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    return script


def test_ptq_of_a_seq2seq_trainer_saves_the_int8_model(tmp_path):
    script = _rewritten(tmp_path, "seq2seq_generate_trainer.py", "ptq-static")
    run, summary = run_script(script)
    assert summary["quantized_modules"] >= 8, summary
    assert "predict {'predict_loss'" in run.stdout
    saved = OptimizedModel.from_pretrained(str(tmp_path / "s2s_out"))
    quantized = {n for n, m in saved.named_modules() if type(m).__name__ == "QuantizedLinear"}
    assert "model.encoder.layers.0.fc1" in quantized, sorted(quantized)[:5]


# the first evaluation scores best, as when a long run overfits: its checkpoint predates
# the end of pruning
FIRST_EVALUATION_BEST = (
    "EVALUATIONS = iter(range(1, 100))\n",
    '    return {"accuracy": 1.0 / next(EVALUATIONS)}',
)


def test_the_best_checkpoint_reloaded_at_the_end_is_the_pruned_one(tmp_path):
    text = script_path("best_checkpoint_trainer.py").read_text()
    original = '    return {"accuracy": float((predictions[mask] == labels[mask]).mean())}'
    assert original in text
    text = text.replace(original, FIRST_EVALUATION_BEST[1])
    text = text.replace("label_list = ", FIRST_EVALUATION_BEST[0] + "label_list = ")
    # patience 1: early stopping would end the run at the second evaluation, before
    # pruning ends, were the best metric of an unpruned checkpoint kept
    text = text.replace("early_stopping_patience=2", "early_stopping_patience=1")
    script = _rewritten(tmp_path, "best_checkpoint_trainer.py", "pruning", text)
    _, summary = run_script(script)
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02), summary
    # the folder save_model wrote holds the reloaded model
    weights = load_file(str(tmp_path / "ner_out" / "model.safetensors"))
    pruned = [w for n, w in weights.items() if n.endswith(("lin.weight", "lin1.weight"))]
    zeros = sum(int((w == 0).sum()) for w in pruned)
    assert zeros / sum(w.numel() for w in pruned) > 0.4


def test_a_training_step_override_that_calls_compute_loss_distils(tmp_path):
    """The way out of the refusal for rdrop_trainer.py: its training_step computes the
    first pass with self.compute_loss, where with_distillation adds the teacher's loss."""
    text = script_path("rdrop_trainer.py").read_text()
    first_pass = "        out1 = model(**inputs)\n"
    assert first_pass in text
    text = text.replace(
        first_pass, "        loss1, out1 = self.compute_loss(model, inputs, return_outputs=True)\n"
    ).replace("ce = 0.5 * (out1.loss + out2.loss)", "ce = 0.5 * (loss1 + out2.loss)")
    script = tmp_path / "rdrop_trainer.py"
    script.write_text(text)
    result = run_cli("optimize", script, "--approach", "distillation", "--teacher", "copy")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    _, summary = run_script(script)
    assert summary["distillation_steps"] == 8, summary  # 2 epochs x 4 steps


def test_qat_of_a_loop_that_saves_its_best_epoch_saves_a_folder_that_loads_int8(tmp_path):
    """The best epoch is saved with save_pretrained inside the epoch loop, while QAT still
    trains: the folder loaded back as a float model; now it records the QAT recipe."""
    script = _rewritten(tmp_path, "warmup_loop_save_best.py", "qat")
    _, summary = run_script(script)
    assert summary["quantized_modules"] >= 6, summary
    int8 = OptimizedModel.from_pretrained(str(tmp_path / "electra_out"))
    assert "QuantizedLinear" in {type(m).__name__ for m in int8.modules()}


def test_qat_of_an_encoder_called_only_inside_a_helper_trains_and_saves_int8(tmp_path):
    """contrastive_embedding_train.py calls its BertModel only inside encode(model, ids):
    the rewrite took the class name for the model (prepare_compression(BertModel, ...))
    and the script failed with UnboundLocalError."""
    script = _rewritten(tmp_path, "contrastive_embedding_train.py", "qat")
    assert "prepare_compression(model," in script.read_text()
    _, summary = run_script(script)
    assert summary["quantized_modules"] >= 6, summary
    assert (tmp_path / "embed_out" / "best_model.pt").is_file()  # the int8 model saved
