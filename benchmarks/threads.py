"""Benchmark: CPU thread policies when one or two notebooks compute at once.

    python benchmarks/threads.py                 # every policy, alone and two at once (~3 minutes)
    python benchmarks/threads.py --steps 40      # longer runs, steadier numbers

A learner with two chapters open (or a chapter and an ``eval``) runs two PyTorch processes on the
same cores. With PyTorch's default (one thread per core, OpenMP threads that spin while they wait),
two such processes can slow each other far more than twice. Each policy below runs the same
workload, chapter 01's training step (its UNet; its batch of 32 and a larger one), first alone,
then in two processes started together, and prints milliseconds per step. Run it with nothing else running.
The first policy is the course's own (``gensynth_course.threads``): a busy process keeps every
core while it computes alone and shares them when another of the course's processes computes too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# name -> (environment, torch threads or None for PyTorch's default)
POLICIES = {
    "the course's core sharing": ({"GENSYNTH_SHARE_CORES": "1"}, None),
    "PyTorch's default": ({}, None),
    "spinning (OMP_WAIT_POLICY=ACTIVE)": ({"OMP_WAIT_POLICY": "ACTIVE"}, None),
    "passive waiting": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "short spin (GOMP_SPINCOUNT=10000)": ({"GOMP_SPINCOUNT": "10000"}, None),
    "one thread": ({}, 1),
}

WORKER = """
import json, sys, time
import torch
from gensynth_course.experiments import ch01_ddpm
from gensynth_course.models.diffusion.schedulers import DDPMScheduler
from gensynth_course.progress import progress_bar
threads, steps, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if threads:
    torch.set_num_threads(threads)
config = ch01_ddpm.unet_config("standard")
model = ch01_ddpm.build(config)
scheduler = DDPMScheduler(ch01_ddpm.betas("linear"))
optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
generator = torch.Generator().manual_seed(0)
x = torch.rand(batch, 1, 28, 28, generator=generator) * 2 - 1
times = []
bar = progress_bar(total=steps + 3, disable=True)   # the course's loops all show one
for step in range(steps + 3):
    start = time.perf_counter()
    loss = scheduler.loss(model, x, generator)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    bar.update(1)
    times.append(time.perf_counter() - start)
bar.close()
times = sorted(times[3:])
print(json.dumps({"threads": torch.get_num_threads(), "ms_per_step": 1000 * times[len(times) // 2]}))
"""


def run(policy: str, copies: int, steps: int, batch: int) -> list[dict]:
    env_extra, threads = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    env.update({"GENSYNTH_SHARE_CORES": "0", **env_extra})
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(threads or 0), str(steps), str(batch)],
                                  env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    results = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the worker for {policy!r} failed (exit {process.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run (median reported)")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256],
                        help="batch sizes: 32 is chapter 01's (small, many little operations); 256 does more work per step")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args()
    if args.steps < 3:
        raise SystemExit("--steps must be at least 3")
    table = []
    start = time.perf_counter()
    for batch in args.batch:
        for policy in POLICIES:
            alone = run(policy, 1, args.steps, batch)[0]
            pair = run(policy, 2, args.steps, batch)
            table.append({"batch": batch, "policy": policy, "threads": alone["threads"],
                          "alone_ms": round(alone["ms_per_step"], 1),
                          "two_at_once_ms": [round(r["ms_per_step"], 1) for r in pair]})
            print(f"batch {batch:<4} {policy:<34} threads {alone['threads']}: alone {alone['ms_per_step']:7.1f} "
                  f"ms/step, two at once {' / '.join(format(r['ms_per_step'], '.1f') for r in pair)} ms/step",
                  file=sys.stderr)
    print(f"({os.cpu_count()} CPUs, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.json:
        print(json.dumps(table))


if __name__ == "__main__":
    main()
