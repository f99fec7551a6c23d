"""DistillationCompressor: teacher dispatch, freezing, self-distillation, feature hooks
across a model replacement, and the canonical training loop (spec 1.5 / 1.7)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from neural_coder.runtime import int8_device
from neural_coder.runtime.config import (
    ConfigValueError,
    DistillationConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    KnowledgeDistillationLossConfig,
    SelfKnowledgeDistillationLossConfig,
)
from neural_coder.runtime.distillation import (
    DistillationCompressor,
    UnknownLayerError,
    soft_cross_entropy,
)
from neural_coder.runtime.model import Model
from neural_coder.runtime.training import prepare_compression


class MLP(nn.Module):
    def __init__(self, hidden: int = 8, seed: int = 0, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = nn.Linear(6, hidden)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class Recording(nn.Module):
    """A teacher that records how it was called and returns fixed logits."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.classes = classes
        self.calls: list[tuple[tuple, dict]] = []

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append(((a,) if b is None else (a, b), {}))
        return self.scale * a[:, : self.classes]


X = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
Y = torch.tensor([0, 1, 2, 0])


def kd(weights=(0.5, 0.5), kind: str = "CE", temperature: float = 1.0):
    return KnowledgeDistillationLossConfig(temperature, ["CE", kind], list(weights))


def bound(student: nn.Module, conf: DistillationConfig) -> tuple[DistillationCompressor, Model]:
    wrapper = Model(student)
    compressor = DistillationCompressor(conf)
    compressor.bind(wrapper)
    wrapper.add_listener(compressor)
    return compressor, wrapper


# -- the teacher --------------------------------------------------------------------------------
def test_zero_teacher_weight_skips_the_teacher_forward():
    teacher = Recording()
    compressor, wrapper = bound(MLP(), DistillationConfig(teacher, kd((1.0, 0.0))))
    out = wrapper(X)
    user_loss = F.cross_entropy(out, Y)
    loss = compressor.on_after_compute_loss(X, out, user_loss)
    assert teacher.calls == [] and compressor.teacher_forwards == 0
    torch.testing.assert_close(loss, user_loss)
    assert compressor.summary()["distillation_steps"] == 0

    teacher = Recording()
    compressor, wrapper = bound(MLP(), DistillationConfig(teacher, kd((0.5, 0.5))))
    for _ in range(3):
        compressor.on_step_begin(0)
        out = wrapper(X)
        compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    assert len(teacher.calls) == 3 and compressor.summary()["distillation_steps"] == 3


def test_given_teacher_output_is_used_without_a_teacher_forward():
    teacher = Recording()
    compressor, wrapper = bound(MLP(), DistillationConfig(teacher, kd((0.0, 1.0))))
    out = wrapper(X)
    given = torch.randn(4, 3)
    loss = compressor.on_after_compute_loss(X, out, torch.tensor(0.0), given)
    assert teacher.calls == []
    torch.testing.assert_close(loss, soft_cross_entropy(out, given))


def test_input_dispatch_tensor_dict_tuple():
    teacher = Recording()
    compressor, _ = bound(MLP(), DistillationConfig(teacher, kd((0.0, 1.0))))
    student_out = torch.randn(4, 3)
    other = torch.randn(4, 6)
    compressor.on_after_compute_loss(X, student_out, None)
    compressor.on_after_compute_loss({"a": X, "b": other}, student_out, None)
    compressor.on_after_compute_loss((X, other), student_out, None)
    compressor.on_after_compute_loss([X], student_out, None)
    got = [args for args, _ in teacher.calls]
    assert [len(a) for a in got] == [1, 2, 2, 1]
    assert got[0][0] is X and got[1][1] is other and got[2][1] is other and got[3][0] is X


