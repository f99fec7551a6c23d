from neural_compressor.experimental import Distillation, common


def train_func(model):
    for image, target in train_loader:
        outputs = model(image)
        loss = outputs["loss"]
        loss = distiller.on_after_compute_loss(image, outputs, loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


distiller = Distillation("self.yaml")
distiller.model = common.Model(model)
distiller.train_func = train_func
distiller.fit()
