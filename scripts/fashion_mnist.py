#!/usr/bin/env python3
"""Write Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist) as image folders that
`convscope train` and ../shared/bench/peer_torch.py both read: OUT/train/<class>/*.png and
OUT/test/<class>/*.png, grayscale 28x28 PNGs (real photos of clothing, 10 classes, MIT).

usage: scripts/fashion_mnist.py OUT [--per-class N]   (N per class per split; default all)
"""
import argparse, gzip, os, struct, zlib

SRC = "/usr/share/datasets/fashion-mnist"
CLASSES = ["0-tshirt", "1-trouser", "2-pullover", "3-dress", "4-coat",
           "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-boot"]

def png(path, w, h, pixels):
    raw = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

def split(images, labels, out, per_class):
    with gzip.open(os.path.join(SRC, images)) as f:
        _, n, h, w = struct.unpack(">IIII", f.read(16)); data = f.read()
    with gzip.open(os.path.join(SRC, labels)) as f:
        f.read(8); labs = f.read()
    counts = [0] * 10
    for c in CLASSES:
        os.makedirs(os.path.join(out, c), exist_ok=True)
    for i in range(n):
        c = labs[i]
        if per_class and counts[c] >= per_class:
            continue
        counts[c] += 1
        png(os.path.join(out, CLASSES[c], f"{i:05d}.png"), w, h, data[i * h * w:(i + 1) * h * w])

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("out"); ap.add_argument("--per-class", type=int, default=0)
    a = ap.parse_args()
    split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", os.path.join(a.out, "train"), a.per_class)
    split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", os.path.join(a.out, "test"), a.per_class // 5 if a.per_class else 0)
