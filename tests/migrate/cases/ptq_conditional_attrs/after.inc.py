import argparse
from neural_compressor import quantization
from neural_compressor.config import PostTrainingQuantConfig

parser = argparse.ArgumentParser()
parser.add_argument("--tune", action="store_true")
parser.add_argument("--config", default="cond.yaml")
args = parser.parse_args()


def run(model, calib, evaluate):
    quantizer_eval_func = None
    if args.tune:
        quantizer_eval_func = evaluate
    quantizer_conf = PostTrainingQuantConfig()
    return quantization.fit(
        model, quantizer_conf, calib_dataloader=calib, eval_func=quantizer_eval_func
    )
