"""The approaches `optimize` knows, by kind (shared by the option and pipeline parsers)."""

#: compress while the script trains, through `prepare_compression` hooks
TRAINING_TECHNIQUES = ("distillation", "pruning", "qat")
#: run once on the trained model, through a `fit` call (or a benchmark)
POST_TRAINING = ("ptq-static", "ptq-dynamic", "ptq-auto", "bf16", "benchmark")
