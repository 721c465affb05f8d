"""tabula against TensorFlow/Keras and PyTorch, side by side in one run: training throughput
(build-bench/train_bench, bench/peers/keras_train.py, bench/peers/torch_train.py), memory
given back (build-bench/memory_bench, bench/peers/keras_memory.py, bench/peers/torch_memory.py),
inference memory (the same programs with --test predict, on the CPU), and the allocator against
glibc and the kernel (build-bench/alloc_bench, in the same run).

Every run is a fresh process. For each workload the libraries take turns in a rotating order
(tabula/Keras/PyTorch, then Keras/PyTorch/tabula, then PyTorch/tabula/Keras, ...), so that drift
on the machine hits each alike. Prints Markdown tables ready for bench/RESULTS.md (median,
min-max, ratio to each peer, machine, versions, command), also written to --markdown, and
writes every run to --json. A peer whose library does not import (TensorFlow where pip could
not install bench/requirements.txt) is skipped, and the tables say so.

    build-bench/venv/bin/python bench/run_train_bench.py --build build-bench --repetitions 3 --threads 2
    ... --repetitions 1 --samples 2048 --cycles 3  (a quick check of the harness, not figures)

--device cuda (issue 7): tabula and PyTorch train on the first GPU (Keras is skipped: its peer is
CPU-only here), the memory figures are the driver's used bytes after a warm-up (see
bench/memory_bench.cpp), and the allocator table adds the pool over CudaResource against
cudaMalloc and cudaMallocAsync. --time-limit and --run-timeout keep a run on a lent machine
within its time: no run starts after the limit, and the tables say what is missing.
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["mlp_small", "mlp_large", "cnn", "lstm"]
LIBRARIES = ["tabula", "keras", "pytorch"]
TITLES = {"tabula": "tabula", "keras": "Keras/TF", "pytorch": "PyTorch"}
PRODUCTS = {"tabula": "tabula", "keras": "TensorFlow", "pytorch": "PyTorch"}  # whose version
MODULES = {"keras": "tensorflow", "pytorch": "torch"}  # what a peer needs to import
SUITES = ["train", "memory", "predict", "alloc"]
# What the predict suite's workloads predict (memory_bench --test predict --workload W).
PREDICT_WORKLOADS = ["cnn", "lstm"]
PREDICT_WHAT = {"cnn": "the cnn workload predicts the 10,000 Fashion-MNIST test images",
                "lstm": "the lstm workload, LSTM(64) over 50 steps, predicts its 20,000 sine "
                        "windows"}
# The foundation's allocator targets: a pooled pair of mixed sizes under 50 ns, and blocks of
# 1 MiB and more at least 10x faster than mmap/munmap.
ALLOC_PAIR_TARGET_NS = 50.0
ALLOC_LARGE_SPEEDUP_TARGET = 10.0
# Issue 6's targets: tabula's samples/s over each peer's, and bytes left after clearing.
SPEEDUP_TARGETS = {"mlp_small": 5.0}
SPEEDUP_TARGET_OTHERWISE = 1.0
MEMORY_TARGET_BYTES = 2 * 2**20
MIB = 2**20
# Issue 7's targets on a GPU: at least PyTorch's samples/s on every workload, and at most 4 MiB
# of the driver's memory kept after clearing (beyond the CUDA context) or grown over the cycles.
GPU_SPEEDUP_TARGET = 1.0
GPU_MEMORY_TARGET_BYTES = 4 * 2**20
DEVICES = ["cpu", "cuda"]


class RunFailed(Exception):
    pass


def commands(args):
    """(suite, library) -> the command line of one run, before its own arguments."""
    peers = os.path.join(HERE, "peers")
    return {
        ("train", "tabula"): [os.path.join(args.build, "train_bench")],
        ("train", "keras"): [args.python, os.path.join(peers, "keras_train.py")],
        ("train", "pytorch"): [args.python, os.path.join(peers, "torch_train.py")],
        ("memory", "tabula"): [os.path.join(args.build, "memory_bench")],
        ("memory", "keras"): [args.python, os.path.join(peers, "keras_memory.py")],
        ("memory", "pytorch"): [args.python, os.path.join(peers, "torch_memory.py")],
        ("predict", "tabula"): [os.path.join(args.build, "memory_bench"), "--test", "predict"],
        ("predict", "keras"): [args.python, os.path.join(peers, "keras_memory.py"), "--test",
                               "predict"],
        ("predict", "pytorch"): [args.python, os.path.join(peers, "torch_memory.py"), "--test",
                                 "predict"],
    }


def run(command, threads, timeout=None):
    """The JSON lines a run prints on stdout."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               TF_CPP_MIN_LOG_LEVEL="2")
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RunFailed(f"{shlex.join(command)} timed out after {timeout:.0f} s") from e
    if done.returncode != 0:
        raise RunFailed(f"{shlex.join(command)} exited {done.returncode}:\n"
                        + "\n".join(done.stderr.strip().splitlines()[-15:]))
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_alloc(args, timeout=None):
    """alloc_bench's medians (Google Benchmark's JSON), one record per benchmark."""
    command = [os.path.join(args.build, "alloc_bench"), "--benchmark_format=json",
               f"--benchmark_repetitions={args.alloc_repetitions}",
               "--benchmark_report_aggregates_only=true"]
    if args.alloc_filter:
        command.append(f"--benchmark_filter={args.alloc_filter}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RunFailed(f"{shlex.join(command)} timed out after {timeout:.0f} s") from e
    if done.returncode != 0:
        raise RunFailed(f"{shlex.join(command)} exited {done.returncode}:\n"
                        + "\n".join(done.stderr.strip().splitlines()[-15:]))
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    benchmarks = json.loads(done.stdout)["benchmarks"]
    # One repetition has no aggregates: its single run is the median.
    medians = [b for b in benchmarks if b.get("aggregate_name") == "median"] or [
        b for b in benchmarks if b.get("run_type") == "iteration"]
    return [{"suite": "alloc", "library": "tabula", "benchmark": b["run_name"],
             "median_ns": b["real_time"] * scale[b["time_unit"]],
             "repetitions": args.alloc_repetitions, "command": shlex.join(command)}
            for b in medians]


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        line = next((l for l in f if l.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def choose_blas_core(args, probe):
    """Sets OPENBLAS_CORETYPE (inherited by every run) and says why, for the report."""
    if args.blas_core == "none":
        return "OpenBLAS kernels: its own choice"
    if args.blas_core != "auto":
        os.environ["OPENBLAS_CORETYPE"] = args.blas_core
        return f"OpenBLAS kernels: {args.blas_core} (--blas-core)"
    if "OPENBLAS_CORETYPE" in os.environ:
        return f"OpenBLAS kernels: {os.environ['OPENBLAS_CORETYPE']} (OPENBLAS_CORETYPE)"
    try:
        chosen = run(probe, args.threads)[0].get("blas_core", "?")
    except RunFailed as e:  # a build without OpenBLAS (-DTABULA_BENCH_WITH_OPENBLAS=OFF)
        print(f"run_train_bench: no sgemm peak: {e}", file=sys.stderr)
        return "OpenBLAS kernels: unknown (train_bench --sgemm-peak failed: no sgemm peak)"
    flags = cpu_flags()
    better = ("SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None)
    if chosen == "Prescott" and better:
        os.environ["OPENBLAS_CORETYPE"] = better
        return (f"OpenBLAS kernels: {better} for tabula and PyTorch alike (OPENBLAS_CORETYPE; "
                f"OpenBLAS's own detection fell back to {chosen} on this CPU)")
    return f"OpenBLAS kernels: {chosen} (OpenBLAS's own choice)"


def importable(python, module):
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", probe]).returncode == 0


def probe_python(python):
    code = "import sys, numpy; print(sys.version.split()[0], numpy.__version__)"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return done.stdout.split() if done.returncode == 0 else ["?", "?"]


def gpu_name(python):
    """The first GPU's name and driver, from nvidia-smi, else from PyTorch in `python`."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30)
        if done.returncode == 0 and done.stdout.strip():
            name, _, driver = done.stdout.strip().splitlines()[0].partition(",")
            return f"{name.strip()} (driver {driver.strip()})"
    except (OSError, subprocess.TimeoutExpired):
        pass
    code = "import torch; print(torch.cuda.get_device_name(0))"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "GPU ?"
    return done.stdout.strip() if done.returncode == 0 else "GPU ? (no nvidia-smi, no torch.cuda)"


def machine():
    cpu, memory, system = platform.processor(), "?", platform.system()
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    with open("/proc/meminfo") as f:
        kib = next((int(l.split()[1]) for l in f if l.startswith("MemTotal")), 0)
        memory = f"{kib / 2**20:.0f} GiB"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            system = next((l.split("=", 1)[1].strip().strip('"') for l in f
                           if l.startswith("PRETTY_NAME=")), system)
    return f"{cpu}, {os.cpu_count()} cores, {memory}, {system}, Linux {platform.release()}"


def rotation(libraries, repetition):
    k = repetition % len(libraries)
    return libraries[k:] + libraries[:k]


def number(digits):
    """A formatter with that many decimals, and no "-0"."""
    return lambda v: f"{round(v, digits) + 0.0:,.{digits}f}"


def spread(values, show, unit=""):
    """median (min-max) of values, each through show, then unit."""
    if len(values) == 1:
        return show(values[0]) + unit
    low, high = show(min(values)), show(max(values))
    between = " to " if low.startswith("-") else "-"
    return f"{show(statistics.median(values))} ({low}{between}{high}){unit}"


def byte_scale(unit):
    """(divisor, suffix, decimals) in MiB or KiB, whichever suits unit's size."""
    return (MIB, " MiB", 2) if abs(unit) >= MIB else (1024, " KiB", 0)


def per_cycle(unit):
    divisor, suffix, digits = byte_scale(unit)
    return divisor, suffix + "/cycle", digits


def verdict(ok):
    return "met" if ok else "**missed**"


def train_table(results, libraries, workloads, device="cpu"):
    peers = [l for l in libraries if l != "tabula"]
    on_gpu = device != "cpu"
    head = (["workload"] + [f"{TITLES[l]} samples/s" for l in libraries]
            + [f"tabula / {TITLES[p]}" for p in peers] + ["target"]
            + ([f"peak GPU memory {TITLES[l]}" for l in libraries] if on_gpu else [])
            + [f"peak RSS {TITLES[l]}" for l in libraries]
            + ["tabula GFLOP/s" if on_gpu else "tabula GFLOP/s (of sgemm peak)"])
    peak = max((r["sgemm_gflops"] for r in results if r["suite"] == "sgemm"), default=None)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in workloads:
        speeds, peaks, device_peaks = {}, {}, {}
        for library in libraries:
            runs = [r for r in results if r["suite"] == "train" and r["workload"] == workload
                    and r["library"] == library and "error" not in r]
            speeds[library] = [r["samples_per_s"] for r in runs]
            peaks[library] = [r["peak_rss_bytes"] for r in runs]
            device_peaks[library] = [r["peak_device_bytes"] for r in runs
                                     if "peak_device_bytes" in r]
        cells = [workload]
        cells += [spread(speeds[l], number(0)) if speeds[l] else missing(results, "train",
                                                                         workload, l)
                  for l in libraries]
        target = (GPU_SPEEDUP_TARGET if on_gpu
                  else SPEEDUP_TARGETS.get(workload, SPEEDUP_TARGET_OTHERWISE))
        ratios, verdicts = [], []
        for p in peers:
            if speeds["tabula"] and speeds[p]:
                ratio = statistics.median(speeds["tabula"]) / statistics.median(speeds[p])
                ratios.append(f"{ratio:.2f}x")
                verdicts.append(f"{verdict(ratio >= target)} ({TITLES[p]})")
            else:
                ratios.append("-")
        cells += ratios + [f">= {target:g}x: " + ", ".join(verdicts) if verdicts else "-"]
        if on_gpu:
            cells += [f"{max(device_peaks[l]) / MIB:,.0f} MiB" if device_peaks[l] else "-"
                      for l in libraries]
        cells += [f"{max(peaks[l]) / MIB:,.0f} MiB" if peaks[l] else "-" for l in libraries]
        flops = [r.get("train_flops_per_sample") for r in results if r["suite"] == "train"
                 and r["workload"] == workload and r["library"] == "tabula" and "error" not in r]
        if speeds["tabula"] and flops and flops[0]:
            # Training flops as the kernels compute them (train_bench's train_flops).
            gflops = statistics.median(speeds["tabula"]) * flops[0] / 1e9
            cells.append(f"{gflops:.1f} ({gflops / peak:.0%})" if peak else f"{gflops:.1f}")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    if peak:
        lines.append("")
        lines.append(f"sgemm peak: {peak:.1f} GFLOP/s (OpenBLAS, 2048x2048, best of 5, the better "
                     "of OpenBLAS's own threads and one OpenBLAS thread per core on a block of "
                     "rows; `train_bench --sgemm-peak`), the machine's practical limit for these "
                     "workloads; a workload's training GFLOP/s counts the flops its kernels "
                     "compute (2 per multiply-add forward, 2 for weight gradients, 2 for input "
                     "gradients except in the first layer with weights).")
    if on_gpu:
        lines.append("")
        lines.append("Peak GPU memory: tabula's peak over every session on the device "
                     "(tb::memory_info), PyTorch's torch.cuda.max_memory_allocated; both count "
                     "the data's copy on the GPU. Peak RSS includes PyTorch's CUDA libraries.")
        tf32 = {(r.get("tf32_matmul"), r.get("tf32_cudnn")) for r in results
                if r["suite"] == "train" and r["library"] == "pytorch" and "tf32_matmul" in r}
        for matmul, cudnn in sorted(tf32, key=str):
            lines.append(f"PyTorch ran with its defaults: TF32 matmul {matmul}, "
                         f"TF32 cuDNN convolutions {cudnn}.")
    return lines


def missing(results, suite, workload, library):
    """The cell of a library with no figure: failed, or not run (--time-limit)."""
    ran = any(r["suite"] == suite and r.get("workload") == workload and r["library"] == library
              for r in results)
    return "failed" if ran else "not run"


def memory_table(results, libraries, cycles, device="cpu"):
    peers = [l for l in libraries if l != "tabula"]
    on_gpu = device != "cpu"
    figure = "used" if on_gpu else "rss"
    what = "driver used" if on_gpu else "RSS"
    target_bytes = GPU_MEMORY_TARGET_BYTES if on_gpu else MEMORY_TARGET_BYTES

    def values(library, test, key):
        return [r[key] for r in results if r["suite"] == "memory" and r["library"] == library
                and r.get("test") == test]

    head = ([""] + [TITLES[l] for l in libraries] + [f"{TITLES[p]} / tabula" for p in peers]
            + ["target"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(title, test, key, scale, target=None, ratio=True):
        """scale(median) gives (divisor, suffix, decimals) for that library's figures."""
        medians = {l: statistics.median(v) for l in libraries if (v := values(l, test, key))}
        cells = [title]
        for library in libraries:
            if library not in medians:
                cells.append("failed")
                continue
            divisor, suffix, digits = scale(medians[library])
            cells.append(spread([v / divisor for v in values(library, test, key)],
                                number(digits), suffix))
        for p in peers:
            ok = ratio and "tabula" in medians and p in medians and medians["tabula"] > 0
            cells.append(f"{medians[p] / medians['tabula']:.1f}x" if ok else "-")
        ok = "tabula" in medians and target is not None
        cells.append(f"<= {target / MIB:g} MiB: {verdict(medians['tabula'] <= target)}"
                     if ok else "")
        lines.append("| " + " | ".join(cells) + " |")

    if on_gpu:
        cells = ["driver used at start (context made) / after warm-up"]
        for library in libraries:
            parts = [values(library, "clear", k) for k in ("used_context", "used_before")]
            cells.append(" / ".join(f"{statistics.median(p) / MIB:,.1f}" for p in parts) + " MiB"
                         if all(parts) else "failed")
        lines.append("| " + " | ".join(cells + ["-"] * len(peers) + [""]) + " |")
    cells = [f"{what} before / peak / after"]
    for library in libraries:
        parts = [values(library, "clear", f"{figure}_{k}") for k in ("before", "peak", "after")]
        cells.append(" / ".join(f"{statistics.median(p) / MIB:,.1f}" for p in parts) + " MiB"
                     if all(parts) else "failed")
    lines.append("| " + " | ".join(cells + ["-"] * len(peers) + [""]) + " |")
    row("retained after clearing (after - before)", "clear", "retained", byte_scale,
        target_bytes)
    row("time of the clearing idiom", "clear", "clear_seconds", lambda _: (1e-3, " ms", 1))
    # No ratios of growth: near zero, and either side may shrink.
    row(f"{what} growth over {cycles} cycles", "cycles", "growth", byte_scale, target_bytes,
        ratio=False)
    row(f"slope of {what} over the cycles", "cycles", "slope_bytes_per_cycle",
        per_cycle, ratio=False)
    if on_gpu:
        lines += ["", "Driver used: cudaMemGetInfo's total - free (torch.cuda.mem_get_info), "
                  "every process on the GPU. \"before\" is read after a warm-up fit and clear "
                  "(CUDA context, cuBLAS, kernels loaded), so retained is what the clearing "
                  "idiom leaves beyond the context. Clearing idioms: tabula clear_session(); "
                  "PyTorch del model, optimizer; gc.collect(); torch.cuda.empty_cache()."]
    return lines


def predict_table(results, libraries, workload):
    """Inference memory: the peak RSS over one predict call of `workload`, above the RSS before
    it."""
    peers = [l for l in libraries if l != "tabula"]

    def values(library, key):
        runs = [r for r in results if r["suite"] == "predict" and r["library"] == library
                and r.get("workload") == workload and "rss_before" in r]
        if key == "after_increase":
            return [r["rss_after"] - r["rss_before"] for r in runs]
        if key == "released_increase":
            return [r["rss_released"] - r["rss_before"] for r in runs if "rss_released" in r]
        return [r[key] for r in runs if key in r]

    head = [""] + [TITLES[l] for l in libraries] + [f"{TITLES[p]} / tabula" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, key, scale, ratio in (
            ("RSS peak during predict, above RSS before it", "peak_increase", byte_scale, True),
            ("RSS after predict, above RSS before it", "after_increase", byte_scale, False),
            ("the same after tabula's release_cached_memory()", "released_increase", byte_scale,
             False),
            ("time of predict", "seconds", lambda _: (1, " s", 2), True)):
        medians = {l: statistics.median(v) for l in libraries if (v := values(l, key))}
        cells = [title]
        for library in libraries:
            if library not in medians:  # a figure the library's runs do not have, or no runs
                cells.append("-" if values(library, "rss_before") else "failed")
                continue
            divisor, suffix, digits = scale(medians[library])
            cells.append(spread([v / divisor for v in values(library, key)], number(digits),
                                suffix))
        for p in peers:
            ok = ratio and "tabula" in medians and p in medians and medians["tabula"] > 0
            cells.append(f"{medians[p] / medians['tabula']:.2f}x" if ok else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if accounted := values("tabula", "accounted_peak"):
        lines += ["", "tabula's own figure for the same call: the session's peak, "
                  f"{statistics.median(accounted) / MIB:,.2f} MiB (weights included). "
                  "VmHWM is reset (/proc/self/clear_refs) just before the call. After it "
                  "tabula's session keeps the freed batch buffers in its pool for the next call "
                  "(reserved, in memory_info) until release_cached_memory() or clearing."]
    return lines


def alloc_table(results):
    medians = {r["benchmark"]: r["median_ns"] for r in results if r["suite"] == "alloc"}
    if not medians:
        return ["alloc_bench failed; its error is in the JSON."]

    def ns(name):
        value = medians.get(name)
        return "-" if value is None else (f"{value:,.1f} ns" if value < 1000 else f"{value:,.0f} ns")

    lines = ["| allocate+free pair | tabula pool | glibc malloc/free | mmap/munmap | pool vs mmap "
             "| target |", "|---|---|---|---|---|---|"]
    sizes = [("mixed sizes 64 B-64 KiB", "65536", "BM_PoolPair", "BM_MallocPair", "BM_MmapPair"),
             ("1 MiB", "1048576", "BM_PoolLargePair", "BM_MallocLargePair", "BM_MmapLargePair"),
             ("16 MiB", "16777216", "BM_PoolLargePair", "BM_MallocLargePair", "BM_MmapLargePair")]
    for title, arg, pool, malloc, mmap in sizes:
        p, m = medians.get(f"{pool}/{arg}"), medians.get(f"{mmap}/{arg}")
        speedup = f"{m / p:,.0f}x" if p and m else "-"
        if arg == "65536":
            target = (f"< {ALLOC_PAIR_TARGET_NS:g} ns: {verdict(p < ALLOC_PAIR_TARGET_NS)}"
                      if p else "")
        else:
            target = (f">= {ALLOC_LARGE_SPEEDUP_TARGET:g}x mmap: "
                      f"{verdict(m / p >= ALLOC_LARGE_SPEEDUP_TARGET)}" if p and m else "")
        lines.append(f"| {title} | {ns(f'{pool}/{arg}')} | {ns(f'{malloc}/{arg}')} | "
                     f"{ns(f'{mmap}/{arg}')} | {speedup} | {target} |")
    clear = medians.get("BM_SessionClear/10000")
    if clear is not None:
        lines += ["", f"`Session::clear()` of a session holding 10,000 tensors: {clear / 1e6:.3f} ms."]
    if any(name.startswith("BM_Cuda") for name in medians):
        lines += ["", "On the GPU (cuda:0):", "",
                  "| allocate+free pair | tabula pool over CudaResource | cudaMalloc/cudaFree "
                  "| cudaMallocAsync/cudaFreeAsync | pool vs cudaMalloc | pool vs cudaMallocAsync |",
                  "|---|---|---|---|---|---|"]
        for title, arg, pool, malloc, stream in [
                ("mixed sizes 64 B-64 KiB", "65536", "BM_CudaPoolPair", "BM_CudaMallocPair",
                 "BM_CudaMallocAsyncPair"),
                ("1 MiB", "1048576", "BM_CudaPoolLargePair", "BM_CudaMallocLargePair",
                 "BM_CudaMallocAsyncLargePair"),
                ("16 MiB", "16777216", "BM_CudaPoolLargePair", "BM_CudaMallocLargePair",
                 "BM_CudaMallocAsyncLargePair")]:
            p, m, a = (medians.get(f"{n}/{arg}") for n in (pool, malloc, stream))
            lines.append(f"| {title} | {ns(f'{pool}/{arg}')} | {ns(f'{malloc}/{arg}')} | "
                         f"{ns(f'{stream}/{arg}')} | {f'{m / p:,.1f}x' if p and m else '-'} | "
                         f"{f'{a / p:,.1f}x' if p and a else '-'} |")
        lines += ["", "cudaMallocAsync: the device's default memory pool on one non-blocking "
                  "stream, never synchronised inside the loop (so it reuses what was freed)."]
    return lines


def describe(args, results, libraries, seconds):
    """What the tables stand on: machine, versions, command, for the Markdown and the JSON."""
    versions = {}
    for r in results:
        versions.setdefault(r["library"], r.get("version"))
    python, numpy = probe_python(args.python)
    gpu = gpu_name(args.python) if args.device == "cuda" else None
    return {"machine": machine() + (f"; GPU: {gpu}" if gpu else ""), "device": args.device,
            "threads": args.threads, "repetitions": args.repetitions,
            "versions": versions, "python": python, "numpy": numpy, "seconds": seconds,
            "command": shlex.join([short(sys.executable), short(sys.argv[0])] + sys.argv[1:])}


def short(path):
    """path relative to here when it is below here."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def report(args, results, libraries, skipped, about):
    lines = []
    if args.samples or args.cycles < 100:
        lines += [f"**Quick check (--samples {args.samples}, --cycles {args.cycles}): "
                  "not figures to publish.**", ""]
    versions = ", ".join(f"{PRODUCTS[l]} {about['versions'].get(l, '?')}" for l in libraries)
    lines += [f"Machine: {about['machine']}. Threads per library: {args.threads}.",
              f"Versions: {versions}; peers on Python {about['python']}, NumPy {about['numpy']}.",
              f"Each figure: median (min-max) of {args.repetitions} run(s) per library, each a "
              "fresh process, the libraries in rotating order; the whole run took "
              f"{about['seconds'] / 60:.1f} min.",
              f"Command: `{about['command']}`", args.blas_core_note + "."]
    lines += [f"Skipped: {TITLES[l]}: {why}." for l, why in skipped.items()]
    if args.not_started:
        lines += [f"**Not run: {args.not_started} run(s), the --time-limit of {args.time_limit:g} s "
                  "was reached.**"]
    where = " on the GPU (cuda:0)" if args.device == "cuda" else ""
    if "train" in args.suites:
        lines += ["", f"Training throughput{where}, one epoch ({args.samples or 'all'} samples), "
                  "Adam(1e-3):", ""]
        lines += train_table(results, libraries, args.workloads, args.device)
    if "memory" in args.suites:
        lines += ["", f"Memory given back{where} (784-1024-1024-10 one epoch, then "
                  f"{args.cycles} build / fit 20 batches / clear cycles):", ""]
        lines += memory_table(results, libraries, args.cycles, args.device)
    if "predict" in args.suites and args.device == "cpu":
        for workload in PREDICT_WORKLOADS:
            lines += ["", f"Inference memory ({PREDICT_WHAT[workload]}, untrained, in batches of "
                      "1,000, in a process of its own):", ""]
            lines += predict_table(results, libraries, workload)
    if "alloc" in args.suites:
        lines += ["", f"Allocator (`alloc_bench`, median of {args.alloc_repetitions} repetitions; "
                  "tabula only, against glibc and the kernel in the same program):", ""]
        lines += alloc_table(results)
    failures = [r for r in results if "error" in r]
    if failures:
        lines += ["", f"{len(failures)} run(s) failed; their errors are in the JSON."]
    return "\n".join(lines) + "\n"


def names(value):
    return [n for part in value for n in part.split(",") if n]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build-bench", help="tabula's Release build folder")
    parser.add_argument("--python", default=sys.executable, help="the peers' interpreter")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--suites", nargs="+", default=SUITES,
                        help="train, memory, predict (the CPU only), alloc")
    parser.add_argument("--alloc-repetitions", type=int, default=5,
                        help="alloc: Google Benchmark repetitions (the table gives medians)")
    parser.add_argument("--alloc-filter", default=None,
                        help="alloc: only the benchmarks matching this regex (--benchmark_filter)")
    parser.add_argument("--libraries", nargs="+", default=LIBRARIES, help="tabula, keras, pytorch")
    parser.add_argument("--workloads", nargs="+", default=WORKLOADS)
    parser.add_argument("--samples", type=int, default=0,
                        help="train on the first N samples only (a quick check)")
    parser.add_argument("--cycles", type=int, default=100, help="memory: build/fit/clear cycles")
    parser.add_argument("--json", default=None, help="write every run here")
    parser.add_argument("--markdown", default=None, help="write the tables here too")
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="where tabula and PyTorch train and measure memory (cuda: the "
                             "first GPU; Keras is skipped)")
    parser.add_argument("--run-timeout", type=float, default=None,
                        help="seconds one run may take before it counts as failed")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds for the whole harness: no run starts after them (the "
                             "repetitions then go round every workload in turn, so that a cut "
                             "run still has each workload)")
    parser.add_argument("--blas-core", default="auto",
                        help="OPENBLAS_CORETYPE for every library using OpenBLAS (tabula, "
                             "PyTorch): auto (correct a fallback to Prescott on a CPU with "
                             "AVX-512 or AVX2), none, or a core name such as SkylakeX")
    args = parser.parse_args()
    args.suites, args.workloads = names(args.suites), names(args.workloads)
    libraries, skipped = [], {}
    for library in names(args.libraries):
        module = MODULES.get(library)
        if library == "keras" and args.device == "cuda":
            skipped[library] = ("its peer is CPU-only here (bench/peers/keras_train.py refuses "
                                "--device cuda: the venv's TensorFlow is the CPU build)")
            print(f"run_train_bench: skipping {TITLES[library]}: {skipped[library]}",
                  file=sys.stderr)
        elif module and not importable(args.python, module):
            skipped[library] = (f"`import {module}` fails in {args.python} (did `make bench` "
                                "fail to pip-install bench/requirements.txt?)")
            print(f"run_train_bench: skipping {TITLES[library]}: {skipped[library]}",
                  file=sys.stderr)
        else:
            libraries.append(library)
    if "tabula" not in libraries:
        sys.exit("run_train_bench: tabula must be one of --libraries")
    commands_of = commands(args)
    device = ["--device", args.device] if args.device != "cpu" else []
    jobs = [("train", w, ["--workload", w] + (["--samples", str(args.samples)]
                                              if args.samples else []) + device)
            for w in args.workloads if "train" in args.suites]
    if "memory" in args.suites:
        jobs.append(("memory", None, ["--cycles", str(args.cycles)] + device))
    if "predict" in args.suites and args.device == "cpu":
        jobs += [("predict", w, ["--workload", w]) for w in PREDICT_WORKLOADS]
    order = [(job, repetition) for job in jobs for repetition in range(args.repetitions)]
    if args.time_limit is not None:
        order.sort(key=lambda item: item[1])  # repetition by repetition (a stable sort)

    start = time.monotonic()
    deadline = None if args.time_limit is None else start + args.time_limit

    def timeout():
        """The run timeout left: --run-timeout, cut to the time before --time-limit."""
        left = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        return min((t for t in (args.run_timeout, left) if t is not None), default=None)

    def out_of_time():
        return deadline is not None and time.monotonic() >= deadline

    results = []
    args.not_started = 0
    probe = commands_of[("train", "tabula")] + ["--sgemm-peak", "--threads", str(args.threads)]
    if args.device == "cuda":
        # The sgemm peak is the CPU's limit; a GPU build carried to a lent machine has no
        # OpenBLAS (scripts/gpu-bundle).
        args.blas_core_note = "OpenBLAS: not used (--device cuda; no CPU sgemm peak)"
    else:
        args.blas_core_note = choose_blas_core(args, probe)
        if "train" in args.suites and "failed" not in args.blas_core_note:
            results += [dict(r, suite="sgemm") for r in run(probe, args.threads)]
    for (suite, workload, extra), repetition in order:
        for position, library in enumerate(rotation(libraries, repetition)):
            if out_of_time():
                args.not_started += 1
                continue
            tag = {"suite": suite, "workload": workload, "repetition": repetition,
                   "position": position}
            command = commands_of[(suite, library)] + extra + ["--threads", str(args.threads)]
            try:
                records = [dict(r, **tag) for r in run(command, args.threads, timeout())]
            except RunFailed as e:
                print(f"run_train_bench: {e}", file=sys.stderr)
                records = [dict(tag, library=library, error=str(e))]
            for r in records:
                print(json.dumps(r), file=sys.stderr, flush=True)
            results += records
    if "alloc" in args.suites and out_of_time():
        args.not_started += 1
    elif "alloc" in args.suites:
        # Last, after the peers' processes are gone: nothing else runs beside it.
        try:
            records = run_alloc(args, timeout())
        except RunFailed as e:
            print(f"run_train_bench: {e}", file=sys.stderr)
            records = [dict(suite="alloc", library="tabula", error=str(e))]
        for r in records:
            print(json.dumps(r), file=sys.stderr, flush=True)
        results += records
    about = describe(args, results, libraries, time.monotonic() - start)
    markdown = report(args, results, libraries, skipped, about)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(about, skipped=skipped, runs=results, markdown=markdown), f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
    print(markdown, end="")
    sys.exit(1 if any("error" in r for r in results) else 0)


if __name__ == "__main__":
    main()
