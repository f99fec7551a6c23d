"""An inference script for a small causal language model: it first shows a greedy
continuation of a prompt, then reports perplexity on held-out token ids.

The model is built from a tiny config with random weights (no download) and the data is
random, so the numbers mean nothing; the layout is the point.
"""

import math

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from neural_coder.runtime import mix_precision
from neural_coder.runtime.config import AccuracyCriterion, MixedPrecisionConfig, TuningCriterion

torch.manual_seed(0)
config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2)
model = GPT2LMHeadModel(config)
model.eval()
held_out = torch.randint(0, 64, (8, 16))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(held_out), batch_size=4)


def perplexity(model, loader):
    total = 0.0
    with torch.no_grad():
        for (ids,) in loader:
            total += model(ids, labels=ids).loss.item()
    return math.exp(total / len(loader))


prompts = [[1, 2, 3], [7, 8]]
quantized_model = mix_precision.fit(
    model,
    MixedPrecisionConfig(
        accuracy_criterion=AccuracyCriterion(
            criterion="relative", tolerable_loss=0.01, higher_is_better=False
        ),
        tuning_criterion=TuningCriterion(max_trials=100),
    ),
    eval_func=lambda candidate: perplexity(candidate, loader),
)  # neural-coder
model = quantized_model if quantized_model is not None else model  # neural-coder
with torch.no_grad():
    for prompt in prompts:
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=5, do_sample=False, pad_token_id=0
        )
        print("sample:", out[0].tolist())
print(f"perplexity {perplexity(model, loader):.2f}")
