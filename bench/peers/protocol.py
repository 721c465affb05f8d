"""What every peer script shares with the others and with bench/run_train_bench.py: the command
line, the data, the measurements and the JSON lines they print, so that the Keras and PyTorch
peers differ only in their own library's code.

A training peer calls train_main; a memory peer calls memory_main. Both print JSON lines on
stdout and nothing else there (libraries' logs go to stderr).

--device cpu|cuda (default cpu): a peer names what it can run on in `devices`; asked for
another, it exits with DEVICE_REFUSED and says so on stderr (the Keras peers are CPU-only here).
On cuda the peer runs on its library's first GPU and reports "device" and the GPU's figures.
"""
import argparse
import gc
import json
import os
import resource
import sys
import time

import numpy as np

from fashion_mnist import test_images, train_split

WORKLOADS = ["mlp_small", "mlp_large", "cnn", "lstm"]
DEVICES = ["cpu", "cuda"]
# The exit status of a peer asked for a device it does not run on.
DEVICE_REFUSED = 3


def rss_bytes():
    """Resident set size now, from /proc/self/statm (as bench/memory_bench.cpp reads it)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss():
    """Makes the kernel's high-water mark (VmHWM) the current RSS (Linux: "5" to
    /proc/self/clear_refs), so that the next hwm_bytes() is the peak of what follows."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def hwm_bytes():
    """VmHWM, the peak RSS since the last reset_peak_rss(), from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


PREDICT_BATCH = 1000
PREDICT_WORKLOADS = ["cnn", "lstm"]


def predict_inputs(workload):
    """What the predict test's workload predicts, as memory_bench's predict_inputs: the 10,000
    Fashion-MNIST test images (n, 28, 28) for cnn, the 20,000 sine windows (n, 50, 1) for lstm."""
    return sine_windows()[0] if workload == "lstm" else test_images()


def predict_run(common, workload, model, prepare, predict):
    """Inference memory, as `memory_bench --test predict` measures it: the training benchmark's
    `workload` (`model()`, untrained) predicts predict_inputs(workload) in batches of 1,000
    (`predict(model, x, batch)`, x = `prepare(inputs)`, the library's layout), after a warm-up of
    10 samples with a model of its own; the peak RSS over the call (VmHWM, reset just before)
    against the RSS before it."""
    x = prepare(predict_inputs(workload))
    predict(model(), x[:10], 10)
    gc.collect()
    net = model()
    before = rss_bytes()
    reset_peak_rss()
    start = time.perf_counter()
    out = predict(net, x, PREDICT_BATCH)
    seconds = time.perf_counter() - start
    peak, after = hwm_bytes(), rss_bytes()
    emit(dict(common, test="predict", workload=workload, batch=PREDICT_BATCH,
              samples=int(len(out)), rss_before=before, rss_peak=peak, rss_after=after,
              peak_increase=peak - before, seconds=seconds))


def sine_windows(n=20000, steps=50):
    """The lstm workload's data as float32 arrays (n, steps, 1) and (n, 1): window i starts at
    phase 0.37 * i, the same formula as bench/train_bench.cpp."""
    t = np.arange(steps + 1, dtype=np.float64)
    phases = 0.37 * np.arange(n, dtype=np.float64)[:, None]
    series = np.sin(0.3 * t[None, :] + phases).astype(np.float32)
    return series[:, :steps, None].copy(), series[:, steps:].copy()


def emit(record):
    print(json.dumps(record), flush=True)


def check_device(library, device, devices):
    """Exits with DEVICE_REFUSED, saying why, unless `device` is one of `devices`."""
    if device not in devices:
        print(f"{library}: --device {device} is not supported by this peer (it runs on: "
              f"{', '.join(devices)})", file=sys.stderr)
        sys.exit(DEVICE_REFUSED)


def train_main(library, version, set_threads, train, devices=("cpu",), device_figures=None):
    """One training run: `train(workload, epochs, limit, device)` trains on the first `limit`
    samples (None: all, the benchmark; a number: a quick check of the harness) on `device` (one
    of `devices`) and returns (samples, seconds, final_loss), after `set_threads(threads)` has
    run; prints {"library", "workload", "samples", "seconds", "samples_per_s",
    "peak_rss_bytes", "final_loss", "threads", "version", "device"}, plus what
    `device_figures(device)` returns off the CPU (such as peak_device_bytes)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=0, help="the first N samples only")
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    args = parser.parse_args()
    check_device(library, args.device, devices)
    set_threads(args.threads)
    samples, seconds, final_loss = train(args.workload, args.epochs, args.samples or None,
                                         args.device)
    record = {"library": library, "workload": args.workload, "samples": samples,
              "seconds": seconds, "samples_per_s": samples / seconds,
              "peak_rss_bytes": peak_rss_bytes(), "final_loss": float(final_loss),
              "threads": args.threads, "version": version(), "device": args.device}
    if args.device != "cpu" and device_figures:
        record.update(device_figures(args.device))
    emit(record)


