from neural_compressor.experimental import NAS

# TODO(neural-coder): `agent`: 1.x NAS is not part of the 2.x compression API; left as it is
agent = NAS("nas.yaml")
# TODO(neural-coder): `agent` is 1.x NAS: 1.x NAS is not part of the 2.x compression API
agent.train_func = train
# TODO(neural-coder): `agent` is 1.x NAS: 1.x NAS is not part of the 2.x compression API
best_model_archs = agent.search()
