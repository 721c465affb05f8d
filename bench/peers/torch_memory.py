"""PyTorch side of bench/memory_bench.cpp: RSS before, at peak and after PyTorch's clearing
idiom (del model, optimizer, tensors; gc.collect()), and over build / fit 20 batches / clear
cycles with widths varying per cycle.

    /usr/bin/python3 bench/peers/torch_memory.py [--cycles 100] [--threads 2]
"""
import argparse
import gc
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn

from fashion_mnist import train_split


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mlp(width):
    return nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def fit(model, x, y, batch):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], batch):
        index = order[i:i + batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()
    return optimizer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images, labels = train_split()
    x = torch.from_numpy(images.reshape(60000, 784))
    y = torch.from_numpy(labels)

    before = rss_bytes()
    model = mlp(1024)
    optimizer = fit(model, x, y, 256)
    peak = rss_bytes()
    start = time.perf_counter()
    del model, optimizer
    gc.collect()
    clear_seconds = time.perf_counter() - start
    after = rss_bytes()
    print(json.dumps({"library": "pytorch", "test": "clear", "rss_before": before,
                      "rss_peak": peak, "rss_after": after, "retained": after - before,
                      "clear_seconds": clear_seconds}))

    rss = []
    x20, y20 = x[:20 * 128], y[:20 * 128]
    for c in range(args.cycles):
        model = mlp(64 + 64 * (c % 16))
        optimizer = fit(model, x20, y20, 128)
        del model, optimizer
        gc.collect()
        rss.append(rss_bytes())
    slope = float(np.polyfit(np.arange(len(rss)), np.array(rss, dtype=np.float64), 1)[0])
    print(json.dumps({"library": "pytorch", "test": "cycles", "cycles": args.cycles,
                      "rss_first": rss[0], "rss_last": rss[-1], "growth": rss[-1] - rss[0],
                      "slope_bytes_per_cycle": slope}))


if __name__ == "__main__":
    main()