def test_a_list_the_forward_cannot_unpack_is_passed_whole():
    class TakesList(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
            return self.fc(parts[0] + parts[1])

    teacher = TakesList()
    compressor, _ = bound(MLP(), DistillationConfig(teacher, kd((0.0, 1.0))))
    out = compressor.teacher_forward([X, X])
    torch.testing.assert_close(out, teacher.fc(2 * X).detach())


def test_hugging_face_outputs_on_both_sides():
    class HFLike(nn.Module):
        def __init__(self, seed: int) -> None:
            super().__init__()
            self.body = MLP(seed=seed)

        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None):
            logits = self.body(input_ids)
            loss = F.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    student, teacher = HFLike(0), HFLike(1)
    compressor, wrapper = bound(student, DistillationConfig(teacher, kd((0.4, 0.6), "KL", 2.0)))
    batch = {"input_ids": X, "labels": Y}
    out = wrapper(**batch)
    loss = compressor.on_after_compute_loss(batch, out, out.loss)
    with torch.no_grad():
        t_logits = teacher(**batch).logits
    p, log_q = F.softmax(t_logits / 2, -1), F.log_softmax(out.logits / 2, -1)
    expected = 0.4 * out.loss + 0.6 * 4 * (p * (p.log() - log_q)).sum() / p.numel()
    torch.testing.assert_close(loss, expected)


def test_teacher_is_frozen_in_eval_mode_and_shared_parameters_stay_trainable():
    student = MLP(seed=0)
    teacher = MLP(seed=1)
    teacher.fc2.weight = student.fc2.weight  # tied
    teacher.train()
    bound(student, DistillationConfig(teacher, kd()))
    assert not teacher.training
    assert not teacher.fc1.weight.requires_grad and not teacher.fc2.bias.requires_grad
    assert teacher.fc2.weight.requires_grad
    assert all(p.requires_grad for p in student.parameters())


def test_teacher_logits_of_another_shape_name_both_shapes():
    teacher = Recording(classes=5)
    compressor, wrapper = bound(MLP(), DistillationConfig(teacher, kd()))
    out = wrapper(X)
    with pytest.raises(ValueError, match=r"student logits has shape \(4, 3\).*\(4, 5\)"):
        compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))


def test_a_teacher_is_required_except_for_self_distillation():
    with pytest.raises(ConfigValueError, match="teacher_model=None.*a teacher is required"):
        DistillationCompressor(DistillationConfig(None, kd()))
    inc_style = SimpleNamespace(teacher_model="teacher.pt", criterion=kd())  # attributes only
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        DistillationCompressor(inc_style)


# -- self-distillation -------------------------------------------------------------------------------
def test_a_teacher_that_is_the_student_keeps_the_student_training():
    student = MLP()
    compressor, wrapper = bound(student, DistillationConfig(student, kd((0.5, 0.5))))
    student.train()
    student.fc2.eval()  # a submodule the user keeps in eval mode stays so
    out = wrapper(X)
    compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    assert student.training and student.drop.training and not student.fc2.training
    assert all(p.requires_grad for p in student.parameters())  # never frozen
    # the teacher pass ran in eval mode: no dropout
    with torch.no_grad():
        student.eval()
        reference = student(X)
        student.train()
    torch.testing.assert_close(compressor.teacher_forward(X), reference)


class SelfDistilled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Linear(6, 8)
        self.shallow_head = nn.Linear(8, 3)
        self.deep = nn.Linear(8, 8)
        self.deep_head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.relu(self.stem(x))
        d = F.relu(self.deep(h))
        return {"h": h, "d": d, "shallow": self.shallow_head(h), "logits": self.deep_head(d)}


def test_self_distillation_runs_no_teacher_forward_and_keeps_train_mode():
    model = SelfDistilled()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    conf = DistillationConfig(
        model,
        SelfKnowledgeDistillationLossConfig(
            [[["h", "d"]], [["shallow", "logits"]]],
            temperature=2.0,
            loss_types=["L2", "KL"],
            loss_weights=[0.5, 0.5],
            add_origin_loss=True,
        ),
    )
    compressor, wrapper = bound(model, conf)
    model.train()
    out = wrapper(X)
    user_loss = F.cross_entropy(out["logits"], Y)
    loss = compressor.on_after_compute_loss(X, out, user_loss)
    assert len(calls) == 1 and model.training
    p = F.softmax(out["logits"] / 2, -1)
    log_q = F.log_softmax(out["shallow"] / 2, -1)
    expected = (
        0.5 * torch.dist(out["h"], out["d"])
        + 0.5 * (p * (p.log() - log_q)).sum() / p.numel()
        + user_loss
    )
    torch.testing.assert_close(loss, expected)
    summary = compressor.summary()
    assert summary["distillation_steps"] == 1 and summary["temperature"] == 2.0
    assert summary["distillation_loss_type"] == "SelfKnowledgeDistillationLoss"
    # a teacher is not needed at all for self-distillation
    DistillationCompressor(DistillationConfig(None, conf.criterion))


