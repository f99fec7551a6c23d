from neural_compressor.experimental import NAS

agent = NAS("nas.yaml")
agent.train_func = train
best_model_archs = agent.search()
