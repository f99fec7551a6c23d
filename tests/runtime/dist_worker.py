"""One rank of the 2-process torch.distributed tests (`test_distributed.py`); not collected.

Run as `python dist_worker.py RANK WORLD INIT_FILE OUT_DIR`: joins a gloo group
through a `file://` store, runs every scenario below with the training hooks
written by hand (as the rewritten scripts call them), each rank on its own
data, and saves what the test compares across ranks to `OUT_DIR/rank<R>.pt`
(tensors, numbers and strings only, so it loads with `weights_only=True`).

A scenario that raises records its traceback instead of its results, so the
other scenarios still report.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

from neural_coder.runtime.config import (
    DistillationConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.model import Model
from neural_coder.runtime.pruning import PruningCompressor
from neural_coder.runtime.quant import QATCompressor
from neural_coder.runtime.training import CompressionManager, prepare_compression

STEPS = 30
TARGET = 0.5


class MLP(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(torch.flatten(self.pool(x), 1))


class UntraceableMLP(MLP):
    """Control flow on a tensor: torch.fx cannot trace it, so QAT takes the eager path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() > 0:
            x = torch.relu(self.fc1(x))
        return self.head(torch.relu(self.fc2(x)))


class SavesPretrained(nn.Module):
    """A float model whose `save_pretrained` writes on whichever rank calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def save_pretrained(self, folder: str) -> str:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "weights.pt")
        torch.save(self.state_dict(), path)
        return path


def built(factory: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return factory()


def batches(kind: str, rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`STEPS` batches of this rank's own data (a different stream on every rank)."""
    g = torch.Generator().manual_seed(1000 + rank)
    shape = (16, 16) if kind == "mlp" else (16, 3, 8, 8)
    out = []
    for _ in range(STEPS):
        x = torch.randn(*shape, generator=g) * (1.0 + rank)  # different ranges per rank
        out.append((x, torch.randint(0, 4, (shape[0],), generator=g)))
    return out


