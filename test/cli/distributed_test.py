#!/usr/bin/env python3
"""agcl train on 2 processes (issue 18), on 127.0.0.1 only.

1. `--nproc 2` (the tool starts its ranks) completes the three stages: one model, one log.
2. The torchrun-style environment (RANK, WORLD_SIZE, LOCAL_*, MASTER_*: set here, one process
   per rank started by this script) gives the same model bit for bit; while it runs, every
   established TCP connection of the ranks is between loopback addresses. The same with the
   store hosted by the launcher (here: this script, with PyTorch's TCPStore) and
   TORCHELASTIC_USE_AGENT_STORE=True.
3. Rank 0 killed (SIGKILL) right after a checkpoint is renamed into place: the launcher stops the
   other rank and fails; `--resume` continues from the checkpoint to the same model bit for bit.
4. Both ranks killed (SIGKILL) mid-run, then resumed the torchrun way: the same model.
5. A resume with another number of processes is refused, naming both numbers.
6. Rank 1 killed mid-run: rank 0 exits with an error naming itself, within the timeout.

Usage: distributed_test.py AGCL MANIFEST CONFIG WORKDIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kill_test import data_section  # noqa: E402  (model tensors without the provenance)

AGCL, MANIFEST, CONFIG, WORK = sys.argv[1:5]
STEPS = ["--coarse-steps", "6", "--pretrain-steps", "6", "--decoder-steps", "6", "--coarse-batch", "2",
         "--pretrain-batch", "8", "--decoder-batch", "8", "--patches-per-organ", "4", "--checkpoint-every", "2",
         "--log-every", "1", "--quiet", "--dist-timeout", "30"]


def log(*parts):
    print(*parts, flush=True)


def fail(message):
    log("FAIL:", message)
    sys.exit(1)


def train_args(out, *extra):
    return [AGCL, "train", "--manifest", MANIFEST, "--config", CONFIG, "--out", out] + STEPS + list(extra)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(out, *extra, env_extra=None):
    """Two `agcl train` processes with the torchrun-style environment."""
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        env.update(env_extra or {})
        procs.append(subprocess.Popen(train_args(out, *extra), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def last_step(out):
    """(stage, step) of the log's last complete step line, or (-1, -1)."""
    try:
        lines = open(os.path.join(out, "log.jsonl")).read().split("\n")[:-1]
    except FileNotFoundError:
        return (-1, -1)
    for line in reversed(lines):
        entry = json.loads(line)
        if "loss" in entry:
            return (entry["stage"], entry["step"])
    return (-1, -1)


def wait_for_step(out, procs, position, limit=300):
    """Waits until the log of `out` reaches (stage, step) `position`, a rank ends, or `limit` s."""
    deadline = time.time() + limit
    while last_step(out) < position and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except FileNotFoundError:
        pass
    return inodes


def loopback(address_hex):
    """Whether /proc/net/tcp{,6}'s hex address is a loopback address."""
    if len(address_hex) == 8:  # IPv4, little-endian
        return address_hex.endswith("7F")
    # IPv6: ::1 or ::ffff:127.x.x.x
    return address_hex == "00000000000000000000000001000000" or (
        address_hex.startswith("0000000000000000FFFF0000") and address_hex.endswith("7F"))