# -- intermediate-layer features ---------------------------------------------------------------------
def intermediate(*mappings, **kw) -> IntermediateLayersKnowledgeDistillationLossConfig:
    return IntermediateLayersKnowledgeDistillationLossConfig(list(mappings), **kw)


def test_intermediate_features_through_the_compressor_with_a_shape_matcher():
    student, teacher = MLP(hidden=4, seed=0), MLP(hidden=8, seed=1)
    compressor, wrapper = bound(
        student, DistillationConfig(teacher, intermediate([("fc1",)], [("fc2",)]))
    )
    student.train()
    compressor.on_step_begin(0)
    out = wrapper(X)
    loss = compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    matcher = compressor.criterion.feature_matchers[0]
    assert matcher.dense.weight.shape == (8, 4)
    assert isinstance(compressor.criterion.feature_matchers[1], nn.Identity)
    with torch.no_grad():
        s1, t1 = student.fc1(X), teacher.fc1(X)
        t2 = teacher(X)  # the student's fc2 saw dropout: its output is `out`
        expected = 0.5 * ((matcher(s1) - t1) ** 2).mean() + 0.5 * ((out - t2) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert student.fc1.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_student_features_are_not_recorded_in_eval_mode():
    student, teacher = MLP(seed=0), MLP(seed=1)
    compressor, wrapper = bound(student, DistillationConfig(teacher, intermediate([("fc1",)])))
    capture = compressor.criterion.student_features
    student.eval()
    with torch.no_grad():
        wrapper(X)
    assert capture.features == [[]]
    student.train()
    wrapper(X)
    assert len(capture.features[0]) == 1
    compressor.on_step_begin(1)
    assert capture.features == [[]]


def test_intermediate_with_the_student_as_its_own_teacher():
    """The teacher side records only the eval-mode teacher pass; the student stays training."""
    student = MLP(seed=0)
    compressor, wrapper = bound(student, DistillationConfig(student, intermediate([("fc2",)])))
    criterion = compressor.criterion
    student.train()
    compressor.on_step_begin(0)
    out = wrapper(X)
    assert len(criterion.student_features.features[0]) == 1
    assert criterion.teacher_features.features == [[]]
    loss = compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    assert student.training and student.drop.training
    with torch.no_grad():
        student.eval()
        reference = student(X)  # the teacher pass: no dropout
        student.train()
    torch.testing.assert_close(loss, ((out - reference) ** 2).mean())
    loss.backward()
    assert student.fc2.weight.grad is not None


class SameWeightLinear(nn.Linear):
    """A different module object at the same name, sharing the float Parameters (as QAT does)."""

    def __init__(self, src: nn.Linear) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = src.in_features, src.out_features
        self.weight, self.bias = src.weight, src.bias


def replaced(model: MLP) -> MLP:
    new = copy.copy(model)
    new._modules = dict(model._modules)
    new._forward_hooks = type(model._forward_hooks)()
    new.fc1 = SameWeightLinear(model.fc1)
    return new


def test_feature_hooks_follow_a_model_replacement():
    student, teacher = MLP(seed=0), MLP(seed=1)
    compressor, wrapper = bound(
        student, DistillationConfig(teacher, intermediate([("fc1",)], [("fc2",)]))
    )
    old_fc1 = student.fc1
    new = replaced(student)
    # torch.ao's swap copies forward hooks onto the new module: they must not record twice
    new.fc1._forward_hooks.update(old_fc1._forward_hooks)
    wrapper.model = new  # the wrapper tells the compressor (on_model_replaced)
    assert not old_fc1._forward_hooks and len(new.fc1._forward_hooks) == 1
    assert len(new.fc2._forward_hooks) == 1  # a module kept by the new model is hooked once
    capture = compressor.criterion.student_features
    new.train()
    compressor.on_step_begin(0)
    out = wrapper(X)
    assert [len(f) for f in capture.features] == [1, 1]
    loss = compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    loss.backward()
    assert new.fc1.weight.grad is not None  # the shared Parameter gets the gradient
    old_fc1(X)
    assert compressor.criterion.student_features.features == [[], []]


def test_a_layer_gone_after_replacement_is_named():
    student, teacher = MLP(seed=0), MLP(seed=1)
    compressor, wrapper = bound(student, DistillationConfig(teacher, intermediate([("fc1",)])))
    new = copy.copy(student)
    new._modules = {"fc_1": student.fc1, "drop": student.drop, "fc2": student.fc2}
    with pytest.raises(
        UnknownLayerError, match=r"after the student model was replaced.*'fc1'.*'fc_1'"
    ):
        wrapper.model = new
    assert not student.fc1._forward_hooks  # the old hooks are gone either way


def test_unknown_layer_at_construction_lists_close_matches():
    with pytest.raises(
        UnknownLayerError, match=r"student model \(MLP\) has no submodule 'fc11'.*'fc1'"
    ):
        bound(MLP(), DistillationConfig(MLP(seed=1), intermediate([("fc11",), ("fc1",)])))


def test_hooks_are_removed_at_train_end_and_restored_at_train_begin():
    student, teacher = MLP(seed=0), MLP(seed=1)
    compressor, _ = bound(student, DistillationConfig(teacher, intermediate([("fc1",)])))
    compressor.on_train_end()
    assert not student.fc1._forward_hooks and not teacher.fc1._forward_hooks
    compressor.on_train_begin()
    assert len(student.fc1._forward_hooks) == 1 and len(teacher.fc1._forward_hooks) == 1


# -- the canonical loop (spec 1.7) ------------------------------------------------------------------
def test_canonical_loop_distils_into_the_student_only():
    torch.manual_seed(0)
    data = torch.randn(32, 6)
    labels = (data[:, 0] > 0).long() + (data[:, 1] > 0).long()
    student, teacher = MLP(hidden=4, seed=0), MLP(hidden=16, seed=1)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    conf = DistillationConfig(teacher, kd((0.5, 0.5), "KL", 2.0))
    cm = prepare_compression(student, conf)
    cm.callbacks.on_train_begin()
    model = cm.model
    steps = 0
    for epoch in range(2):
        cm.callbacks.on_epoch_begin(epoch)
        for i in range(4):
            x, y = data[8 * i : 8 * i + 8], labels[8 * i : 8 * i + 8]
            cm.callbacks.on_step_begin(i)
            optimizer.zero_grad()
            out = model(x)
            user_loss = F.cross_entropy(out, y)
            loss = cm.callbacks.on_after_compute_loss(x, out, user_loss)
            assert not torch.allclose(loss, user_loss)
            loss.backward()
            assert all(p.grad is not None for p in student.parameters())
            assert all(p.grad is None for p in teacher.parameters())
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
            steps += 1
        cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key])
    assert cm.summary is not None and cm.summary["distillation_steps"] == steps == 8
    assert isinstance(cm.summary["distillation_loss_last"], float)
    assert cm.summary["distillation_loss_type"] == "KnowledgeDistillationLoss"
    assert cm.summary["temperature"] == 2.0


