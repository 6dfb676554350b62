#!/usr/bin/env python3
# Copy of the project's shared peer benchmark (shared/bench/peer_torch.py) kept in the repository so that
# `convscope bench --peers` has it on a fresh machine (it embeds this file). Edit both together.
"""Peer reference: the Keras tutorial CNN in PyTorch, trained on an image folder.

usage: peer_torch.py TRAIN_DIR VAL_DIR [--size 150] [--epochs 5] [--batch 64] [--threads 2]
                     [--device cpu|cuda]
       peer_torch.py --random N [--classes 2] ...   (N random images per split, for throughput)
Prints one JSON line per epoch: {"epoch", "train_loss", "train_acc", "val_acc", "epoch_s", "img_per_s"}.
Images are loaded once into memory (decode time excluded from epoch_s), RGB, resized (nearest,
like Keras load_img), rescaled by 1/255. Same architecture, Keras (glorot) init, Adam 1e-3.
"""
import argparse, json, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image


def load_folder(root, size):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            try:
                im = Image.open(os.path.join(root, c, f)).convert("RGB").resize((size, size), Image.NEAREST)
            except Exception:
                continue
            xs.append(np.asarray(im, dtype=np.float32) / 255.0)
            ys.append(ci)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ys), classes


class Net(nn.Module):
    def __init__(self, size, n_out):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        s = size // 2 // 2 // 2
        self.fc1, self.fc2 = nn.Linear(64 * s * s, 512), nn.Linear(512, n_out)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight); nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.dropout(F.max_pool2d(F.relu(self.c1(x)), 2), 0.2, self.training)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.dropout(F.max_pool2d(F.relu(self.c3(x)), 2), 0.2, self.training)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train", nargs="?"); ap.add_argument("val", nargs="?")
    ap.add_argument("--random", type=int, default=0); ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--size", type=int, default=150); ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed); torch.set_num_threads(a.threads)
    if a.random:
        g = torch.Generator().manual_seed(a.seed)
        xt, xv = (torch.rand(a.random, 3, a.size, a.size, generator=g) for _ in range(2))
        yt, yv = (torch.randint(0, a.classes, (a.random,), generator=g) for _ in range(2))
        classes = [str(i) for i in range(a.classes)]
    else:
        xt, yt, classes = load_folder(a.train, a.size)
        xv, yv, _ = load_folder(a.val, a.size)
    binary = len(classes) == 2
    dev = torch.device(a.device)
    net = Net(a.size, 1 if binary else len(classes)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt, xv, yv = xt.to(dev), yt.to(dev), xv.to(dev), yv.to(dev)

    def loss_acc(logits, y):
        if binary:
            l = F.binary_cross_entropy_with_logits(logits[:, 0], y.float())
            acc = ((logits[:, 0] > 0).long() == y).float().mean()
        else:
            l = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
        return l, acc

    for ep in range(1, a.epochs + 1):
        net.train(); perm = torch.randperm(len(xt), device=dev)
        t0 = time.perf_counter(); tl = ta = n = 0
        for i in range(0, len(xt), a.batch):
            idx = perm[i:i + a.batch]
            l, acc = loss_acc(net(xt[idx]), yt[idx])
            opt.zero_grad(); l.backward(); opt.step()
            tl += l.item() * len(idx); ta += acc.item() * len(idx); n += len(idx)
        if dev.type == "cuda": torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        net.eval(); va = 0
        with torch.no_grad():
            for i in range(0, len(xv), 256):
                va += loss_acc(net(xv[i:i + 256]), yv[i:i + 256])[1].item() * len(yv[i:i + 256])
        print(json.dumps({"epoch": ep, "train_loss": round(tl / n, 4), "train_acc": round(ta / n, 4),
                          "val_acc": round(va / len(xv), 4), "epoch_s": round(dt, 3),
                          "img_per_s": round(n / dt, 1)}), flush=True)


if __name__ == "__main__":
    main()
