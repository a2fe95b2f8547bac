#!/usr/bin/env python3
"""Kill test (issue 14): agcl train and agcl segment killed with SIGKILL, then resumed.

train: an uninterrupted reference run, then a run killed at >= 20 moments drawn by a seeded,
printed random generator (a (stage, step) reached in the log plus a delay, spread over the three
stages) and at each point of a checkpoint write (AGCL_FAULT_INJECTION=<point>:1: written, flushed,
before-rename, renamed), resumed with --resume after each kill. After every kill the checkpoint,
when there is one, must load (agcl info); at the end the model's tensors must be bit for bit the
reference's and the log must hold the reference's steps and losses.

segment: a cohort segmented with kills at random moments; after each kill every output image
present must equal the uninterrupted run's file for that volume, and a re-run with --skip-existing
finishes the rest.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

POINTS = ["written", "flushed", "before-rename", "renamed"]


def log(*parts):
    print(*parts, flush=True)


def data_section(path):
    """(tensor names, bytes of every tensor) of a model file, without the header's provenance."""
    data = open(path, "rb").read()
    if data[:8] != b"AGCLMDL\0":
        raise SystemExit(f"FAIL: {path} is not a model file")
    header_size = int.from_bytes(data[16:24], "little")
    header = json.loads(data[24:24 + header_size])
    start = (24 + header_size + 63) // 64 * 64
    return [t["name"] for t in header["tensors"]], data[start:]


def log_records(path):
    """{(stage, step): loss} of the log's step lines; every complete line must be JSON."""
    records = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                continue  # a line being written when the process died: the resume trims it
            entry = json.loads(line)
            if "loss" in entry:
                records[(entry["stage"], entry["step"])] = entry["loss"]
    return records


