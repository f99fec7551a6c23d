"""bf16 `fit` measures each module on the inputs of the first model call of the baseline
evaluation. A Seq2SeqTrainer with predict_with_generate evaluates through `generate()`
first, whose forward calls carry the generation's state (a cache that later steps
mutate, the encoder's output): replaying that call crashed inside T5 (KeyError: 0). The
recorder now keeps the first call that is not a generation step."""

from __future__ import annotations

import torch
from transformers import T5Config, T5ForConditionalGeneration

from neural_coder.runtime.batches import call_model
from neural_coder.runtime.mix_precision import _CallRecorder


def test_the_recorded_call_is_the_plain_forward_not_a_generation_step():
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=40,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    model = T5ForConditionalGeneration(config).eval()
    batch = {
        "input_ids": torch.randint(2, 40, (2, 6)),
        "attention_mask": torch.ones(2, 6, dtype=torch.long),
        "labels": torch.randint(2, 40, (2, 3)),
    }
    recorder = _CallRecorder(model)
    with torch.no_grad():  # what Seq2SeqTrainer.prediction_step does
        model.generate(input_ids=batch["input_ids"], max_new_tokens=3, do_sample=False)
        model(**batch)
    recorder.remove()
    inputs = recorder.inputs()
    assert set(inputs) == set(batch)
    with torch.no_grad():
        assert call_model(model, inputs).logits.shape == (2, 3, 40)


class _ListDetector(torch.nn.Module):
    """Takes one list of per-image tensors, as torchvision's detection models do."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, images: list, targets: object = None) -> torch.Tensor:
        return self.head(torch.stack(images))


def test_a_call_with_one_list_of_images_is_replayed_as_that_list():
    # the recorder returned the lone list, which call_model spread over forward's
    # parameters: `forward() takes from 2 to 3 positional arguments but 5 were given`
    model = _ListDetector().eval()
    recorder = _CallRecorder(model)
    images = [torch.randn(4) for _ in range(4)]
    with torch.no_grad():
        model(images)
    recorder.remove()
    with torch.no_grad():
        assert call_model(model, recorder.inputs()).shape == (4, 2)


def test_a_call_with_one_tensor_is_replayed_as_that_tensor():
    model = torch.nn.Linear(4, 2).eval()
    recorder = _CallRecorder(model)
    x = torch.randn(3, 4)
    with torch.no_grad():
        model(x)
    recorder.remove()
    assert recorder.inputs() is x
