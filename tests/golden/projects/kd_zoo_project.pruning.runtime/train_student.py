"""Knowledge distillation zoo in the style of CRD / RepDistiller: a trained teacher,
a student, and a list of criteria (classification, KL to the teacher, and one
feature-based distillation loss, some with trainable connectors). The connectors
can be warmed up first with the student and teacher frozen."""

import argparse

import torch
import torch.nn as nn
import torch.optim as optim
from distill.losses import ConvRegressor, DistillKL, HintLoss, Similarity
from helpers.loops import train_distill, validate
from helpers.pretrain import init
from models import model_dict
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


def parse_option():
    parser = argparse.ArgumentParser("distillation zoo")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--init_epochs", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--model_s", type=str, default="resnet8")
    parser.add_argument("--path_t", type=str, default="resnet14_teacher.pth")
    parser.add_argument("--distill", type=str, default="hint", choices=["kd", "hint", "similarity"])
    parser.add_argument("--hint_layer", type=int, default=1)
    parser.add_argument("--kd_T", type=float, default=4.0)
    parser.add_argument("-r", "--gamma", type=float, default=1.0)
    parser.add_argument("-a", "--alpha", type=float, default=0.9)
    parser.add_argument("-b", "--beta", type=float, default=1.0)
    return parser.parse_args()


def load_teacher(model_path, n_cls):
    model = model_dict["resnet14"](num_classes=n_cls)
    model.load_state_dict(torch.load(model_path, weights_only=True))
    return model


def main():
    opt = parse_option()
    torch.manual_seed(0)
    n_cls = 10
    images, labels = torch.randn(96, 3, 8, 8), torch.randint(0, n_cls, (96,))
    train_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[64:], labels[64:]), batch_size=16)

    model_t = load_teacher(opt.path_t, n_cls)
    model_s = model_dict[opt.model_s](num_classes=n_cls)

    data = torch.randn(2, 3, 8, 8)
    model_t.eval()
    model_s.eval()
    feat_t, _ = model_t(data, is_feat=True)
    feat_s, _ = model_s(data, is_feat=True)

    module_list = nn.ModuleList([])
    module_list.append(model_s)
    trainable_list = nn.ModuleList([])
    trainable_list.append(model_s)

    criterion_cls = nn.CrossEntropyLoss()
    criterion_div = DistillKL(opt.kd_T)
    if opt.distill == "kd":
        criterion_kd = DistillKL(opt.kd_T)
    elif opt.distill == "hint":
        criterion_kd = HintLoss()
        regress_s = ConvRegressor(feat_s[opt.hint_layer].shape[1], feat_t[opt.hint_layer].shape[1])
        module_list.append(regress_s)
        trainable_list.append(regress_s)
        if opt.init_epochs:
            init_trainable_list = nn.ModuleList([regress_s])
            init(model_s, model_t, init_trainable_list, criterion_kd, train_loader, opt)
    else:
        criterion_kd = Similarity()

    criterion_list = nn.ModuleList([])
    criterion_list.append(criterion_cls)
    criterion_list.append(criterion_div)
    criterion_list.append(criterion_kd)

    optimizer = optim.SGD(trainable_list.parameters(), lr=opt.learning_rate, momentum=0.9, weight_decay=5e-4)
    # the teacher joins the module list after the optimizer is built: it is not trained;
    # the training loop takes the student as module_list[0] and the teacher as module_list[-1]
    module_list.append(model_t)

    teacher_acc, _ = validate(val_loader, model_t, criterion_cls)
    print(f"teacher accuracy: {teacher_acc:.3f}")

    best_acc = 0.0
    compression_manager = prepare_compression(
        model_s,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=max(
                1,
                min(
                    int(0.8 * (len(range(1, opt.epochs + 1)) * len(train_loader))),
                    (len(range(1, opt.epochs + 1)) * len(train_loader))
                    // max(1, len(range(1, opt.epochs + 1)))
                    - 1,
                ),
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(1, opt.epochs + 1):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_acc, train_loss = train_distill(
            epoch, train_loader, module_list, criterion_list, optimizer, opt, compression_manager=compression_manager
        )
        test_acc, test_loss = validate(val_loader, model_s, criterion_cls)
        if test_acc >= best_acc:
            best_acc = test_acc
            torch.save({"epoch": epoch, "model": model_s.state_dict(), "best_acc": best_acc}, f"{opt.model_s}_best.pth")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    print(f"best accuracy: {best_acc:.3f}")
    torch.save({"model": model_s.state_dict()}, f"{opt.model_s}_last.pth")


if __name__ == "__main__":
    main()