@pytest.mark.parametrize("distillation_first", [True, False])
def test_feature_hooks_survive_qat_preparation(distillation_first):
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig

    student, teacher = MLP(seed=0), MLP(seed=1)
    distil = DistillationConfig(teacher, intermediate([("fc1",)], [("fc2",)]))
    confs = [distil, QuantizationAwareTrainingConfig()]
    cm = prepare_compression(student, confs if distillation_first else confs[::-1])
    compressor = next(c for c in cm.compressors if c.kind == "distillation")
    cm.callbacks.on_train_begin()
    prepared = cm.model.model
    assert prepared is not student  # QAT replaced the inner module
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    for step in range(2):
        cm.callbacks.on_step_begin(step)
        optimizer.zero_grad()
        out = cm.model(X)
        assert [len(f) for f in compressor.criterion.student_features.features] == [1, 1]
        loss = cm.callbacks.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
        loss.backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
    cm.callbacks.on_train_end()
    assert cm.summary["distillation_steps"] == 2
    # no distillation hook is left on the trained (now int8) model: the only ones are
    # the device bridge's on the int8 module itself (int8_device.keep_on_cpu)
    left = [
        hook
        for m in cm.model.model.modules()
        for hook in m._forward_hooks.values()
        if getattr(hook, "__module__", None) != int8_device.__name__
    ]
    assert not left, left


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_teacher_moves_to_the_students_cuda_device():
    device = torch.device("cuda")
    x, y = X.to(device), Y.to(device)
    for criterion in (kd((0.5, 0.5), "KL", 2.0), intermediate([("fc1",)], [("fc2",)])):
        student, teacher = MLP(hidden=4, seed=0).to(device), MLP(hidden=8, seed=1)
        compressor, wrapper = bound(student, DistillationConfig(teacher, criterion))
        student.train()
        compressor.on_step_begin(0)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = wrapper(x)
            loss = compressor.on_after_compute_loss(x.cpu(), out, F.cross_entropy(out, y))
        assert all(p.device.type == "cuda" for p in teacher.parameters())
        assert loss.device.type == "cuda" and loss.dtype == torch.float32
        assert torch.isfinite(loss)
        loss.backward()
        assert student.fc1.weight.grad is not None


