"""Training throughput of tabula against PyTorch, side by side in one run.

Runs every workload alternately in tabula (build-bench/train_bench) and PyTorch
(bench/peers/torch_train.py, Debian's python3-torch), each in a fresh process, A/B/A/B,
and prints a Markdown table (median samples/s, min-max, ratio, peak RSS) plus JSON lines.

    /usr/bin/python3 bench/run_train_bench.py --build build-bench --repetitions 3 --threads 2
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["mlp_small", "mlp_large", "cnn", "lstm"]


def run(command, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    tabula = [os.path.join(args.build, "train_bench")]
    torch = [sys.executable, os.path.join(HERE, "peers", "torch_train.py")]
    results = []
    for workload in args.workloads.split(","):
        for rep in range(args.repetitions):
            # Alternate which library goes first so that drift hits both alike.
            order = [("tabula", tabula), ("pytorch", torch)]
            if rep % 2:
                order.reverse()
            for name, command in order:
                r = run(command + ["--workload", workload, "--threads", str(args.threads)],
                        args.threads)
                r["repetition"] = rep
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")

    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; threads per library: {args.threads}; "
          f"repetitions: {args.repetitions}")
    versions = {r["library"]: r["version"] for r in results}
    print(f"Versions: tabula {versions.get('tabula')}, PyTorch {versions.get('pytorch')}")
    print()
    print("| workload | tabula samples/s (min-max) | PyTorch samples/s (min-max) | ratio | "
          "tabula peak RSS | PyTorch peak RSS |")
    print("|---|---|---|---|---|---|")
    for workload in args.workloads.split(","):
        row = {}
        for library in ("tabula", "pytorch"):
            runs = [r for r in results if r["workload"] == workload and r["library"] == library]
            speeds = [r["samples_per_s"] for r in runs]
            row[library] = (statistics.median(speeds), min(speeds), max(speeds),
                            max(r["peak_rss_bytes"] for r in runs))
        t, p = row["tabula"], row["pytorch"]
        print(f"| {workload} | {t[0]:,.0f} ({t[1]:,.0f}-{t[2]:,.0f}) | {p[0]:,.0f} "
              f"({p[1]:,.0f}-{p[2]:,.0f}) | {t[0] / p[0]:.2f}x | {t[3] / 2**20:,.0f} MiB | "
              f"{p[3] / 2**20:,.0f} MiB |")


if __name__ == "__main__":
    main()
