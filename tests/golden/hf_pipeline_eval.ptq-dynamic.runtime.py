"""Score a fine-tuned sentiment model on a few labelled reviews through a transformers
pipeline: the model is loaded by the pipeline from its folder, never named in the script."""

from transformers import pipeline
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig

MODEL_DIR = "./sentiment-model"

reviews = [
    ("i loved the movie", "POSITIVE"),
    ("the plot was terrible", "NEGATIVE"),
    ("great acting", "POSITIVE"),
    ("i hated it", "NEGATIVE"),
    ("not very good", "NEGATIVE"),
    ("the film is great", "POSITIVE"),
]

classifier = pipeline("text-classification", model=MODEL_DIR, tokenizer=MODEL_DIR, device=-1)
quantized_model = quantization.fit(classifier.model, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
classifier.model = quantized_model.model if quantized_model is not None else classifier.model  # neural-coder
predictions = classifier([text for text, _ in reviews], batch_size=2, truncation=True)
correct = sum(p["label"] == gold for p, (_, gold) in zip(predictions, reviews))
print(f"accuracy: {correct / len(reviews):.2f}")