class Head(nn.Module):
    """A detection-style head: raw logits while training, (decoded, raw) in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor):
        x = self.fc(x)
        return x if self.training else (x.softmax(-1), x)


class DropPath(nn.Module):
    """Stochastic depth: reads self.training, but its output has one structure."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or True:
            return x
        return x


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(6)
        self.path = DropPath()
        self.head = Head()

    def forward(self, x: torch.Tensor):
        return self.head(self.path(self.norm(x)))


def test_a_teacher_whose_output_depends_on_the_mode_returns_what_the_training_student_does():
    torch.manual_seed(0)
    student = Detector().train()
    teacher = copy.deepcopy(student)
    compressor, wrapper = bound(student, DistillationConfig(teacher, kd((0.5, 0.5), "KL")))
    out = wrapper(X)
    loss = compressor.on_after_compute_loss(X, out, F.cross_entropy(out, Y))
    assert torch.isfinite(loss) and compressor.summary()["distillation_steps"] == 1
    with torch.no_grad():
        assert isinstance(compressor.teacher_forward(X), torch.Tensor)  # not (boxes, raw)
    # the head returned its training structure; norm and drop path stayed in eval, and
    # every flag is back as it was
    assert not teacher.training and not teacher.head.training and not teacher.norm.training
    assert torch.equal(teacher.norm.running_mean, torch.zeros(6))  # no statistics updated
    # in eval the student gets the eval structure back from the teacher too
    student.eval()
    with torch.no_grad():
        assert isinstance(compressor.teacher_forward(X), tuple)


def test_only_modules_that_return_by_mode_take_the_students_flag():
    from neural_coder.runtime.distillation.output_mode import returns_by_mode

    assert returns_by_mode(Head) and not returns_by_mode(DropPath)
    assert not returns_by_mode(nn.Dropout) and not returns_by_mode(Detector)


# -- a run that never computed the distillation loss -------------------------------------------
def test_training_that_never_reaches_the_loss_hook_warns(caplog):
    """A Trainer whose training_step skips compute_loss never calls on_after_compute_loss:
    the run trains without its teacher, which the end of training says."""
    compressor, _ = bound(MLP(), DistillationConfig(MLP(seed=1), kd()))
    for step in range(3):
        compressor.on_step_begin(step)
    with caplog.at_level("WARNING"):
        compressor.on_train_end()
    assert "3 training steps ran but the distillation loss was never computed" in caplog.text


def test_training_that_distils_does_not_warn(caplog):
    compressor, _ = bound(MLP(), DistillationConfig(MLP(seed=1), kd()))
    compressor.on_step_begin(0)
    student = compressor.wrapper.model
    output = student(X)
    compressor.on_after_compute_loss(X, output, F.cross_entropy(output, Y))
    with caplog.at_level("WARNING"):
        compressor.on_train_end()
    assert "never computed" not in caplog.text
