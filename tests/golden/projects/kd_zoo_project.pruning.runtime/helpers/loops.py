"""One epoch of distillation, and validation."""

import torch


def train_distill(epoch, train_loader, module_list, criterion_list, optimizer, opt, compression_manager):
    for module in module_list:
        module.train()
    module_list[-1].eval()  # the teacher

    model_s = module_list[0]
    model_t = module_list[-1]

    criterion_cls = criterion_list[0]
    criterion_div = criterion_list[1]
    criterion_kd = criterion_list[2]

    total, correct, seen = 0.0, 0, 0
    for idx, (input, target) in enumerate(train_loader):
        compression_manager.callbacks.on_step_begin(idx)  # neural-coder
        feat_s, logit_s = model_s(input, is_feat=True)
        with torch.no_grad():
            feat_t, logit_t = model_t(input, is_feat=True)
            feat_t = [f.detach() for f in feat_t]

        loss_cls = criterion_cls(logit_s, target)
        loss_div = criterion_div(logit_s, logit_t)
        if opt.distill == "hint":
            f_s = module_list[1](feat_s[opt.hint_layer])
            loss_kd = criterion_kd(f_s, feat_t[opt.hint_layer])
        elif opt.distill == "similarity":
            loss_kd = criterion_kd(feat_s[:-1], feat_t[:-1])
        else:
            loss_kd = 0
        loss = opt.gamma * loss_cls + opt.alpha * loss_div + opt.beta * loss_kd

        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder

        total += loss.item()
        correct += (logit_s.argmax(1) == target).sum().item()
        seen += target.numel()
        compression_manager.callbacks.on_step_end()  # neural-coder
    print(f"epoch {epoch}: train loss {total / len(train_loader):.4f}")
    return correct / seen, total / len(train_loader)


def validate(val_loader, model, criterion):
    model.eval()
    correct, seen, total = 0, 0, 0.0
    with torch.no_grad():
        for input, target in val_loader:
            output = model(input)
            total += criterion(output, target).item()
            correct += (output.argmax(1) == target).sum().item()
            seen += target.numel()
    return correct / seen, total / len(val_loader)
