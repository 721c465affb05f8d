"""PyTorch side of bench/memory_bench.cpp: the runs of bench/peers/protocol.py's memory_main,
with PyTorch's clearing idiom (del model, optimizer; gc.collect()).

    /usr/bin/python3 bench/peers/torch_memory.py [--cycles 100] [--threads 2]
"""
import gc

import torch
import torch.nn as nn

from protocol import memory_main


def set_threads(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def fit(width, x, y, batch):
    x, y = torch.from_numpy(x), torch.from_numpy(y)  # no copy: the arrays' own memory
    model = nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], batch):
        index = order[i:i + batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()
    return [model, optimizer]


def clear(trial):
    trial.clear()  # del model, optimizer
    gc.collect()


if __name__ == "__main__":
    memory_main("pytorch", lambda: torch.__version__, set_threads, fit, clear)
