"""1.x code with parts that have no 2.x home: yaml-only dataloaders, a postprocess,
TensorFlow-only components and fields. The migration leaves TODOs for each."""

import torch.nn as nn
from neural_compressor.experimental import ModelConversion, Quantization, common

model = nn.Sequential(nn.Linear(4, 4))


class LabelShift:
    def __call__(self, sample):
        preds, labels = sample
        return preds, labels - 1


quantizer = Quantization("todos.yaml")
quantizer.model = common.Model(model)
quantizer.postprocess = common.Postprocess(LabelShift, "label_shift")
q_model = quantizer.fit()

conversion = ModelConversion()
conversion.source = "QAT"
conversion.destination = "default"
conversion.model = "./saved_tf_qat_model"
tf_model = conversion.fit()
