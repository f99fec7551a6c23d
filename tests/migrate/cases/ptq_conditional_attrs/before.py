import argparse

from neural_compressor.experimental import Quantization, common

parser = argparse.ArgumentParser()
parser.add_argument("--tune", action="store_true")
parser.add_argument("--config", default="cond.yaml")
args = parser.parse_args()


def run(model, calib, evaluate):
    quantizer = Quantization(args.config)
    quantizer.model = common.Model(model)
    quantizer.calib_dataloader = calib
    if args.tune:
        quantizer.eval_func = evaluate
    return quantizer.fit()
