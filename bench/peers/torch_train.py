"""PyTorch side of the training benchmark: the same workloads as bench/train_bench.cpp.

Prints one JSON line: {"library", "workload", "samples_per_s", "seconds", "samples",
"peak_rss_bytes", "final_loss", "threads", "version"}.

    /usr/bin/python3 bench/peers/torch_train.py --workload mlp_small --threads 2
"""
import argparse
import json
import resource
import time

import numpy as np
import torch
import torch.nn as nn

from fashion_mnist import train_split


def fashion_mnist():
    x, y = train_split()
    return torch.from_numpy(x), torch.from_numpy(y)


def sine_windows(n, steps):
    # The same formula as train_bench.cpp: window i starts at phase 0.37 * i.
    t = np.arange(steps + 1, dtype=np.float64)
    phases = 0.37 * np.arange(n, dtype=np.float64)[:, None]
    series = np.sin(0.3 * t[None, :] + phases).astype(np.float32)
    return torch.from_numpy(series[:, :steps, None].copy()), torch.from_numpy(series[:, steps:].copy())


def workload(name):
    if name == "mlp_small":
        x, y = fashion_mnist()
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        return model, x, y, nn.CrossEntropyLoss(), 128
    if name == "mlp_large":
        x, y = fashion_mnist()
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                              nn.ReLU(), nn.Linear(1024, 10))
        return model, x, y, nn.CrossEntropyLoss(), 256
    if name == "cnn":
        x, y = fashion_mnist()
        x = x[:, None, :, :]  # NCHW, PyTorch's native layout
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
        return model, x, y, nn.CrossEntropyLoss(), 64
    if name == "lstm":
        x, y = sine_windows(20000, 50)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(1, 64, batch_first=True)
                self.head = nn.Linear(64, 1)

            def forward(self, inputs):
                out, _ = self.lstm(inputs)
                return self.head(out[:, -1, :])

        return Net(), x, y, nn.MSELoss(), 64
    raise SystemExit(f"unknown workload {name}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, x, y, loss_fn, batch = workload(args.workload)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(n)
        for i in range(0, n, batch):
            index = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "library": "pytorch", "workload": args.workload, "samples": n * args.epochs,
        "seconds": seconds, "samples_per_s": n * args.epochs / seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "final_loss": float(loss), "threads": args.threads, "version": torch.__version__}))


if __name__ == "__main__":
    main()
