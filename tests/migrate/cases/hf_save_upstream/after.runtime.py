from transformers import AutoModelForSequenceClassification, AutoTokenizer
from neural_coder.runtime.integrations.transformers import OptimizedModel, save_for_huggingface_upstream
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

model = AutoModelForSequenceClassification.from_pretrained("bert-tiny")
tokenizer = AutoTokenizer.from_pretrained("bert-tiny")
quantizer_conf = PostTrainingQuantConfig(
    approach="static",
    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
    tuning_criterion=TuningCriterion(timeout=0, max_trials=600),
)
q_model = quantization.fit(model, quantizer_conf, calib_dataloader=eval_dataloader, eval_func=eval_func)
save_for_huggingface_upstream(q_model, tokenizer, "./int8-model")
reloaded = OptimizedModel.from_pretrained("./int8-model")
