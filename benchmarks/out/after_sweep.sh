#!/bin/bash
# wait for the v10 sweep, then the timed idle default run, then the temperature pilots
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1
while pgrep -f "run_pgfa_small.py --shard" >/dev/null; do sleep 20; done
echo "sweep done $(date)" > benchmarks/out/after_sweep.log
python benchmarks/bench_pgfa.py --threads 2 --iters 1 --encoders shiftgcn:32 --full-run \
    --runs-dir benchmarks/out/bench_pgfa_runs_v10 --json benchmarks/out/bench_pgfa_v10.json >> benchmarks/out/after_sweep.log 2>&1
echo "bench done $(date)" >> benchmarks/out/after_sweep.log
xargs -P 2 -L 1 python benchmarks/pilot_pgfa_small.py < benchmarks/out/temp10_jobs.txt > benchmarks/out/temp10_progress.log 2> benchmarks/out/temp10_err.log
echo "pilots done $(date)" >> benchmarks/out/after_sweep.log
