"""A Trainer subclass for question answering: evaluation adds exact-match metrics
computed from the start/end logits."""

from transformers import Trainer


class QuestionAnsweringTrainer(Trainer):
    def __init__(self, *args, eval_examples=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        output = self.predict(dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        start_logits, end_logits = output.predictions
        starts, ends = output.label_ids
        exact = ((start_logits.argmax(-1) == starts) & (end_logits.argmax(-1) == ends)).mean()
        metrics = {f"{metric_key_prefix}_exact_match": float(exact), **output.metrics}
        self.log(metrics)
        return metrics
