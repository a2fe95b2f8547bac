#!/usr/bin/env python3
"""Stage-1 step time of `agcl train` at 1 and 2 processes, and rank 0's collectives per step.

A small phantom cohort (made here with `agcl phantom`), the default (CPU-sized) model, stage 1
only (stage 0 skipped, the training patches' attention from the label maps, stage 2 skipped), the
same global batch at every process count. Runs alternate between the process counts (`--rounds`
rounds), so that the machine's drift hits both alike. Per run: the median step time over the
steps after the first `--warmup` (from the log's patches_per_s at --log-every 1: step time =
the global batch's views / patches_per_s), and the median all-reduce / all-gather bytes and
seconds per step of rank 0 (log.jsonl's allreduce_* / allgather_* fields).

Usage: /usr/bin/python3 benchmarks/distributed_bench.py --agcl build/apps/agcl/agcl --work /tmp/dbench
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agcl", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32, help="global batch (patches; two views each)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=3, default=[96, 96, 48])
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    cohort = os.path.join(args.work, "cohort")
    if not os.path.exists(os.path.join(cohort, "manifest.csv")):
        run([args.agcl, "phantom", "--subjects", "4", "--modality", "both", "--size", *map(str, args.size),
             "--seed", "3", "--split", "1:0:0", "--out", cohort])
    rows = []
    for round_ in range(args.rounds):
        for procs in args.procs:
            out = os.path.join(args.work, f"run-{procs}-{round_}")
            shutil.rmtree(out, ignore_errors=True)
            command = [args.agcl, "train", "--manifest", os.path.join(cohort, "manifest.csv"), "--out", out,
                       "--coarse-steps", "0", "--decoder-steps", "0", "--pretrain-steps", str(args.steps),
                       "--pretrain-batch", str(args.batch), "--attention", "truth", "--log-every", "1", "--quiet"]
            if procs > 1:
                command += ["--nproc", str(procs)]
            run(command)
            steps = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
            steps = [s for s in steps if s.get("stage") == 1 and "patches_per_s" in s and s["step"] > args.warmup]
            step_s = [2 * args.batch / s["patches_per_s"] for s in steps]
            row = {"processes": procs, "round": round_, "steps_timed": len(step_s),
                   "median_step_s": statistics.median(step_s)}
            for key in ("allreduce_bytes_per_step", "allreduce_s_per_step", "allgather_bytes_per_step",
                        "allgather_s_per_step"):
                values = [s[key] for s in steps if key in s]
                row[key] = statistics.median(values) if values else 0.0
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = statistics.median(r["median_step_s"] for r in rows if r["processes"] == min(args.procs))
    for procs in args.procs:
        mine = [r for r in rows if r["processes"] == procs]
        step = statistics.median(r["median_step_s"] for r in mine)
        print(f"{procs} process(es): median step {step:.3f} s ({step / base:.2f} x the {min(args.procs)}-process "
              f"time); rank 0 per step: all-reduce {statistics.median(r['allreduce_bytes_per_step'] for r in mine) / 1e6:.2f}"
              f" MB in {statistics.median(r['allreduce_s_per_step'] for r in mine) * 1e3:.1f} ms, all-gather "
              f"{statistics.median(r['allgather_bytes_per_step'] for r in mine) / 1e3:.1f} kB in "
              f"{statistics.median(r['allgather_s_per_step'] for r in mine) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
