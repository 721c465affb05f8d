"""What every peer script shares with the others and with bench/run_train_bench.py: the command
line, the data, the measurements and the JSON lines they print, so that the Keras and PyTorch
peers differ only in their own library's code.

A training peer calls train_main; a memory peer calls memory_main. Both print JSON lines on
stdout and nothing else there (libraries' logs go to stderr).
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from fashion_mnist import train_split

WORKLOADS = ["mlp_small", "mlp_large", "cnn", "lstm"]


def rss_bytes():
    """Resident set size now, from /proc/self/statm (as bench/memory_bench.cpp reads it)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sine_windows(n=20000, steps=50):
    """The lstm workload's data as float32 arrays (n, steps, 1) and (n, 1): window i starts at
    phase 0.37 * i, the same formula as bench/train_bench.cpp."""
    t = np.arange(steps + 1, dtype=np.float64)
    phases = 0.37 * np.arange(n, dtype=np.float64)[:, None]
    series = np.sin(0.3 * t[None, :] + phases).astype(np.float32)
    return series[:, :steps, None].copy(), series[:, steps:].copy()


def emit(record):
    print(json.dumps(record), flush=True)


def train_main(library, version, set_threads, train):
    """One training run: `train(workload, epochs, limit)` trains on the first `limit` samples
    (None: all, the benchmark; a number: a quick check of the harness) and returns (samples,
    seconds, final_loss), after `set_threads(threads)` has run; prints {"library", "workload", "samples", "seconds",
    "samples_per_s", "peak_rss_bytes", "final_loss", "threads", "version"}."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=0, help="the first N samples only")
    args = parser.parse_args()
    set_threads(args.threads)
    samples, seconds, final_loss = train(args.workload, args.epochs, args.samples or None)
    emit({"library": library, "workload": args.workload, "samples": samples, "seconds": seconds,
          "samples_per_s": samples / seconds, "peak_rss_bytes": peak_rss_bytes(),
          "final_loss": float(final_loss), "threads": args.threads, "version": version()})


def memory_main(library, version, set_threads, fit, clear):
    """Memory given back, the runs of bench/memory_bench.cpp: (1) `fit(1024, x, y, 256)` one
    epoch of 784-1024-1024-10, then `clear(trial)` with the library's clearing idiom, RSS before,
    at peak and after; (2) --cycles cycles of fit 20 batches of 128 / clear, hidden width
    64 + 64 * (cycle % 16), RSS after each clear and its least-squares slope.

    `fit(width, x, y, batch)` returns a list holding every object the trial made (model,
    optimizer, ...) and nothing else does; `clear(trial)` empties that list and then runs the
    rest of the idiom, so that the list's owner keeps no reference alive."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    images, labels = train_split()
    x, y = images.reshape(60000, 784), labels
    common = {"library": library, "threads": args.threads, "version": version()}

    start = time.perf_counter()
    before = rss_bytes()
    trial = fit(1024, x, y, 256)
    peak = rss_bytes()
    clear_start = time.perf_counter()
    clear(trial)
    clear_seconds = time.perf_counter() - clear_start
    after = rss_bytes()
    emit(dict(common, test="clear", rss_before=before, rss_peak=peak, rss_after=after,
              retained=after - before, clear_seconds=clear_seconds,
              seconds=time.perf_counter() - start))

    rss = []
    x20, y20 = x[:20 * 128], y[:20 * 128]
    for c in range(args.cycles):
        trial = fit(64 + 64 * (c % 16), x20, y20, 128)
        clear(trial)
        rss.append(rss_bytes())
    slope = (float(np.polyfit(np.arange(len(rss)), np.array(rss, dtype=np.float64), 1)[0])
             if len(rss) > 1 else 0.0)
    emit(dict(common, test="cycles", cycles=args.cycles, rss_first=rss[0], rss_last=rss[-1],
              growth=rss[-1] - rss[0], slope_bytes_per_cycle=slope))


if __name__ == "__main__":
    sys.exit("protocol.py is imported by the peer scripts, not run")
