import torch
from neural_compressor import quantization, set_random_seed, set_resume_from, set_tensorboard, set_workspace
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


def main(model, calib, val):
    quantizer_conf = PostTrainingQuantConfig(
        device="cpu",
        backend="ipex",
        approach="auto",
        calibration_sampling_size=[100, 200],
        recipes={
            "fast_bias_correction": True,
            "weight_correction": False,
            "pre_post_process_quantization": True,
        },
        op_type_dict={
            ".*": {
                "activation": {"algorithm": ["minmax", "kl"]},
                "weight": {
                    "granularity": ["per_channel", "per_tensor"],
                    "scheme": ["sym"],
                    "dtype": ["int8"],
                    "algorithm": ["minmax"],
                },
            },
            "Conv2d": {"weight": {"dtype": ["fp32"]}},
        },
        op_name_dict={
            "layer1.0.conv1": {"activation": {"dtype": ["fp32"], "scheme": ["asym"]}}
        },
        quant_level=1,
        excluded_precisions=["bf16"],
        accuracy_criterion=AccuracyCriterion(
            higher_is_better=False, criterion="absolute", tolerable_loss=0.015
        ),
        tuning_criterion=TuningCriterion(
            strategy="mse",
            objective={
                "objective": ["accuracy", "performance"],
                "weight": [0.8, 0.2],
                "higher_is_better": [True, True],
            },
            timeout=600,
            max_trials=300,
        ),
        diagnosis=True,
    )
    set_random_seed(1)
    set_tensorboard(True)
    set_workspace("./ws")
    set_resume_from("./ws/history.snapshot")
    return quantization.fit(
        model,
        quantizer_conf,
        calib_dataloader=calib,
        eval_dataloader=val,
        eval_metric={"topk": 5},
    )
