from neural_compressor.experimental import Distillation, Pruning, Quantization, Scheduler, common
from neural_compressor.experimental.common.criterion import PyTorchKnowledgeDistillationLoss


def train_func(model):
    for epoch in range(3):
        for step, (x, y) in enumerate(train_loader):
            agent.on_step_begin(step)
            out = model(x)
            loss = agent.on_after_compute_loss(x, out, criterion(out, y))
            loss.backward()
            agent.on_before_optimizer_step()
            optimizer.step()
            optimizer.zero_grad()
            agent.on_step_end()


prune = Pruning("p.yaml")
distiller = Distillation("d.yaml")
distiller.teacher_model = common.Model(teacher)
distiller.criterion = PyTorchKnowledgeDistillationLoss(temperature=2.0)
quantizer = Quantization("q.yaml")
scheduler = Scheduler()
scheduler.model = common.Model(model)
agent = scheduler.combine(prune, distiller, quantizer)
agent.train_func = train_func
scheduler.append(agent)
optimized = scheduler.fit()
