from neural_compressor.experimental import Benchmark, common

evaluator = Benchmark("bench.yaml")
evaluator.model = common.Model(model)
evaluator.b_dataloader = loader
evaluator.fit("performance")

acc_eval = Benchmark("bench.yaml")
acc_eval.model = common.Model(model)
acc_eval.b_func = evaluate
acc = acc_eval("accuracy")

results = Benchmark("bench.yaml")
results.model = model
results.b_dataloader = loader
res = results()