def last_position(path):
    """(stage, step) of the log's last complete step line, or (-1, -1)."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")[:-1]
    except FileNotFoundError:
        return (-1, -1)
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "stage" in entry and "step" in entry:
            return (entry["stage"], entry["step"])
    return (-1, -1)


def check_checkpoint(agcl, folder, what):
    checkpoint = os.path.join(folder, "checkpoint.agcl")
    if not os.path.exists(checkpoint):
        return "no checkpoint yet"
    info = subprocess.run([agcl, "info", checkpoint], capture_output=True, text=True)
    if info.returncode != 0:
        raise SystemExit(f"FAIL after {what}: the checkpoint does not load: {info.stderr.strip()}")
    data = open(checkpoint, "rb").read()
    config = json.loads(data[24:24 + int.from_bytes(data[16:24], "little")])["config"]["trainer"]
    return f"checkpoint at stage {config['stage']} step {config['step']}"


def train(args):
    rng = random.Random(args.seed)
    log(f"kill test (train): seed {args.seed}, {args.kills} random kills + {len(POINTS)} at checkpoint-write points")
    steps = args.steps
    common = [args.agcl, "--threads", "2", "train", "--manifest", args.manifest, "--config", args.config,
              "--coarse-steps", str(steps[0]), "--pretrain-steps", str(steps[1]), "--decoder-steps", str(steps[2]),
              "--pretrain-batch", "8", "--decoder-batch", "8", "--patches-per-organ", "4",
              "--checkpoint-every", str(args.checkpoint_every), "--log-every", "1", "--validate-every", "10",
              "--quiet"]
    whole = os.path.join(args.work, "whole")
    killed = os.path.join(args.work, "killed")
    subprocess.run(["rm", "-rf", whole, killed], check=True)
    start = time.time()
    subprocess.run(common + ["--out", whole], check=True, stdout=subprocess.DEVNULL)
    log(f"uninterrupted run: {time.time() - start:.1f} s")

    # Random moments, sorted so that the run moves on: a (stage, step) that the restarted process
    # must reach (beyond what the killed one had logged), then a delay; one in five instead at a
    # delay after the start (reading data, trimming the log, writing settings.json).
    # A step of stage 0 takes ~0.6 s here, one of stages 1 and 2 ~0.02 s, the start ~0.9 s.
    step_time = [0.6, 0.03, 0.03]
    targets = []
    for _ in range(args.kills):
        stage = rng.randrange(3)
        targets.append((stage, rng.randint(1, steps[stage]), rng.uniform(0.0, step_time[stage]), rng.random() < 0.2))
    targets.sort()
    for stage in range(3):
        if not any(t[0] == stage and not t[3] for t in targets):
            raise SystemExit(f"FAIL: the seed gives no kill in stage {stage}; choose another seed")
    # The deterministic kills at the write points, between the random ones.
    events = [("random", t) for t in targets]
    for i, point in enumerate(POINTS):
        events.insert((i + 1) * len(events) // (len(POINTS) + 1), ("point", point))
    stderr_path = os.path.join(args.work, "stderr.txt")
    kills = 0
    for kind, what in events:
        env = dict(os.environ)
        if kind == "point":
            env["AGCL_FAULT_INJECTION"] = f"{what}:1"
        logged = last_position(os.path.join(killed, "log.jsonl"))  # the killed run's last line
        after = (logged[0], logged[1] + 1)
        with open(stderr_path, "w") as stderr:
            process = subprocess.Popen(common + ["--out", killed, "--resume"], env=env, stdout=subprocess.DEVNULL,
                                       stderr=stderr)
        if kind == "random":
            stage, step, delay, at_start = what
            if at_start:
                delay = rng.uniform(0.0, 0.9)
                description = f"{delay:.3f} s after the start"
            else:
                description = f"stage {stage} step {step} + {delay:.3f} s"
                while process.poll() is None and last_position(os.path.join(killed, "log.jsonl")) < max(
                        (stage, step), after):
                    time.sleep(0.01)
            time.sleep(delay)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        else:
            description = f"checkpoint write point '{what}'"
        code = process.wait()
        if code == 0:
            log(f"  {description}: the run had finished")
            continue
        if code != -signal.SIGKILL:
            sys.stdout.write(open(stderr_path).read())
            raise SystemExit(f"FAIL: agcl train exited with {code} at {description}, expected SIGKILL")
        kills += 1
        state = check_checkpoint(args.agcl, killed, description)
        partial = [name for name in os.listdir(killed) if ".partial." in name]
        if kind == "point" and what != "renamed" and not partial:
            raise SystemExit(f"FAIL: no temporary checkpoint file after a kill at '{what}' (the hook did not fire?)")
        position = last_position(os.path.join(killed, "log.jsonl"))
        log(f"  kill {kills}: {description}; log at stage {position[0]} step {position[1]}, {state}"
            + (f"; left {partial}" if partial else ""))
    subprocess.run(common + ["--out", killed, "--resume"], check=True, stdout=subprocess.DEVNULL)
    if any(".partial." in name for name in os.listdir(killed)):
        raise SystemExit(f"FAIL: temporary files remain after the final run: {os.listdir(killed)}")
    reference, result = data_section(os.path.join(whole, "model.agcl")), data_section(
        os.path.join(killed, "model.agcl"))
    if reference[0] != result[0]:
        raise SystemExit("FAIL: the resumed model has other tensors than the uninterrupted one")
    if reference[1] != result[1]:
        raise SystemExit("FAIL: the resumed model's weights differ from the uninterrupted run's")
    a, b = log_records(os.path.join(whole, "log.jsonl")), log_records(os.path.join(killed, "log.jsonl"))
    if a != b:
        differing = sorted(set(a.items()) ^ set(b.items()))[:5]
        raise SystemExit(f"FAIL: the logs differ, e.g. {differing}")
    if kills < args.kills:
        raise SystemExit(f"FAIL: only {kills} kills happened; expected at least {args.kills}")
    log(f"PASS: {kills} kills, the final model is bit for bit the uninterrupted one "
        f"({len(reference[0])} tensors, {len(reference[1])} bytes), the log has its {len(a)} steps")


def same_file(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def segment(args):
    rng = random.Random(args.seed)
    log(f"kill test (segment): seed {args.seed}, {args.kills} kills")
    whole = os.path.join(args.work, "seg-whole")
    killed = os.path.join(args.work, "seg-killed")
    subprocess.run(["rm", "-rf", whole, killed], check=True)
    manifest = args.manifest
    if manifest is None:  # a cohort of its own: 16 volumes of 48 x 48 x 24
        cohort = os.path.join(args.work, "seg-cohort")
        subprocess.run(["rm", "-rf", cohort], check=True)
        subprocess.run([args.agcl, "phantom", "--subjects", "8", "--modality", "both", "--size", "48", "48", "24",
                        "--seed", "3", "--out", cohort], check=True, stdout=subprocess.DEVNULL)
        manifest = os.path.join(cohort, "manifest.csv")
    common = [args.agcl, "--threads", "2", "segment", "--model", args.model, "--manifest", manifest,
              "--split", "all"]
    start = time.time()
    subprocess.run(common + ["--out", whole], check=True, stdout=subprocess.DEVNULL)
    duration = time.time() - start
    expected = sorted(n for n in os.listdir(whole) if n.endswith(".nii.gz"))
    log(f"uninterrupted run: {duration:.1f} s, {len(expected)} volumes")
    # Each kill at a moment drawn over what is left of the run (the model loads in ~0.3 s).
    present, kills, attempts = [], 0, 0
    while kills < args.kills and len(present) < len(expected) and attempts < 4 * args.kills:
        attempts += 1
        process = subprocess.Popen(common + ["--out", killed, "--skip-existing"], stdout=subprocess.DEVNULL)
        delay = rng.uniform(0.0, 0.3 + duration * (len(expected) - len(present)) / len(expected))
        time.sleep(delay)
        outcome = "finished first"
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            outcome = "killed"
        code = process.wait()
        if outcome == "killed":
            kills += 1
        elif code != 0:
            raise SystemExit(f"FAIL: agcl segment exited with {code}")
        present = sorted(n for n in (os.listdir(killed) if os.path.isdir(killed) else [])
                         if n.endswith(".nii.gz") and ".partial." not in n)
        for name in present:
            if not same_file(os.path.join(killed, name), os.path.join(whole, name)):
                raise SystemExit(f"FAIL: after a kill at {delay:.2f} s, {name} differs from the uninterrupted output")
        log(f"  {delay:.2f} s ({outcome}): {len(present)} complete outputs, all equal to the uninterrupted ones")
    subprocess.run(common + ["--out", killed, "--skip-existing"], check=True, stdout=subprocess.DEVNULL)
    present = sorted(n for n in os.listdir(killed) if n.endswith(".nii.gz") and ".partial." not in n)
    left = [n for n in os.listdir(killed) if ".partial." in n]
    if left:
        log(f"  temporary files of killed writers (never read as outputs): {left}")
    if present != expected:
        raise SystemExit(f"FAIL: after the re-run the outputs are {present}, expected {expected}")
    for name in present:
        if not same_file(os.path.join(killed, name), os.path.join(whole, name)):
            raise SystemExit(f"FAIL: {name} differs from the uninterrupted output")
    log(f"PASS: {len(present)} outputs equal to the uninterrupted run's after {kills} kills and a re-run")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["train", "segment"])
    parser.add_argument("--agcl", required=True)
    parser.add_argument("--manifest", help="train: the cohort; segment: default a phantom cohort of its own")
    parser.add_argument("--config")
    parser.add_argument("--model")
    parser.add_argument("--work", required=True)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, nargs=3, default=[8, 60, 60], help="steps of stages 0, 1, 2")
    parser.add_argument("--checkpoint-every", type=int, default=5)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    (train if args.command == "train" else segment)(args)


if __name__ == "__main__":
    sys.exit(main())
