"""Distillation loss values against hand-written formulas (spec 4.1-4.3)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from neural_coder.runtime.distillation import (
    IntermediateLayersKnowledgeDistillationLoss,
    KnowledgeDistillationLoss,
    SelfKnowledgeDistillationLoss,
    UnknownLayerError,
    create_criterion,
    logits_of,
)


def softmax(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def logits(seed: int, shape: tuple[int, ...] = (4, 5)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


S, TT = logits(0), logits(1)
USER_LOSS = torch.tensor(1.5)


# -- knowledge distillation on logits ----------------------------------------------------------
def hand_soft_ce(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (-(softmax(t) * torch.log(softmax(s))).sum(dim=-1)).mean()


def hand_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    p, q = softmax(t), softmax(s)
    return (p * (torch.log(p) - torch.log(q))).sum() / s.numel()  # reduction="mean"


def hand_mse(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return ((s - t) ** 2).mean()


@pytest.mark.parametrize(
    ("kind", "formula"), [("CE", hand_soft_ce), ("KL", hand_kl), ("MSE", hand_mse)]
)
def test_kd_loss_matches_the_formula(kind, formula):
    temp, w0, w1 = 2.0, 0.3, 0.7
    loss = KnowledgeDistillationLoss(temp, ["CE", kind], [w0, w1])
    result = loss.compute(S, TT, USER_LOSS)
    expected_distill = w1 * temp**2 * formula(S / temp, TT / temp)
    torch.testing.assert_close(result.distillation, expected_distill)
    torch.testing.assert_close(result.total, w0 * USER_LOSS + expected_distill)
    torch.testing.assert_close(loss.loss_cal_sloss(S, TT, USER_LOSS), result.total)


def test_kd_kl_is_the_per_element_mean_not_batchmean():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "KL"], [0.0, 1.0])
    p, q = softmax(TT), softmax(S)
    batchmean = (p * (torch.log(p) - torch.log(q))).sum() / S.shape[0]
    value = loss.compute(S, TT, None).total
    torch.testing.assert_close(value, batchmean / S.shape[1])


def test_kd_zero_student_weight_ignores_the_user_loss():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [0.0, 1.0])
    result = loss.compute(S, TT, torch.tensor(float("nan")))
    torch.testing.assert_close(result.total, hand_soft_ce(S, TT))


def test_kd_zero_teacher_weight_needs_no_teacher():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [1.0, 0.0])
    assert not loss.needs_teacher_forward
    result = loss.compute(S, None, USER_LOSS)
    assert result.distillation is None
    torch.testing.assert_close(result.total, USER_LOSS)


def test_kd_gradient_reaches_the_student_logits_only():
    s = S.clone().requires_grad_(True)
    t = TT.clone().requires_grad_(True)
    KnowledgeDistillationLoss(2.0, ["CE", "KL"], [0.5, 0.5]).compute(
        s, t, USER_LOSS
    ).total.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_kd_outputs_may_be_model_outputs_dicts_or_tuples():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "MSE"], [0.5, 0.5])
    ref = loss.compute(S, TT, USER_LOSS).total
    hf = SequenceClassifierOutput(loss=torch.tensor(9.0), logits=S)
    for student, teacher in [
        (hf, {"logits": TT}),
        ((S, "hidden"), [TT]),
        (S, SequenceClassifierOutput(logits=TT)),
    ]:
        torch.testing.assert_close(loss.compute(student, teacher, USER_LOSS).total, ref)


def test_a_student_handed_one_element_meets_the_teachers_element_of_its_shape():
    """`loss, logits = model(x, labels=y, return_dict=False)`: the script hands over the
    student's logits; the teacher, called with the same inputs, returns `(loss, logits)`.
    Its first element, the loss, was compared with the logits ("the teacher logits has
    shape ()")."""
    loss = KnowledgeDistillationLoss(1.0, ["CE", "KL"], [0.5, 0.5])
    ref = loss.compute(S, TT, USER_LOSS).total
    teacher = (torch.tensor(2.0), TT)
    torch.testing.assert_close(loss.compute(S, teacher, USER_LOSS).total, ref)
    torch.testing.assert_close(loss.compute(S, list(teacher), USER_LOSS).total, ref)


def test_logits_of_explains_what_it_cannot_use():
    with pytest.raises(TypeError, match=r"without a 'logits' tensor \(keys: \['hidden'\]\)"):
        logits_of({"hidden": S}, "teacher output")
    with pytest.raises(TypeError, match="expected a logits tensor"):
        logits_of("text")


def test_kd_shape_mismatch_names_both_shapes():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "KL"], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 3\)"):
        loss.compute(S, logits(2, (4, 3)), USER_LOSS)
    with pytest.raises(ValueError, match="scalar"):
        loss.compute((torch.tensor(1.0), S), (torch.tensor(2.0), TT), USER_LOSS)


