from transformers import AutoModelForSequenceClassification, AutoTokenizer

from neural_compressor.experimental import Quantization, common
from neural_compressor.utils.load_huggingface import OptimizedModel, save_for_huggingface_upstream

model = AutoModelForSequenceClassification.from_pretrained("bert-tiny")
tokenizer = AutoTokenizer.from_pretrained("bert-tiny")
quantizer = Quantization("hf.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = eval_dataloader
quantizer.eval_func = eval_func
q_model = quantizer.fit()
save_for_huggingface_upstream(q_model, tokenizer, "./int8-model")
reloaded = OptimizedModel.from_pretrained("./int8-model")