def established_connections(pids):
    """[(local, remote, loopback?)] of the processes' established TCP connections."""
    inodes = set()
    for pid in pids:
        inodes |= socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().split("\n")[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            parts = row.split()
            if len(parts) < 10 or parts[9] not in inodes or parts[3] != "01":  # 01: ESTABLISHED
                continue
            local, remote = parts[1].split(":")[0], parts[2].split(":")[0]
            found.append((parts[1], parts[2], loopback(local) and loopback(remote)))
    return found


def same_model(a, b, what):
    if data_section(a) != data_section(b):
        fail(f"{what}: the model's tensors differ from the reference run's")
    log(f"ok: {what}: the same model bit for bit")


os.makedirs(WORK, exist_ok=True)

# 1. --nproc 2
reference = os.path.join(WORK, "reference")
shutil.rmtree(reference, ignore_errors=True)
t0 = time.time()
run = subprocess.run(train_args(reference, "--nproc", "2"), capture_output=True, text=True)
if run.returncode != 0 or "processes: 2" not in run.stdout:
    fail(f"--nproc 2: exit {run.returncode}\n{run.stdout}\n{run.stderr}")
settings = json.load(open(os.path.join(reference, "settings.json")))
if settings.get("world_size") != 2 or last_step(reference) != (2, 6):
    fail(f"--nproc 2: settings world_size {settings.get('world_size')}, last log step {last_step(reference)}")
log(f"ok: --nproc 2 trained the three stages in {time.time() - t0:.1f} s")
model = os.path.join(reference, "model.agcl")

# 2. torchrun-style environment; the connections on loopback
env_run = os.path.join(WORK, "environment")
shutil.rmtree(env_run, ignore_errors=True)
procs = start_ranks(env_run)
connections = []
while any(p.poll() is None for p in procs):
    connections += established_connections([p.pid for p in procs if p.poll() is None])
    time.sleep(0.2)
outputs = [p.communicate() for p in procs]
if [p.returncode for p in procs] != [0, 0]:
    fail(f"torchrun-style ranks: exit codes {[p.returncode for p in procs]}\n{outputs}")
if not connections:
    fail("no established TCP connection of the ranks was seen")
outside = [c for c in connections if not c[2]]
if outside:
    fail(f"connections outside the loopback interface: {outside[:5]}")
log(f"ok: torchrun-style ranks: {len(set(c[:2] for c in connections))} connections seen, all on loopback")
if "processes: 2" not in outputs[0][0] or outputs[1][0].strip():
    fail(f"rank 0 reports, rank 1 stays silent on stdout: {outputs[0][0]!r} / {outputs[1][0]!r}")
same_model(os.path.join(env_run, "model.agcl"), model, "torchrun-style environment")

# 2b. the launcher hosts the store (TORCHELASTIC_USE_AGENT_STORE=True, as recent torchrun does):
# every rank is a client of a store this script holds (PyTorch's own TCPStore).
import torch.distributed as dist  # noqa: E402  (Debian's python3-torch)
port = free_port()
store = dist.TCPStore("127.0.0.1", port, 2, True, wait_for_workers=False)
agent = os.path.join(WORK, "agent")
shutil.rmtree(agent, ignore_errors=True)
procs = start_ranks(agent, env_extra={"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "0",
                                      "MASTER_PORT": str(port)})
outputs = [p.communicate() for p in procs]
if [p.returncode for p in procs] != [0, 0]:
    fail(f"ranks on the launcher's store: exit codes {[p.returncode for p in procs]}\n{outputs}")
del store
log("ok: ranks on the launcher's store (TORCHELASTIC_USE_AGENT_STORE=True)")
same_model(os.path.join(agent, "model.agcl"), model, "the launcher's store")

# 3. rank 0 killed after its 3rd checkpoint is in place; the launcher stops rank 1; resume
killed = os.path.join(WORK, "killed")
shutil.rmtree(killed, ignore_errors=True)
run = subprocess.run(train_args(killed, "--nproc", "2"), capture_output=True, text=True,
                     env=dict(os.environ, AGCL_FAULT_INJECTION="renamed:3"))
if run.returncode == 0 or "rank 0 of 2 failed" not in run.stderr:
    fail(f"rank 0 killed: exit {run.returncode}, stderr:\n{run.stderr}")
stopped_at = last_step(killed)
info = subprocess.run([AGCL, "info", os.path.join(killed, "checkpoint.agcl")], capture_output=True, text=True)
if info.returncode != 0:
    fail(f"the checkpoint left by the kill does not load:\n{info.stderr}")
run = subprocess.run(train_args(killed, "--nproc", "2", "--resume"), capture_output=True, text=True)
if run.returncode != 0:
    fail(f"resume after rank 0's kill: exit {run.returncode}\n{run.stderr}")
log(f"ok: rank 0 killed at stage/step {stopped_at}: the launcher stopped rank 1 and failed; resumed")
same_model(os.path.join(killed, "model.agcl"), model, "killed at a checkpoint and resumed")

# 4. both ranks killed mid-run (stage 1), resumed the torchrun way
both = os.path.join(WORK, "both")
shutil.rmtree(both, ignore_errors=True)
procs = start_ranks(both)
wait_for_step(both, procs, (1, 3))
for p in procs:
    p.send_signal(signal.SIGKILL)
for p in procs:
    p.communicate()
stopped_at = last_step(both)
if stopped_at < (1, 3) or stopped_at == (2, 6):
    fail(f"both ranks: killed at {stopped_at} (expected mid-run)")
# A resume with another number of processes is refused (before any collective).
run = subprocess.run(train_args(both, "--resume"), capture_output=True, text=True)
if run.returncode != 1 or "written by a job of 2 process(es), this job has 1" not in run.stderr:
    fail(f"resume with 1 process of a 2-process checkpoint: exit {run.returncode}\n{run.stderr}")
log("ok: a resume with 1 process of a 2-process checkpoint is refused: " + run.stderr.strip().splitlines()[-1])
procs = start_ranks(both, "--resume")
outputs = [p.communicate() for p in procs]
if [p.returncode for p in procs] != [0, 0]:
    fail(f"torchrun-style resume: exit codes {[p.returncode for p in procs]}\n{outputs}")
log(f"ok: both ranks killed at stage/step {stopped_at}, resumed")
same_model(os.path.join(both, "model.agcl"), model, "both ranks killed and resumed")

# 6. rank 1 killed mid-run: rank 0 ends with an error within the timeout (30 s)
dies = os.path.join(WORK, "dies")
shutil.rmtree(dies, ignore_errors=True)
procs = start_ranks(dies)
wait_for_step(dies, procs, (0, 2))
procs[1].send_signal(signal.SIGKILL)
killed_at = time.time()
try:
    _, err = procs[0].communicate(timeout=120)
except subprocess.TimeoutExpired:
    procs[0].kill()
    fail("rank 0 still runs 120 s after rank 1 was killed (a hang)")
waited = time.time() - killed_at
procs[1].communicate()
if procs[0].returncode != 2 or "agcl[rank 0]" not in err or "rank 0 of 2" not in err:
    fail(f"rank 0 after rank 1's death: exit {procs[0].returncode}\n{err}")
if waited > 30 + 15:
    fail(f"rank 0 took {waited:.1f} s to stop (timeout 30 s)")
log(f"ok: rank 1 killed; rank 0 stopped after {waited:.1f} s with: " + err.strip().splitlines()[-1][:300])
log("PASS")
