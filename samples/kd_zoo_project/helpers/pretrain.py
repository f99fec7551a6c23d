"""Warm-up of the connector modules before distillation: the student and the teacher
are frozen, only the connectors learn."""

import torch
import torch.optim as optim


def init(model_s, model_t, init_modules, criterion, train_loader, opt):
    model_t.eval()
    model_s.eval()
    init_modules.train()
    optimizer = optim.SGD(init_modules.parameters(), lr=opt.learning_rate, momentum=0.9)
    for epoch in range(1, opt.init_epochs + 1):
        total = 0.0
        for idx, (input, target) in enumerate(train_loader):
            feat_s, _ = model_s(input, is_feat=True)
            with torch.no_grad():
                feat_t, _ = model_t(input, is_feat=True)
            f_s = init_modules[0](feat_s[opt.hint_layer])
            loss = criterion(f_s, feat_t[opt.hint_layer])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"init epoch {epoch}: loss {total / len(train_loader):.4f}")
