from neural_compressor.experimental import GraphOptimization, Quantization, common
from neural_compressor.conf.config import QuantConf

graph_optimizer = GraphOptimization("graph.yaml")
graph_optimizer.model = "./frozen.pb"
optimized = graph_optimizer()

Quantization("conf.yaml").fit()

unused = Quantization("conf.yaml")
unused.model = common.Model(model)

conf = QuantConf("conf.yaml")
