#!/bin/bash
# rule Q7: candidate arm ce2x (train.ce_init_epochs) with the code of 66cf6da (worktree /work/exp61); waits for the
# reference-protocol sweep (run_pgfa_small.py) to end so that at most two heavy processes run.
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1 PYTHONPATH=/work/exp61/src ZEROSKEL_QUIET=1
B=/work/exp61/benchmarks; L=benchmarks/out/ce2x_run.log
while pgrep -f run_pgfa_small.py > /dev/null; do sleep 10; done
echo "candidate replays start $(date -u +%H:%M:%S) code $(git -C /work/exp61 rev-parse --short HEAD)" > $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < benchmarks/out/ce2x_jobs.txt > benchmarks/out/ce2x_progress.log 2> benchmarks/out/ce2x_err.log
echo "candidate replays end $(date -u +%H:%M:%S)" >> $L