def test_kd_student_vs_labels_uses_the_first_loss_type():
    labels = torch.tensor([0, 1, 2, 3])
    ce = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [0.5, 0.5])
    torch.testing.assert_close(ce(S, labels), nn.functional.cross_entropy(S, labels))
    mse = KnowledgeDistillationLoss(1.0, ["MSE", "CE"], [0.5, 0.5])
    torch.testing.assert_close(mse(S, TT), hand_mse(S, TT))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss_weights": [0.5, 0.6]}, "sum to 1"),
        ({"loss_weights": [1.5, -0.5]}, r"in \[0, 1\]"),
        ({"loss_types": ["CE", "L1"]}, "allowed: CE, KL, MSE"),
        ({"loss_types": ["KL", "CE"]}, "allowed: CE, MSE"),
        ({"temperature": 0}, "temperature must be a number > 0"),
        ({"loss_types": ["CE"], "loss_weights": [1.0]}, "two loss_types"),
    ],
)
def test_kd_parameters_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KnowledgeDistillationLoss(**kwargs)


def test_create_criterion_reads_one_config_entry():
    class Conf:
        config = {"KnowledgeDistillationLoss": {"temperature": 3.0, "loss_types": ["CE", "KL"], "loss_weights": [0.2, 0.8]}}  # fmt: skip

    made = create_criterion(Conf())
    assert isinstance(made, KnowledgeDistillationLoss)
    assert (made.temperature, made.loss_types, made.loss_weights) == (3.0, ["CE", "KL"], [0.2, 0.8])
    with pytest.raises(ValueError, match="exactly one"):
        create_criterion({"KnowledgeDistillationLoss": {}, "SelfKnowledgeDistillationLoss": {}})
    with pytest.raises(ValueError, match="allowed: KnowledgeDistillationLoss"):
        create_criterion({"Distil": {}})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['temp'\]"):
        create_criterion({"KnowledgeDistillationLoss": {"temp": 2}})


# -- intermediate layers ------------------------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self, hidden: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = nn.Linear(6, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


X = torch.randn(4, 6, generator=torch.Generator().manual_seed(5))


def attached(loss: IntermediateLayersKnowledgeDistillationLoss, student, teacher):
    loss.student_features.attach(student)
    loss.teacher_features.attach(teacher)
    return loss


@contextlib.contextmanager
def quiet(loss: IntermediateLayersKnowledgeDistillationLoss):
    """The test's own reference forwards record nothing."""
    with torch.no_grad(), loss.student_features.pausing(), loss.teacher_features.pausing():
        yield


def run_both(student: nn.Module, teacher: nn.Module) -> None:
    student.train()
    student(X)
    with torch.no_grad():
        teacher.eval()
        teacher(X)


