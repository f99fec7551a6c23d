"""Fine-tune a tiny text classifier with the Trainer, save it, then load the saved folder
back with the Auto class and with a pipeline, and classify a few inputs (the course's
train-then-infer layout)."""

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    Trainer,
    TrainingArguments,
    pipeline,
)
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.integrations.transformers import CompressionCallback, OptimizedModel
from neural_coder.runtime.training import prepare_compression

SAVE_DIR = "bert_toy_classifier"
WORDS = [f"w{i}" for i in range(115)]
with open("toy_vocab.txt", "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
tokenizer = BertTokenizer("toy_vocab.txt")


class ToyTexts(torch.utils.data.Dataset):
    def __init__(self, size, length=12, vocab_size=120, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(2, vocab_size, (size, length), generator=g)
        self.labels = (self.input_ids[:, 0] > vocab_size // 2).long()

    def __len__(self):
        return self.input_ids.shape[0]

    def __getitem__(self, idx):
        return {
            "input_ids": self.input_ids[idx],
            "attention_mask": torch.ones_like(self.input_ids[idx]),
            "labels": self.labels[idx],
        }


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


config = BertConfig(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=2,
)
model = BertForSequenceClassification(config)
args = TrainingArguments(
    output_dir="bert_toy_out",
    num_train_epochs=1,
    per_device_train_batch_size=16,
    learning_rate=2e-3,
    report_to=[],
    save_strategy="no",
    use_cpu=True,
)
compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
trainer = Trainer(
    model=model,
    args=args,
    train_dataset=ToyTexts(96),
    eval_dataset=ToyTexts(32, seed=1),
    compute_metrics=compute_metrics,
    processing_class=tokenizer,
    callbacks=[CompressionCallback(compression_manager)],
)
trainer.train()
print(trainer.evaluate())
trainer.save_model(SAVE_DIR)

classifier = OptimizedModel.from_pretrained(
    SAVE_DIR, model_class=AutoModelForSequenceClassification
)  # neural-coder: wrapped
classifier.eval()
batch = ToyTexts(4, seed=2)
with torch.no_grad():
    logits = classifier(
        input_ids=batch.input_ids, attention_mask=torch.ones_like(batch.input_ids)
    ).logits
print("predictions:", logits.argmax(-1).tolist())
print("classifier layer:", type(classifier.classifier).__module__)

classify = pipeline(
    "text-classification", model=OptimizedModel.from_pretrained(SAVE_DIR), tokenizer=SAVE_DIR
)  # neural-coder: wrapped
print(classify(" ".join(WORDS[:10])))
print("pipeline layer:", type(classify.model.classifier).__module__)
