import copy
from neural_compressor.config import AccuracyCriterion, QuantizationAwareTrainingConfig, TuningCriterion
from neural_compressor.training import prepare_compression


def training_func_for_nc(model):
    for batch, target in loader:
        loss = criterion(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


quantizer_model = copy.deepcopy(model)
quantizer_conf = QuantizationAwareTrainingConfig(
    model_name="qat",
    op_type_dict={"Linear": {"weight": {"dtype": ["fp32"]}}},
    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
    tuning_criterion=TuningCriterion(max_trials=600),
)
quantizer = prepare_compression(quantizer_model, quantizer_conf)
quantizer.callbacks.on_train_begin()
quantizer_model = quantizer.model
training_func_for_nc(quantizer_model)
quantizer.callbacks.on_train_end()
q_model = quantizer.model
q_model.save("./qat_out")