def test_intermediate_mse_and_l1_on_equal_shapes():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    loss = attached(
        IntermediateLayersKnowledgeDistillationLoss(
            [[("fc1",)], [("fc2",), ("fc2",)]], ["MSE", "L1"], [0.4, 0.6]
        ),
        student,
        teacher,
    )
    run_both(student, teacher)
    value = loss.loss_cal()
    assert all(not f for f in loss.student_features.features + loss.teacher_features.features)
    with quiet(loss):
        s1, t1 = student.fc1(X), teacher.fc1(X)
        s2, t2 = student(X), teacher(X)
    expected = 0.4 * ((s1 - t1) ** 2).mean() + 0.6 * (s2 - t2).abs().mean()
    torch.testing.assert_close(value, expected)
    assert isinstance(loss.feature_matchers[0], nn.Identity)


def test_intermediate_linear_matcher_for_a_different_width():
    student, teacher = Tiny(4, 0), Tiny(8, 1)
    loss = attached(IntermediateLayersKnowledgeDistillationLoss([[("fc1",)]]), student, teacher)
    assert loss.feature_matchers == [None]  # created lazily, on the first loss
    run_both(student, teacher)
    value = loss.loss_cal()
    matcher = loss.feature_matchers[0]
    assert isinstance(matcher, nn.Module) and matcher.dense.weight.shape == (8, 4)
    assert not any(p.requires_grad for p in matcher.parameters())
    with quiet(loss):
        expected = ((matcher.dense(student.fc1(X)) - teacher.fc1(X)) ** 2).mean()
    torch.testing.assert_close(value, expected)
    value.backward()
    assert student.fc1.weight.grad is not None and teacher.fc1.weight.grad is None
    # the matcher persists across steps
    run_both(student, teacher)
    loss.loss_cal()
    assert loss.feature_matchers[0] is matcher


def test_intermediate_kl_follows_inc_preprocessing():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    loss = attached(
        IntermediateLayersKnowledgeDistillationLoss([[("fc2",)]], ["KL"], [1.0]), student, teacher
    )
    run_both(student, teacher)
    value = loss.loss_cal()
    with quiet(loss):
        log_q = torch.log(softmax(student(X)) + 1e-9)
        p = softmax(teacher(X))
    torch.testing.assert_close(value, (p * (torch.log(p) - log_q)).sum() / p.numel())


def test_intermediate_add_origin_loss():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    for add in (False, True):
        loss = attached(
            IntermediateLayersKnowledgeDistillationLoss([[("fc1",)]], add_origin_loss=add),
            student,
            teacher,
        )
        run_both(student, teacher)
        result = loss.compute(None, None, USER_LOSS)
        expected = result.distillation + USER_LOSS if add else result.distillation
        torch.testing.assert_close(result.total, expected)
        loss.remove_all_hooks()


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.inner(x)
        return h, {"double": 2 * h}


class Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = TupleOut()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)[0]


def test_intermediate_output_processes():
    student, teacher = Holder(), Holder()
    loss = attached(
        IntermediateLayersKnowledgeDistillationLoss(
            [
                [("block", "0"), ("block", "0")],
                [("block", lambda out: out[1]["double"]), ("block", lambda out: out[1]["double"])],
            ],
            loss_weights=[0.5, 0.5],
        ),
        student,
        teacher,
    )
    run_both(student, teacher)
    with quiet(loss):
        diff = student.block.inner(X) - teacher.block.inner(X)
    torch.testing.assert_close(
        loss.loss_cal(), 0.5 * (diff**2).mean() + 0.5 * ((2 * diff) ** 2).mean()
    )


def test_intermediate_unknown_layer_lists_close_matches():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    loss = IntermediateLayersKnowledgeDistillationLoss([[("fc3",), ("fc1",)]])
    with pytest.raises(
        UnknownLayerError, match=r"student model \(Tiny\) has no submodule 'fc3'.*'fc1'"
    ):
        loss.student_features.attach(student)
    assert isinstance(UnknownLayerError("x"), AttributeError)  # INC raises AttributeError
    loss.teacher_features.attach(teacher)
    assert loss.teacher_features.attached and not loss.student_features.attached


