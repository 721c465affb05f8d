"""PyTorch side of bench/memory_bench.cpp: the runs of bench/peers/protocol.py's memory_main,
with PyTorch's clearing idiom (del model, optimizer; gc.collect(); and on a GPU
torch.cuda.empty_cache(), which hands the caching allocator's free blocks back to the driver).

    /usr/bin/python3 bench/peers/torch_memory.py [--cycles 100] [--threads 2] [--device cuda]
    /usr/bin/python3 bench/peers/torch_memory.py --test predict [--workload cnn|lstm] [--threads 2]

--test predict: inference under torch.inference_mode(), each batch's output copied into one
preallocated tensor (what a user writes; PyTorch frees each intermediate once the next layer has
read it).
"""
import gc
import sys

import torch
import torch.nn as nn

from protocol import memory_main
from torch_train import LstmNet


def set_threads(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def fit(width, x, y, batch):
    x, y = torch.as_tensor(x), torch.as_tensor(y)  # no copy: the arrays' (or GPU's) own memory
    model = nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 10)).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0], device=x.device)
    for i in range(0, x.shape[0], batch):
        index = order[i:i + batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return [model, optimizer]


def cnn():
    """torch_train.py's cnn workload (NCHW)."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128),
                         nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))


def predict(model, x, batch):
    x = torch.from_numpy(x)  # no copy
    with torch.inference_mode():
        first = model(x[:batch])
        out = torch.empty((x.shape[0],) + tuple(first.shape[1:]))
        out[:batch] = first
        for i in range(batch, x.shape[0], batch):
            out[i:i + batch] = model(x[i:i + batch])
    return out


def clear(trial):
    trial.clear()  # del model, optimizer
    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class Gpu:
    """memory_main's view of the first GPU."""

    def __init__(self):
        if not torch.cuda.is_available():
            sys.exit(f"pytorch: --device cuda: no CUDA device usable (torch {torch.__version__}, "
                     f"built for CUDA {torch.version.cuda}; torch.cuda.is_available() is False)")

    @staticmethod
    def used_bytes():
        free, total = torch.cuda.mem_get_info(0)
        return total - free

    @staticmethod
    def to_device(x, y):
        return torch.from_numpy(x).to("cuda:0"), torch.from_numpy(y).to("cuda:0")


if __name__ == "__main__":
    memory_main("pytorch", lambda: torch.__version__, set_threads, fit, clear,
                devices=("cpu", "cuda"), gpu=Gpu,
                predict_models={"cnn": (cnn, lambda images: images[:, None, :, :]),  # NCHW
                                "lstm": (LstmNet, lambda windows: windows)},
                predict=predict)