def train(cm: CompressionManager, model: nn.Module, params: Any, data: list[Any]) -> list[float]:
    """The canonical hooked loop (DESIGN.md), one epoch over `data`."""
    optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    cm.callbacks.on_epoch_begin(0)
    for step, (x, y) in enumerate(data):
        cm.callbacks.on_step_begin(step)
        out = model(x)
        loss = loss_fn(out, y)
        loss = cm.callbacks.on_after_compute_loss(x, out, loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
        losses.append(float(loss))
    cm.callbacks.on_epoch_end()
    return losses


# -- what is compared across ranks ----------------------------------------------------------
def digest(value: Any) -> str:
    """sha1 of tensors (quantized ones by int values, scales and zero points), nested."""
    h = hashlib.sha1()

    def feed(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            if v.is_quantized:
                feed(v.int_repr())
                if v.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                    feed(torch.tensor([v.q_scale()], dtype=torch.float64))
                    feed(torch.tensor([v.q_zero_point()]))
                else:
                    feed(v.q_per_channel_scales())
                    feed(v.q_per_channel_zero_points())
                return
            h.update(str((tuple(v.shape), v.dtype)).encode())
            h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            for item in v:
                feed(item)
        else:
            h.update(repr(v).encode())

    feed(value)
    return h.hexdigest()


def _unpacked(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with torch's packed int8 weights unpacked (their pickled form is opaque)."""
    out = {}
    for k, v in state.items():
        if hasattr(v, "unpack"):
            v = v.unpack()
        out[k] = v
    return out


def pruning_facts(cm: CompressionManager) -> dict[str, Any]:
    pruning = next(c for c in cm.compressors if isinstance(c, PruningCompressor))
    masks = {}
    zeros = {}
    for pruner in pruning.pruners:
        for name, p in pruner.params.items():
            masks[name] = digest(pruner.keep2d(name))
            zeros[name] = digest(p.detach() == 0)
    assert cm.summary is not None
    return {
        "mask_digests": masks,
        "zero_digests": zeros,
        "sparsity": float(cm.summary["sparsity"]),
        "target_sparsity": float(cm.summary["target_sparsity"]),
        "reached": bool(cm.summary["pruning_target_reached"]),
        "per_layer": dict(cm.summary["per_layer_sparsity"]),
        "dist_mask_checks": pruning.dist_mask_checks,
        "dist_mask_repairs": pruning.dist_mask_repairs,
    }


def qat_facts(cm: CompressionManager) -> dict[str, Any]:
    qat = next(c for c in cm.compressors if isinstance(c, QATCompressor))
    assert qat.prepared is not None and qat.quantized is not None
    qparams: dict[str, list[float]] = {}
    for name, m in qat.prepared.model.named_modules():
        if hasattr(m, "activation_post_process") and hasattr(m, "scale"):
            obs = m.activation_post_process
            qparams[name] = [
                *m.scale.flatten().tolist(),
                *m.zero_point.flatten().tolist(),
                *obs.min_val.flatten().tolist(),
                *obs.max_val.flatten().tolist(),
            ]
    return {
        "qat_path": qat.prepared.path,
        "qparams": qparams,
        "int8_digest": digest(_unpacked(qat.quantized.state_dict())),
        "quantized_modules": int(cm.summary["quantized_modules"]) if cm.summary else 0,
        "observer_syncs": qat.observer_sync.steps if qat.observer_sync else 0,
    }


def common_facts(cm: CompressionManager, float_params: dict[str, Any], losses: list[float]):
    return {
        "params_digest": digest({k: v for k, v in float_params.items()}),
        "first_loss": losses[0],
        "summary_written": os.path.exists(os.environ["NEURAL_CODER_SUMMARY"]),
    }


# -- scenarios --------------------------------------------------------------------------------
def pruning_conf(**kw: Any) -> WeightPruningConfig:
    args: dict[str, Any] = dict(
        target_sparsity=TARGET, start_step=2, end_step=20, pruning_frequency=2
    )
    args.update(kw)
    return WeightPruningConfig(**args)


def run_wrapped_after_begin(
    factory: Callable[[], nn.Module], confs: Any, kind: str, rank: int
) -> tuple[CompressionManager, nn.Module, list[float]]:
    """prepare_compression on the bare model, on_train_begin, then DDP(cm.model)."""
    model = built(factory)
    cm = prepare_compression(model, confs)
    params = list(model.parameters())
    cm.callbacks.on_train_begin()
    ddp = DDP(cm.model)
    losses = train(cm, ddp, params, batches(kind, rank))
    cm.callbacks.on_train_end()
    return cm, model, losses


def run_wrapped_before_begin(
    factory: Callable[[], nn.Module], confs: Any, kind: str, rank: int
) -> tuple[CompressionManager, nn.Module, list[float]]:
    """prepare_compression on the bare model, DDP(cm.model), then on_train_begin."""
    model = built(factory)
    cm = prepare_compression(model, confs)
    params = list(model.parameters())
    ddp = DDP(cm.model)
    cm.callbacks.on_train_begin()
    losses = train(cm, ddp, params, batches(kind, rank))
    cm.callbacks.on_train_end()
    return cm, model, losses


def float_params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def scenario_prune_snip_global_mlp(rank: int) -> dict[str, Any]:
    conf = pruning_conf(pruning_type="snip_momentum", pattern="4x1", pruning_scope="global")
    cm, model, losses = run_wrapped_after_begin(MLP, conf, "mlp", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_prune_magnitude_local_cnn(rank: int) -> dict[str, Any]:
    conf = pruning_conf(pruning_type="magnitude", pattern="1x1", pruning_scope="local")
    cm, model, losses = run_wrapped_before_begin(CNN, conf, "cnn", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_prune_progressive_nm_mlp(rank: int) -> dict[str, Any]:
    conf = pruning_conf(
        pruning_type="snip_momentum_progressive",
        pattern="2:4",
        pruning_frequency=8,
        end_step=18,
        target_sparsity=0.5,
    )
    cm, model, losses = run_wrapped_after_begin(MLP, conf, "mlp", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_prune_gradient_local_mlp(rank: int) -> dict[str, Any]:
    conf = pruning_conf(pruning_type="gradient", pattern="1x1", pruning_scope="local")
    cm, model, losses = run_wrapped_after_begin(MLP, conf, "mlp", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_prune_snip_global_caps_cnn(rank: int) -> dict[str, Any]:
    conf = pruning_conf(
        pruning_type="snip",
        pattern="1x1",
        pruning_scope="global",
        min_sparsity_ratio_per_op=0.3,
        max_sparsity_ratio_per_op=0.6,
    )
    cm, model, losses = run_wrapped_before_begin(CNN, conf, "cnn", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_prune_pattern_lock_mlp(rank: int) -> dict[str, Any]:
    """pattern_lock keeps the zeros the model starts with (half of each layer here)."""

    def half_pruned() -> nn.Module:
        model = MLP()
        with torch.no_grad():
            for layer in (model.fc1, model.fc2):
                w = layer.weight
                w.mul_(w.abs() > w.abs().flatten().kthvalue(w.numel() // 2).values)
        return model

    conf = pruning_conf(pruning_type="pattern_lock", pattern="1x1", start_step=0, end_step=0)
    cm, model, losses = run_wrapped_after_begin(half_pruned, conf, "mlp", rank)
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_qat_mlp(rank: int) -> dict[str, Any]:
    conf = QuantizationAwareTrainingConfig()
    cm, model, losses = run_wrapped_after_begin(MLP, conf, "mlp", rank)
    out = {**qat_facts(cm), **common_facts(cm, float_params(model), losses)}
    # rank 0 writes; every rank gets the path rank 0 writes
    folder = os.path.join(os.environ["DIST_OUT"], f"int8_rank{rank}")
    out["save_pretrained_return"] = os.path.relpath(cm.model.save_pretrained(folder), folder)
    out["save_pretrained_wrote"] = os.path.exists(folder)
    return out


def scenario_qat_cnn(rank: int) -> dict[str, Any]:
    conf = QuantizationAwareTrainingConfig()
    cm, model, losses = run_wrapped_before_begin(CNN, conf, "cnn", rank)
    return {**qat_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_qat_eager_mlp(rank: int) -> dict[str, Any]:
    conf = QuantizationAwareTrainingConfig()
    cm, model, losses = run_wrapped_before_begin(UntraceableMLP, conf, "mlp", rank)
    return {**qat_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_qat_unsynced_control(rank: int) -> dict[str, Any]:
    """QAT without the observer sync: shows that the ranks' observers do drift apart."""
    model = built(MLP)
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    params = list(model.parameters())
    cm.callbacks.on_train_begin()
    qat = next(c for c in cm.compressors if isinstance(c, QATCompressor))
    qat.observer_sync = _NoSync()  # type: ignore[assignment]
    losses = train(cm, DDP(cm.model), params, batches("mlp", rank))
    cm.callbacks.on_train_end()
    return {**qat_facts(cm), **common_facts(cm, float_params(model), losses)}


class _NoSync:
    """Stands in for `ObserverSync` and does nothing."""

    steps = 0

    def start(self) -> None: ...

    def step(self) -> None: ...

    def flush(self) -> None: ...

    def finish(self) -> None: ...


def scenario_prune_qat_cnn(rank: int) -> dict[str, Any]:
    confs = [
        pruning_conf(pruning_type="snip_momentum", pattern="4x1", pruning_scope="global"),
        QuantizationAwareTrainingConfig(),
    ]
    cm, model, losses = run_wrapped_after_begin(CNN, confs, "cnn", rank)
    return {
        **pruning_facts(cm),
        **qat_facts(cm),
        **common_facts(cm, float_params(model), losses),
    }


def scenario_distill_kd_mlp(rank: int) -> dict[str, Any]:
    teacher = built(lambda: MLP(hidden=64), seed=1)
    conf = DistillationConfig(teacher, KnowledgeDistillationLossConfig(temperature=2.0))
    cm, model, losses = run_wrapped_after_begin(MLP, conf, "mlp", rank)
    assert cm.summary is not None
    return {
        "distillation_steps": int(cm.summary["distillation_steps"]),
        "teacher_digest": digest(float_params(teacher)),
        **common_facts(cm, float_params(model), losses),
    }


def scenario_ddp_wrapped_pruning_distillation(rank: int) -> dict[str, Any]:
    """prepare_compression(DDP(model)): pruning and intermediate-layer distillation use
    the module inside (names without `module.`)."""
    model = built(MLP)
    teacher = built(MLP, seed=1)
    ddp = DDP(model)
    # with the label loss kept, the head gets gradients too (DDP needs every parameter used
    # unless built with find_unused_parameters=True)
    layers = IntermediateLayersKnowledgeDistillationLossConfig(
        [[("fc1",)], [("fc2",)]], add_origin_loss=True
    )
    confs = [
        pruning_conf(pruning_type="snip_momentum", pattern="4x1", pruning_scope="global"),
        DistillationConfig(teacher, layers),
    ]
    cm = prepare_compression(ddp, confs)
    cm.callbacks.on_train_begin()
    losses = train(cm, cm.model, list(ddp.parameters()), batches("mlp", rank))
    cm.callbacks.on_train_end()
    assert cm.summary is not None
    return {
        **pruning_facts(cm),
        "distillation_steps": int(cm.summary["distillation_steps"]),
        **common_facts(cm, float_params(model), losses),
    }


def scenario_qat_of_ddp_refused(rank: int) -> dict[str, Any]:
    try:
        prepare_compression(DDP(built(MLP)), QuantizationAwareTrainingConfig())
    except TypeError as exc:
        return {"error": str(exc)}
    return {"error": None}


def scenario_prune_without_ddp(rank: int) -> dict[str, Any]:
    """No DDP and a different model on every rank: the masks would differ; rank 0's win."""
    model = built(MLP, seed=rank)
    conf = pruning_conf(pruning_type="magnitude", pattern="4x1", pruning_scope="global")
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    losses = train(cm, cm.model, list(model.parameters()), batches("mlp", rank))
    cm.callbacks.on_train_end()
    return {**pruning_facts(cm), **common_facts(cm, float_params(model), losses)}


def scenario_save(rank: int) -> dict[str, Any]:
    """Model.save and a float model's save_pretrained: rank 0 writes, every rank gets the path."""
    out_dir = os.environ["DIST_OUT"]
    wrapper = Model(built(SavesPretrained))
    root = os.path.join(out_dir, f"save_rank{rank}")
    path = wrapper.save(root)
    pretrained = os.path.join(out_dir, f"pretrained_rank{rank}")
    returned = wrapper.save_pretrained(pretrained)
    return {
        "save_return": os.path.relpath(path, root),
        "save_wrote": os.path.exists(root),
        "save_pretrained_return": returned and os.path.relpath(returned, pretrained),
        "save_pretrained_wrote": os.path.exists(pretrained),
    }


SCENARIOS = {
    name[len("scenario_") :]: fn
    for name, fn in sorted(globals().items())
    if name.startswith("scenario_") and callable(fn)
}


def main() -> None:
    rank, world, init_file, out_dir = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
    )
    torch.set_num_threads(1)
    os.environ["DIST_OUT"] = out_dir
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),  # a rank that failed mid-collective
    )
    results: dict[str, Any] = {}
    try:
        for name, fn in SCENARIOS.items():
            # every rank names its own summary file: only rank 0's may appear
            os.environ["NEURAL_CODER_SUMMARY"] = os.path.join(out_dir, f"{name}.rank{rank}.json")
            try:
                results[name] = fn(rank)
            except Exception:
                results[name] = {"traceback": traceback.format_exc()}
            dist.barrier()
    finally:
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