def test_intermediate_student_in_eval_mode_records_nothing():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    loss = attached(IntermediateLayersKnowledgeDistillationLoss([[("fc1",)]]), student, teacher)
    student.eval()
    student(X)
    teacher.eval()
    teacher(X)  # the teacher records whatever its mode
    assert loss.student_features.features == [[]]
    assert len(loss.teacher_features.features[0]) == 1
    with pytest.raises(RuntimeError, match="no student feature.*training mode"):
        loss.loss_cal()


def test_intermediate_two_forwards_in_one_step_is_an_error():
    student, teacher = Tiny(8, 0), Tiny(8, 1)
    loss = attached(IntermediateLayersKnowledgeDistillationLoss([[("fc1",)]]), student, teacher)
    run_both(student, teacher)
    student(X)
    with pytest.raises(RuntimeError, match="2 outputs on cpu"):
        loss.loss_cal()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_mappings": []}, "non-empty"),
        ({"layer_mappings": [[("a",)]], "loss_types": ["CE"]}, "allowed: MSE, KL, L1"),
        ({"layer_mappings": [[("a",)]], "loss_weights": [0.0]}, "nothing to distil"),
        ({"layer_mappings": [[("a",)], [("b",)]], "loss_weights": [1.0]}, "same length"),
        ({"layer_mappings": [[("a",), ("b",), ("c",)]]}, r"layer_mappings\[0\]"),
    ],
)
def test_intermediate_parameters_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntermediateLayersKnowledgeDistillationLoss(**kwargs)


# -- self-distillation ------------------------------------------------------------------------------
def test_self_distillation_counts_each_group_once():
    out = {
        "f1": logits(10, (4, 6)),
        "f2": logits(11, (4, 6)),
        "fd": logits(12, (4, 6)),
        "l1": logits(13),
        "ld": logits(14),
    }
    temp = 3.0
    weights = [0.2, 0.5, 0.3]
    loss = SelfKnowledgeDistillationLoss(
        [[["f1", "fd"], ["f2", "fd"]], [["l1", "ld"]], [["f1", "f2"]]],
        temperature=temp,
        loss_types=["L2", "CE", "KL"],
        loss_weights=weights,
    )
    group0 = torch.dist(out["f1"], out["fd"]) + torch.dist(out["f2"], out["fd"])
    group1 = hand_soft_ce(out["l1"] / temp, out["ld"] / temp)  # the logits group: at T, no T^2
    group2 = hand_kl(out["f1"], out["f2"])
    expected = weights[0] * group0 + weights[1] * group1 + weights[2] * group2
    result = loss.compute(out, None, USER_LOSS)
    assert result.total.shape == ()
    torch.testing.assert_close(result.total, expected)
    # upstream would give 3 * g0 + 2 * g1 + g2
    upstream = 3 * weights[0] * group0 + 2 * weights[1] * group1 + weights[2] * group2
    assert not torch.allclose(result.total, upstream)


def test_self_distillation_defaults_origin_loss_and_missing_keys():
    out = SequenceClassifierOutput(logits=logits(1), hidden_states=None)
    out["shallow"] = logits(2)
    loss = SelfKnowledgeDistillationLoss([[["shallow", "logits"]]], add_origin_loss=True)
    assert (loss.loss_types, loss.loss_weights) == (["CE"], [1.0])
    result = loss.compute(out, None, USER_LOSS)
    torch.testing.assert_close(
        result.total, hand_soft_ce(out["shallow"], out["logits"]) + USER_LOSS
    )
    with pytest.raises(KeyError, match=r"no tensor 'deep' \(keys: \['logits', 'shallow'\]\)"):
        SelfKnowledgeDistillationLoss([[["shallow", "deep"]]]).compute(out, None, USER_LOSS)
    with pytest.raises(TypeError, match="dict of named outputs"):
        loss.compute(S, None, USER_LOSS)
