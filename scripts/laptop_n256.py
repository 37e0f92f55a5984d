"""One N = 256 GRU (autoregressive, seed 0) under the laptop protocol, and its eight analyses.

    PYTHONPATH=lib python scripts/laptop_n256.py

The laptop profile stops at N = 128 (README, "Profiles"); this adds the next size under the same
convergence rule, into the same cache (data/, or $ONION_GRU_DATA), for the README's N = 256 paragraph.  About
40 minutes on 2 cores; rerunning continues from the finished entries.
"""
from dataclasses import replace

from onion_gru.analysis import METHODS
from onion_gru.jobs import missing_jobs, run_jobs
from onion_gru.profiles import PROFILES
from onion_gru.report import analysis_results, gru_results


def main():
    profile = replace(PROFILES["laptop"], sizes=(256,), variants=("autoregressive",), seeds=(0,))
    gru_jobs, analysis_jobs = missing_jobs(profile, list(METHODS))
    run_jobs(gru_jobs, workers=1)  # one job: both cores to it
    run_jobs(analysis_jobs, workers=2)
    print(gru_results(profile)[["size", "variant", "seed", "accuracy"]].to_string(index=False))
    print(analysis_results(profile, METHODS)[["method", "accuracy", "floor", "train_seconds"]].to_string(index=False))


if __name__ == "__main__":
    main()
