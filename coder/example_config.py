"""The example `--config` yaml: every setting `optimize` reads, at its default, with what it
means. Rendered from the option classes, so it cannot drift from what is accepted."""

from __future__ import annotations

from dataclasses import fields

import yaml

from neural_coder.options import SECTIONS

EXPLAINED = {
    "pruning.target_sparsity": "final fraction of pruned weights, in [0, 1)",
    "pruning.pattern": "NxM blocks (4x1; 1x1 unstructured; channelx1) or N:M (2:4); quote it",
    "pruning.pruning_type": "magnitude, snip_momentum, snip, gradient, pattern_lock, <name>_progressive",
    "pruning.pruning_scope": "global (one threshold) or local (one per layer)",
    "pruning.start_step": "first optimizer step that prunes (null: 0, or 1 for gradient criteria)",
    "pruning.end_step": "last pruning step (null: fitted to 80% of the run)",
    "pruning.shrink": "remove the pruned channels when training ends (null: yes for channel "
    "patterns with target runtime); needs torch-pruning",
    "qat.backend": "default (torch.ao) or ipex",
    "distillation.teacher": "null (a frozen copy of a trained model), a checkpoint path, or an expression",
    "distillation.temperature": "> 0",
    "distillation.loss_types": "[student vs labels: CE or MSE, student vs teacher: CE, KL or MSE]",
    "distillation.loss_weights": "two weights in [0, 1] that sum to 1",
    "ptq.criterion": "relative or absolute accuracy loss",
    "ptq.tolerable_loss": ">= 0 (0.01 is 1% with criterion relative)",
    "ptq.max_trials": "tuning trials before giving up, >= 1",
    "ptq.calibration_sampling_size": "calibration samples, >= 1",
    "ptq.save_dir": "where a fit nothing reads after training saves the compressed model "
    "(null: beside the script's checkpoints, else neural_coder_output/<approach>)",
    "benchmark.warmup": "iterations before timing, >= 0",
    "benchmark.iteration": "timed iterations, >= 1",
    "benchmark.cores_per_instance": "null: the cores divided among the instances",
    "benchmark.num_of_instance": ">= 1",
}


def example_config() -> str:
    lines = [
        "# neural-coder optimize --config this.yaml   (command-line flags override these values)",
        "approach: pruning+qat  # qat, pruning, distillation, '+'-joined, or ptq-static, "
        "ptq-dynamic, ptq-auto, bf16, benchmark; or stages: distillation>pruning>qat",
        "# multi-shot, instead of approach: stages one after another; training stages split the",
        "# epochs (qat last), a last ptq-static, ptq-dynamic, ptq-auto or bf16 fits after training",
        "# pipeline: [distillation, pruning, qat]  # or [{distillation: 2}, {pruning: 2}, {qat: 1}]",
        "# stage_epochs: [2, 2, 1]  # epochs per training stage (default: the script's, split evenly)",
        "target: runtime  # runtime (the bundled one) or inc (Intel Neural Compressor 2.x)",
    ]
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        defaults = cls()
        for field in fields(cls):
            value = getattr(defaults, field.name)
            if isinstance(value, tuple):
                value = list(value)
            shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            if isinstance(value, str) and not shown.startswith(("'", '"')):
                shown = f'"{value}"'
            note = EXPLAINED.get(f"{section}.{field.name}")
            lines.append(f"  {field.name}: {shown}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"
