# TODO(neural-coder): `from neural_compressor.experimental import *` hides which 1.x names the script uses, so they were not migrated; import them by name (`from neural_compressor.experimental import Quantization, common`) and run again
from neural_compressor.experimental import *

quantizer = Quantization("conf.yaml")
quantizer.model = common.Model(model)
quantizer.calib_dataloader = loader
q_model = quantizer.fit()
