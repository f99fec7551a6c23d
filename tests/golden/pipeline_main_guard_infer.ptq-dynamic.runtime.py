"""Inference only, written under `if __name__ == "__main__":`: a text classifier handed to
`pipeline("text-classification")` with a word-level tokenizer built from a vocabulary file,
scored on a few labelled sentences."""

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer, pipeline
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig

WORDS = ["good", "bad", "great", "awful", "nice", "sad", "movie", "plot", "the", "was"]
SENTENCES = ["the movie was good", "the plot was awful", "a nice movie", "the plot was sad"]
GOLD = ["LABEL_1", "LABEL_0", "LABEL_1", "LABEL_0"]


def agreement(classifier):
    predictions = classifier(SENTENCES)
    return sum(p["label"] == g for p, g in zip(predictions, GOLD)) / len(GOLD)


if __name__ == "__main__":
    with open("words.txt", "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    tokenizer = BertTokenizer("words.txt")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    model = BertForSequenceClassification(config)
    quantized_model = quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    model.eval()
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    print("agreement", agreement(classifier))
    print("classifier layer:", type(classifier.model.bert.encoder.layer[0].output.dense).__module__)
