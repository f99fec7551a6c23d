"""Self-supervised pre-training by self-distillation, in the style of DINO / BYOL.

A student and a teacher share one architecture. Only the student is trained by the
optimizer; the teacher starts as a copy of the student, gets no gradients, and
follows the student as an exponential moving average after every step. The teacher
sees the two global views of an image, the student every view, and the loss asks
the student to match the teacher's sharpened, centred outputs.
"""

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import utils
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


def get_args_parser():
    parser = argparse.ArgumentParser("self-distillation", add_help=False)
    parser.add_argument("--epochs", default=3, type=int)
    parser.add_argument("--batch_size", default=16, type=int)
    parser.add_argument("--lr", default=0.01, type=float)
    parser.add_argument("--weight_decay", default=0.04, type=float)
    parser.add_argument("--momentum_teacher", default=0.99, type=float)
    parser.add_argument("--out_dim", default=32, type=int)
    parser.add_argument("--local_views", default=2, type=int)
    parser.add_argument("--use_fp16", action="store_true")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    parser.add_argument("--output_dir", default=".")
    return parser


class ConvBackbone(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip
        self.embed_dim = width

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


class ProjectionHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden=64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.mlp(x)


class SelfDistillLoss(nn.Module):
    def __init__(self, out_dim, n_views, student_temp=0.1, teacher_temp=0.04, center_momentum=0.9):
        super().__init__()
        self.n_views = n_views
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_output, teacher_output):
        student_out = (student_output / self.student_temp).chunk(self.n_views)
        teacher_out = F.softmax((teacher_output - self.center) / self.teacher_temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)
        total, terms = 0.0, 0
        for iq, q in enumerate(teacher_out):
            for v, s in enumerate(student_out):
                if v == iq:
                    continue
                total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
                terms += 1
        self.update_center(teacher_output)
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_output):
        batch_center = teacher_output.mean(dim=0, keepdim=True)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


def make_views(images, local_views):
    """Two global views (flips / noise) and a few local ones, all of the same size."""
    views = [images, images.flip(-1)]
    for i in range(local_views):
        views.append(images + 0.1 * torch.randn_like(images))
    return views


def train_one_epoch(student, teacher, teacher_without_ddp, loss_fn, data_loader, optimizer,
                    lr_schedule, momentum_schedule, epoch, fp16_scaler, args, compression_manager):
    student.train()
    running = 0.0
    for it, (images, _) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(it)  # neural-coder
        it = len(data_loader) * epoch + it
        for group in optimizer.param_groups:
            group["lr"] = lr_schedule[it]
        views = make_views(images, args.local_views)
        with torch.autocast("cpu", enabled=fp16_scaler is not None):
            teacher_output = teacher(views[:2])  # the teacher sees the global views only
            student_output = student(views)
            loss = loss_fn(student_output, teacher_output)

        optimizer.zero_grad()
        if fp16_scaler is None:
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        else:
            fp16_scaler.scale(loss).backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            fp16_scaler.step(optimizer)
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            fp16_scaler.update()

        # the teacher follows the student
        with torch.no_grad():
            m = momentum_schedule[it]
            for param_q, param_k in zip(student.parameters(), teacher_without_ddp.parameters()):
                param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
        running += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    return {"loss": running / len(data_loader)}


def train(args):
    torch.manual_seed(0)
    distributed = dist.is_available() and dist.is_initialized()
    images = torch.randn(64, 3, 8, 8)
    data_loader = DataLoader(TensorDataset(images, torch.zeros(64)), batch_size=args.batch_size, shuffle=True)

    # student and teacher: the same network
    student = ConvBackbone()
    teacher = ConvBackbone()
    embed_dim = student.embed_dim
    student = utils.MultiViewWrapper(student, ProjectionHead(embed_dim, args.out_dim))
    teacher = utils.MultiViewWrapper(teacher, ProjectionHead(embed_dim, args.out_dim))
    if distributed and utils.has_batchnorms(student):
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
        teacher = nn.SyncBatchNorm.convert_sync_batchnorm(teacher)
    compression_manager = prepare_compression(
        student,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    if distributed:
        teacher = nn.parallel.DistributedDataParallel(teacher)
        teacher_without_ddp = teacher.module
        student = nn.parallel.DistributedDataParallel(student)
        teacher_without_ddp.load_state_dict(student.module.state_dict())
    else:
        teacher_without_ddp = teacher
        teacher_without_ddp.load_state_dict(student.state_dict())
    # no backpropagation through the teacher
    for p in teacher.parameters():
        p.requires_grad = False

    loss_fn = SelfDistillLoss(args.out_dim, n_views=2 + args.local_views)

    params_groups = utils.get_param_groups(student)
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params_groups, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.SGD(params_groups, lr=0, momentum=0.9, weight_decay=args.weight_decay)
    fp16_scaler = torch.amp.GradScaler("cpu") if args.use_fp16 else None

    lr_schedule = utils.cosine_schedule(args.lr, 1e-4, args.epochs, len(data_loader), warmup_epochs=1)
    momentum_schedule = utils.cosine_schedule(args.momentum_teacher, 1.0, args.epochs, len(data_loader))
    fit_pruning_schedules(
        compression_manager.callbacks,
        max(1, int(0.8 * (args.epochs * len(data_loader)))),
    )  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        stats = train_one_epoch(student, teacher, teacher_without_ddp, loss_fn, data_loader,
                                optimizer, lr_schedule, momentum_schedule, epoch, fp16_scaler, args, compression_manager=compression_manager)
        save_dict = {
            "student": student.state_dict(),
            "teacher": teacher.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "loss": loss_fn.state_dict(),
        }
        utils.save_checkpoint(save_dict, os.path.join(args.output_dir, "checkpoint.pth"))
        print(f"epoch {epoch}: loss {stats['loss']:.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder


if __name__ == "__main__":
    parser = argparse.ArgumentParser("self-distillation", parents=[get_args_parser()])
    train(parser.parse_args())
