"""PyTorch side of the training benchmark: the same workloads as bench/train_bench.cpp, one
JSON line as bench/peers/protocol.py's train_main prints it.

    /usr/bin/python3 bench/peers/torch_train.py --workload mlp_small --threads 2 [--device cuda]

--device cuda: model and data are moved to the first GPU before the clock starts, the clock is
read after torch.cuda.synchronize(), and the line adds peak_device_bytes
(torch.cuda.max_memory_allocated, the data included) and the TF32 switches in force (PyTorch's
defaults, left as a user finds them).
"""
import sys
import time

import torch
import torch.nn as nn

from fashion_mnist import train_split
from protocol import sine_windows, train_main


def fashion_mnist():
    x, y = train_split()
    return torch.from_numpy(x), torch.from_numpy(y)


class LstmNet(nn.Module):
    """The lstm workload's model: LSTM(64) over 50 steps of 1 feature, its last state to one
    output."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 64, batch_first=True)
        self.head = nn.Linear(64, 1)

    def forward(self, inputs):
        out, _ = self.lstm(inputs)
        return self.head(out[:, -1, :])


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
        x, y = (torch.from_numpy(a) for a in sine_windows())
        return LstmNet(), x, y, nn.MSELoss(), 64
    raise SystemExit(f"unknown workload {name}")


def set_threads(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def gpu_usable():
    """Exits with a message unless this PyTorch can use a CUDA device."""
    if not torch.cuda.is_available():
        sys.exit(f"pytorch: --device cuda: no CUDA device usable (torch {torch.__version__}, "
                 f"built for CUDA {torch.version.cuda}; torch.cuda.is_available() is False)")


def clock(device):
    """perf_counter once the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def train(name, epochs, limit, device_name):
    if device_name == "cuda":
        gpu_usable()
    device = torch.device("cuda:0" if device_name == "cuda" else "cpu")
    model, x, y, loss_fn, batch = workload(name)
    x, y = x[:limit], y[:limit]
    if device.type == "cuda":
        model, x, y = model.to(device), x.to(device), y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    start = clock(device)
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        for i in range(0, n, batch):
            index = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
    seconds = clock(device) - start
    # final_loss: the last batch's (tabula and Keras report the epoch mean).
    return n * epochs, seconds, loss


def gpu_figures(device_name):
    return {"device": "cuda:0", "peak_device_bytes": torch.cuda.max_memory_allocated(0),
            "gpu": torch.cuda.get_device_name(0),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32}


if __name__ == "__main__":
    train_main("pytorch", lambda: torch.__version__, set_threads, train, devices=("cpu", "cuda"),
               device_figures=gpu_figures)
