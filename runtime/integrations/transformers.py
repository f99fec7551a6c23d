"""Hugging Face `Trainer` integration: training-time compression, PTQ evaluation, saving and loading.

Training-time compression (the shape `neural-coder` generates)::

    compression_manager = prepare_compression(model, [WeightPruningConfig(...), ...])
    trainer = Trainer(model=model, ..., callbacks=[CompressionCallback(compression_manager, prune_until=0.8)])
    with_distillation(trainer, compression_manager)      # only with a DistillationConfig
    trainer.train()

The Trainer gets the bare model, not `compression_manager.model`: it reads the
model's `forward` signature (to drop unused dataset columns) and its label
names (so evaluation hands labels to `compute_metrics`), which a wrapper would
hide. Every technique therefore acts on the module object the Trainer holds:

* `CompressionCallback` maps the Trainer's events to the manager's INC 2.x
  hooks (`hooks.py` lists the order and what each one sees: pruning reads the
  accumulated, clipped gradients before `optimizer.step()` and masks after it).
  It uses only INC 2.x hook names, so an INC 2.x `CompressionManager` works too.
  `prune_until` fits the pruning schedules to the Trainer's run length when
  training starts (the generated config carries a placeholder `end_step`).
* QAT prepares the model in place (this runtime's eager per-module path;
  Hugging Face models take it anyway, as they cannot be FX-traced); a manager
  that replaces the module (INC's FX QAT) is refused with a clear error.
  After `train()`, `compression_manager.model` is the int8 model, and the
  Trainer's model stays the fake-quant float model, with its observers frozen
  at the end of training so that `trainer.evaluate()` measures the int8
  model's quantization; its config records the quantization recipe
  (`neural_coder_qat_recipe`).
* `with_distillation` wraps the trainer's `compute_loss` (subclass overrides
  included) so that the loss is `on_after_compute_loss(inputs, outputs, loss)`.
* Calling `train()` again after QAT is refused (an int8 model cannot be trained).

Saving and loading after a compressed run:

* `trainer.save_model(dir)` after pruning or distillation: a normal Hugging
  Face folder (the pruned weights are zeros), loaded by `from_pretrained`.
* `trainer.save_model(dir)` after QAT: the fake-quant model (float weights plus
  the observers' scales) and the recipe in `config.json`.
  `OptimizedModel.from_pretrained(dir)` rebuilds the int8 model from it (the
  same as `compression_manager.model`); the model class's own
  `from_pretrained(dir)` loads the QAT-trained float weights (and reports the
  fake-quant entries as unexpected keys).
* `compression_manager.model.save_pretrained(dir)` (int8: `config.json` +
  `best_model.pt`) and `save_for_huggingface_upstream(model, tokenizer, dir)`
  (INC's format: `pytorch_model.bin` with the recipe, `config.json` marked
  int8): both load with `OptimizedModel.from_pretrained(dir)`.

Post-training quantization with a Trainer::

    q = quantization.fit(trainer.model, conf, calib_dataloader=trainer.get_eval_dataloader(),
                         eval_func=trainer_eval_func(trainer, "eval_accuracy"))
    use_quantized_model(trainer, q)        # then trainer.evaluate() / trainer.save_model() as before

int8 models run on the CPU: evaluating them through a Trainer needs
`TrainingArguments(use_cpu=True)` (or a machine without an accelerator).

This module needs transformers; the rest of `neural_coder.runtime` does not.

The code lives in `trainer_callback`, `trainer_distillation`, `trainer_quantized` and
`hf_checkpoints`; this module is the import path generated scripts use.
"""

from __future__ import annotations

try:
    import transformers  # noqa: F401  (the modules below need it: say so first)
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "neural_coder.runtime.integrations.transformers needs the transformers package "
        "(pip install transformers); the rest of neural_coder.runtime works without it"
    ) from _missing

from .hf_checkpoints import (
    QAT_RECIPE_KEY,
    WEIGHTS_NAME,
    OptimizedModel,
    save_for_huggingface_upstream,
)
from .hooks import TrainerCompressionError
from .trainer_callback import CompressionCallback
from .trainer_distillation import with_distillation
from .trainer_quantized import trainer_eval_func, use_quantized_model

__all__ = [
    "QAT_RECIPE_KEY",
    "WEIGHTS_NAME",
    "CompressionCallback",
    "OptimizedModel",
    "TrainerCompressionError",
    "save_for_huggingface_upstream",
    "trainer_eval_func",
    "use_quantized_model",
    "with_distillation",
]
