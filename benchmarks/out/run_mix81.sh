#!/bin/bash
# rule Q1 of mix81_rule.txt: 1-epoch pilots define 36 fresh problems (seeds 81-88), then baseline (b81) replays
# with the code of a3f5eed (worktree /work/exp81); the candidate arm (mix81) starts once
# benchmarks/out/mix_commit names its commit. 2 processes at a time, 1 thread each.
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1 PYTHONPATH=/work/exp81/src ZEROSKEL_QUIET=1
B=/work/exp81/benchmarks; L=benchmarks/out/def81_progress.log
echo "pilots start $(date -u +%H:%M:%S) code $(git -C /work/exp81 rev-parse --short HEAD)" > $L
xargs -P 2 -L 1 python $B/pilot_pgfa_small.py < benchmarks/out/def81_jobs.txt >> $L 2> benchmarks/out/def81_err.log
echo "pilots end $(date -u +%H:%M:%S)" >> $L
J=benchmarks/out/b81_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def81_pilots/runs/*; do
  case $r in *utd_mhad*) E=40;; *) E=20;; esac
  echo "$r --tag b81 --set train.epochs=$E --set validation.every=$E" >> $J
done
echo "baseline replays start $(date -u +%H:%M:%S) $(wc -l < $J) jobs" >> $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/b81_progress.log 2> benchmarks/out/b81_err.log
echo "baseline replays end $(date -u +%H:%M:%S)" >> $L
while [ ! -s benchmarks/out/mix_commit ]; do sleep 20; done
git -C /work/exp81 checkout --detach -q "$(cat benchmarks/out/mix_commit)"
J=benchmarks/out/mix81_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def81_pilots/runs/*; do
  case $r in *utd_mhad*) E=40;; *) E=20;; esac
  echo "$r --tag mix81 --set train.epochs=$E --set validation.every=$E --set train.mixup_alpha=0.4" >> $J
done
echo "candidate replays start $(date -u +%H:%M:%S) code $(git -C /work/exp81 rev-parse --short HEAD)" >> $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/mix81_progress.log 2> benchmarks/out/mix81_err.log
echo "candidate replays end $(date -u +%H:%M:%S)" >> $L