def memory_main(library, version, set_threads, fit, clear, devices=("cpu",), gpu=None,
                predict_models=None, predict=None):
    """Memory given back, the runs of bench/memory_bench.cpp: (1) `fit(1024, x, y, 256)` one
    epoch of 784-1024-1024-10, then `clear(trial)` with the library's clearing idiom, RSS before,
    at peak and after; (2) --cycles cycles of fit 20 batches of 128 / clear, hidden width
    64 + 64 * (cycle % 16), RSS after each clear and its least-squares slope.

    `fit(width, x, y, batch)` returns a list holding every object the trial made (model,
    optimizer, ...) and nothing else does; `clear(trial)` empties that list and then runs the
    rest of the idiom, so that the list's owner keeps no reference alive.

    --device cuda (a peer that lists it in `devices` passes `gpu`, called only then, which
    returns an object with `used_bytes()`, the driver's total - free on its first GPU, and
    `to_device(x, y)`, the data copied there): the figures are the driver's used bytes instead of RSS (used_before,
    used_peak, used_after; used_first, used_last), the data is on the GPU before anything is
    measured, and one small fit and clear first warms up what stays for the process (context,
    library handles, kernels), as bench/memory_bench.cpp does; used_context is the first reading,
    just after the context was made.

    --test predict [--workload cnn|lstm] (CPU; `predict_models` and `predict` given):
    predict_run instead, in a process of its own, `predict_models[workload]` being the pair
    (model(), prepare(inputs)) it takes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--test", default="clear", choices=["clear", "predict"])
    parser.add_argument("--workload", default="cnn", choices=PREDICT_WORKLOADS)
    args = parser.parse_args()
    check_device(library, args.device, devices if args.test == "clear" else ("cpu",))
    set_threads(args.threads)
    if args.test == "predict":
        model, prepare = predict_models[args.workload]
        predict_run({"library": library, "threads": args.threads, "version": version(),
                     "device": args.device}, args.workload, model, prepare, predict)
        return
    images, labels = train_split()
    x, y = images.reshape(60000, 784), labels
    common = {"library": library, "threads": args.threads, "version": version(),
              "device": args.device}
    if args.device == "cpu":
        figure, used_bytes = "rss", rss_bytes
    else:
        device = gpu()
        figure, used_bytes = "used", device.used_bytes
        common["used_context"] = used_bytes()
        x, y = device.to_device(x, y)
        clear(fit(64, x[:20 * 128], y[:20 * 128], 128))  # the warm-up

    start = time.perf_counter()
    before = used_bytes()
    trial = fit(1024, x, y, 256)
    peak = used_bytes()
    clear_start = time.perf_counter()
    clear(trial)
    clear_seconds = time.perf_counter() - clear_start
    after = used_bytes()
    emit(dict(common, test="clear", **{f"{figure}_before": before, f"{figure}_peak": peak,
                                       f"{figure}_after": after},
              retained=after - before, clear_seconds=clear_seconds,
              seconds=time.perf_counter() - start))

    used = []
    x20, y20 = x[:20 * 128], y[:20 * 128]
    for c in range(args.cycles):
        trial = fit(64 + 64 * (c % 16), x20, y20, 128)
        clear(trial)
        used.append(used_bytes())
    slope = (float(np.polyfit(np.arange(len(used)), np.array(used, dtype=np.float64), 1)[0])
             if len(used) > 1 else 0.0)
    emit(dict(common, test="cycles", cycles=args.cycles,
              **{f"{figure}_first": used[0], f"{figure}_last": used[-1]},
              growth=used[-1] - used[0], slope_bytes_per_cycle=slope))


if __name__ == "__main__":
    sys.exit("protocol.py is imported by the peer scripts, not run")
