"""Task distillation with a Trainer subclass that takes its teacher as a keyword
(`KDTrainer(student, args, teacher=teacher, ...)`) and mixes the hard-label loss with a
temperature-scaled KL term in its own compute_loss; alpha and temperature ride on a
TrainingArguments subclass. The script already distils: the tool compresses its student
(qat, pruning) and keeps that loss."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback
from neural_coder.runtime.training import prepare_compression


@dataclass
class KDArguments(TrainingArguments):
    alpha: float = 0.5
    temperature: float = 2.0


class KDTrainer(Trainer):
    def __init__(self, *args, teacher=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval()

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        student_out = model(**inputs)
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        t = self.args.temperature
        soft = F.kl_div(
            F.log_softmax(student_out.logits / t, dim=-1),
            F.softmax(teacher_logits / t, dim=-1),
            reduction="batchmean",
        ) * (t * t)
        loss = self.args.alpha * student_out.loss + (1 - self.args.alpha) * soft
        return (loss, student_out) if return_outputs else loss


class Pairs(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 100, (n, 12), generator=g)
        self.labels = (self.ids[:, 0] > 50).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "labels": self.labels[i]}


def bert(hidden, layers):
    return BertForSequenceClassification(
        BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                   intermediate_size=2 * hidden, max_position_embeddings=32, num_labels=2)
    )


def main():
    torch.manual_seed(0)
    teacher = bert(32, 2)
    student = bert(16, 1)
    args = KDArguments(output_dir="kd_out", num_train_epochs=1, per_device_train_batch_size=8,
                       report_to="none", use_cpu=True, save_strategy="no", alpha=0.5, temperature=4.0)
    compression_manager = prepare_compression(
        student,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=1,
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    trainer = KDTrainer(
        student,
        args,
        teacher=teacher,
        train_dataset=Pairs(64, 0),
        eval_dataset=Pairs(32, 1),
        callbacks=[CompressionCallback(compression_manager, prune_until=0.8)],
    )  # neural-coder: wrapped
    trainer.train()
    print(trainer.evaluate())
    trainer.save_model("kd_out")


if __name__ == "__main__":
    main()
