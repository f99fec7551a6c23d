"""Sample text from a small character-level language model, nanoGPT style.

Configuration by module-level variables, the model either resumed from a checkpoint
dict (`{"model_args": ..., "model": state_dict}`, with the `_orig_mod.` prefix that
`torch.compile` leaves stripped) or built from scratch, then a few samples generated
and the weights exported for serving. The checkpoint is written first when it is
missing (random weights stand in for trained ones).
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

init_from = os.environ.get("INIT_FROM", "resume")  # 'resume' or 'scratch'
out_dir = "out"
num_samples = 2
max_new_tokens = 40
seed = 1337
text = "the quick brown fox jumps over the lazy dog. " * 40
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
encode = lambda s: [stoi[c] for c in s]  # noqa: E731
decode = lambda ids: "".join(chars[i] for i in ids)  # noqa: E731


class CharLM(nn.Module):
    def __init__(self, vocab_size, n_embd=32, block_size=16):
        super().__init__()
        self.block_size = block_size
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        x = x + self.mlp(x)
        return self.lm_head(x)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=0.8):
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size :])[:, -1, :] / temperature
            idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
        return idx


def write_checkpoint(path):
    """Stands in for the checkpoint a training run leaves behind."""
    torch.manual_seed(0)
    model_args = dict(vocab_size=len(chars), n_embd=32, block_size=16)
    state = {f"_orig_mod.{k}": v for k, v in CharLM(**model_args).state_dict().items()}
    torch.save({"model_args": model_args, "model": state, "iter_num": 0}, path)


ckpt_path = os.path.join(out_dir, "ckpt.pt")
if init_from == "resume" and not os.path.exists(ckpt_path):
    os.makedirs(out_dir, exist_ok=True)
    write_checkpoint(ckpt_path)

torch.manual_seed(seed)
if init_from == "resume":
    checkpoint = torch.load(ckpt_path, map_location="cpu")
    model = CharLM(**checkpoint["model_args"])
    state_dict = checkpoint["model"]
    unwanted_prefix = "_orig_mod."
    for k, v in list(state_dict.items()):
        if k.startswith(unwanted_prefix):
            state_dict[k[len(unwanted_prefix) :]] = state_dict.pop(k)
    model.load_state_dict(state_dict)
elif init_from == "scratch":
    model = CharLM(len(chars))

model.eval()
start = torch.tensor([encode("the ")], dtype=torch.long)
for k in range(num_samples):
    y = model.generate(start, max_new_tokens)
    print(decode(y[0].tolist()))
    print("---------------")

torch.save(model.state_dict(), os.path.join(out_dir, "sampler.pt"))
