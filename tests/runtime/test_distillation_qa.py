"""Knowledge distillation of outputs without `logits`: question answering (start / end
logits), through the loss, the compressor in a plain loop, and a Trainer."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

pytest.importorskip("transformers")

from transformers import BertConfig, BertForQuestionAnswering, Trainer  # noqa: E402
from transformers.modeling_outputs import (  # noqa: E402
    BaseModelOutputWithPooling,
    QuestionAnsweringModelOutput,
)

from neural_coder.runtime.config import (  # noqa: E402
    DistillationConfig,
    KnowledgeDistillationLossConfig,
)
from neural_coder.runtime.distillation import (  # noqa: E402
    KnowledgeDistillationLoss,
    kl_divergence,
    logits_fields,
    soft_cross_entropy,
)
from neural_coder.runtime.integrations.transformers import (  # noqa: E402
    CompressionCallback,
    with_distillation,
)
from neural_coder.runtime.training import prepare_compression  # noqa: E402

from .hf_models import training_args  # noqa: E402

SEQ = 12


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rand(seed: int, shape: tuple[int, ...] = (4, SEQ)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def qa(start: torch.Tensor, end: torch.Tensor, loss: Any = None) -> QuestionAnsweringModelOutput:
    return QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end)


def tiny_qa_bert(seed: int = 0) -> BertForQuestionAnswering:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForQuestionAnswering(config)


def perturbed_copy(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    teacher = copy.deepcopy(model)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return teacher


def qa_batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, SEQ), generator=g)
    start = torch.randint(0, SEQ - 2, (n,), generator=g)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "start_positions": start,
        "end_positions": start + 1,
    }


# -- the loss ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "divergence"),
    [("CE", soft_cross_entropy), ("KL", kl_divergence), ("MSE", F.mse_loss)],
)
def test_each_logits_field_is_distilled_and_the_terms_averaged(kind, divergence):
    temp, w0, w1 = 2.0, 0.4, 0.6
    s_start, s_end, t_start, t_end = rand(0), rand(1), rand(2), rand(3)
    user_loss = torch.tensor(1.25)
    loss = KnowledgeDistillationLoss(temp, ["CE", kind], [w0, w1])
    result = loss.compute(qa(s_start, s_end, user_loss), qa(t_start, t_end), user_loss)
    per_field = [divergence(s / temp, t / temp) for s, t in ((s_start, t_start), (s_end, t_end))]
    expected = w1 * temp**2 * (per_field[0] + per_field[1]) / 2
    torch.testing.assert_close(result.distillation, expected)
    torch.testing.assert_close(result.total, w0 * user_loss + expected)


def test_a_plain_dict_of_logits_fields_works_and_logits_wins_when_present():
    fields = logits_fields({"start_logits": rand(0), "end_logits": rand(1), "loss": rand(2)})
    assert list(fields) == ["start_logits", "end_logits"]
    both = {"logits": rand(0), "router_logits": rand(1)}
    assert list(logits_fields(both)) == ["logits"]  # companions are not class scores


def test_an_output_without_any_logits_field_names_its_fields():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [0.5, 0.5])
    hidden = BaseModelOutputWithPooling(last_hidden_state=rand(0, (2, 3, 4)), pooler_output=rand(1))
    with pytest.raises(
        TypeError, match=r"no logits tensor.*\['last_hidden_state', 'pooler_output'\]"
    ):
        loss.compute(hidden, hidden, torch.tensor(1.0))


def test_student_and_teacher_with_no_common_logits_field_are_refused():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\['logits'\].*\['end_logits', 'start_logits'\]"):
        loss.compute(rand(0), qa(rand(1), rand(2)), torch.tensor(1.0))


def test_a_shape_mismatch_names_the_field():
    loss = KnowledgeDistillationLoss(1.0, ["CE", "CE"], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"student end_logits has shape \(4, 12\).*\(4, 7\)"):
        loss.compute(qa(rand(0), rand(1)), qa(rand(2), rand(3, (4, 7))), torch.tensor(1.0))


# -- a tiny BertForQuestionAnswering -------------------------------------------------------------
def test_plain_loop_distils_a_question_answering_bert():
    student = tiny_qa_bert()
    teacher = perturbed_copy(student)
    conf = KnowledgeDistillationLossConfig(
        temperature=2.0, loss_types=["CE", "KL"], loss_weights=[0.3, 0.7]
    )
    cm = prepare_compression(student, DistillationConfig(teacher, conf))
    model = cm.model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = student.qa_outputs.weight.detach().clone()
    cm.callbacks.on_train_begin()
    losses = []
    for step in range(3):
        batch = qa_batch(4, seed=step)
        cm.callbacks.on_step_begin(step)
        out = model(**batch)
        loss = cm.callbacks.on_after_compute_loss(batch, out, out.loss)
        if step == 0:
            with torch.no_grad():
                t = teacher(**batch)
            expected = (
                0.3 * out.loss
                + 0.7
                * 4
                * (
                    kl_divergence(out.start_logits / 2, t.start_logits / 2)
                    + kl_divergence(out.end_logits / 2, t.end_logits / 2)
                )
                / 2
            )
            torch.testing.assert_close(loss, expected)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cm.callbacks.on_step_end()
        losses.append(float(loss.detach()))
    cm.callbacks.on_train_end()
    assert cm.summary["distillation_steps"] == 3
    assert all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(student.qa_outputs.weight, before)
    assert all(not p.requires_grad for p in teacher.parameters())


class QADataset(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.batch = qa_batch(n, seed=7)

    def __len__(self) -> int:
        return len(self.batch["input_ids"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.batch.items()}


def test_trainer_distils_a_question_answering_bert(tmp_path: Path) -> None:
    student = tiny_qa_bert()
    teacher = perturbed_copy(student)
    teacher_kwargs: list[set[str]] = []
    teacher.register_forward_pre_hook(
        lambda module, args, kwargs: teacher_kwargs.append(set(kwargs)), with_kwargs=True
    )
    cm = prepare_compression(
        student, DistillationConfig(teacher, KnowledgeDistillationLossConfig())
    )
    trainer = Trainer(
        model=student,
        args=training_args(str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=8),
        train_dataset=QADataset(24),
        callbacks=[CompressionCallback(cm)],
    )
    assert with_distillation(trainer, cm) is trainer
    trainer.train()
    assert cm.summary["distillation_steps"] == 3
    last = cm.summary["distillation_loss_last"]
    assert last is not None and last > 0 and torch.isfinite(torch.tensor(last))
    assert len(teacher_kwargs) == 3
    assert all({"start_positions", "end_positions"} <= k for k in teacher_kwargs)
