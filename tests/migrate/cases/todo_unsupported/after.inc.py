from neural_compressor.experimental import GraphOptimization, Quantization, common
from neural_compressor.conf.config import QuantConf

# TODO(neural-coder): `graph_optimizer`: GraphOptimization is TensorFlow-only and has no 2.x API (for bf16 on PyTorch use mix_precision.fit with MixedPrecisionConfig); left as it is
graph_optimizer = GraphOptimization("graph.yaml")
# TODO(neural-coder): `graph_optimizer` is 1.x GraphOptimization: GraphOptimization is TensorFlow-only and has no 2.x API (for bf16 on PyTorch use mix_precision.fit with MixedPrecisionConfig)
graph_optimizer.model = "./frozen.pb"
# TODO(neural-coder): `graph_optimizer` is 1.x GraphOptimization: GraphOptimization is TensorFlow-only and has no 2.x API (for bf16 on PyTorch use mix_precision.fit with MixedPrecisionConfig)
optimized = graph_optimizer()

# TODO(neural-coder): `Quantization("conf.yaml")`: a 1.x quantization component not assigned to a variable; migrate it by hand
Quantization("conf.yaml").fit()

# TODO(neural-coder): `unused` (quantization): no fit() call found, so it was left as 1.x code; migrate it by hand
unused = Quantization("conf.yaml")
unused.model = common.Model(model)

# TODO(neural-coder): `neural_compressor.conf.config.QuantConf` is 1.x API this tool cannot rewrite here; rewrite it by hand
conf = QuantConf("conf.yaml")
