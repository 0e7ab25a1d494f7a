"""Benchmark: the bootstrap interval of a Fréchet distance, set by set against counted.

    python benchmarks/bootstrap_speed.py              # about 2 minutes on 2 cores
    python benchmarks/bootstrap_speed.py --sizes 100 300

Every FD-FMNIST a chapter states carries a 95 % BCa bootstrap interval (``stats.interval``,
``stats.difference``): 2,000 resampled sets of the images plus, for the BCa correction, one
leave-one-out set per image, each a Fréchet distance of its own. The statistic can take them one
set at a time, or, marked :func:`gensynth_course.evaluation.stats.counted`, as counts of the rows a
block at a time, where the second moments of all the sets are one matrix product
(:func:`gensynth_course.evaluation.metrics.frechet_distance_of_rows`). This times both on real
features: the course classifier's features of the seed recipe's stored samples (chapter 01), an
interval of one set and an unpaired difference of two, and prints the largest relative difference
between their figures (a faster way to compute is only that if the figures stay the same). Run it
with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from gensynth_course.evaluation import stats
from gensynth_course.evaluation.fashion_classifier import classifier_config
from gensynth_course.evaluation.metrics import features
from gensynth_course.experiments import ch01_ddpm


def timed(compute) -> tuple[dict, float]:
    start = time.perf_counter()
    result = compute()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 2048],
                        help="images per set (at most 2,048, the stored samples)")
    args = parser.parse_args(argv)
    if not all(2 <= n <= ch01_ddpm.N_SEED_SAMPLES for n in args.sizes):
        raise SystemExit(f"--sizes must be between 2 and {ch01_ddpm.N_SEED_SAMPLES}.")
    fd_metric, _ = ch01_ddpm.fd_metric(classifier_config("standard"))
    seeds = ch01_ddpm.seed_samples(ch01_ddpm.N_SEED_SAMPLES)
    a, b = (features(fd_metric.classifier, seeds[name]).numpy() for name in ("tutorial", "clipped"))

    def set_by_set(rows):                # the same statistic, not marked counted
        return fd_metric.of_features(rows)

    print(f"FD-FMNIST intervals on {a.shape[1]} features, {stats.RESAMPLES} resamples, {platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'what':<32} {'set by set (s)':>15} {'counted (s)':>12} {'speed-up':>9} {'max rel. diff.':>15}")
    for n in args.sizes:
        for what, compute in ((f"interval, N = {n}", lambda s: stats.interval(a[:n], s)),
                              (f"unpaired difference, N = {n}",
                               lambda s: stats.difference(a[:n], b[:n], statistic=s, paired=False))):
            plain, plain_seconds = timed(lambda: compute(set_by_set))
            fast, fast_seconds = timed(lambda: compute(fd_metric.of_features))
            gap = max(abs(fast[k] - plain[k]) / abs(plain[k]) for k in ("value", "ci_low", "ci_high"))
            print(f"{what:<32} {plain_seconds:>15.1f} {fast_seconds:>12.1f} {plain_seconds / fast_seconds:>8.1f}× "
                  f"{gap:>15.1e}")


if __name__ == "__main__":
    main()
