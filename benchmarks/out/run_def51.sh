#!/bin/bash
# seeds 51-58: 1-epoch pilots define the problems, then baseline (c32h) replays with the code of 00c55c7
# (worktree /work/exp51); the candidate arm (jmh) starts once benchmarks/out/jm_commit names its commit.
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1 PYTHONPATH=/work/exp51/src
B=/work/exp51/benchmarks; L=benchmarks/out/def51_progress.log
echo "pilots start $(date -u +%H:%M:%S) code $(git -C /work/exp51 rev-parse --short HEAD)" > $L
xargs -P 2 -L 1 python $B/pilot_pgfa_small.py < benchmarks/out/def51_jobs.txt >> $L 2> benchmarks/out/def51_err.log
echo "pilots end $(date -u +%H:%M:%S)" >> $L
J=benchmarks/out/c32h_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def51_pilots/runs/*; do
  case $r in *utd_mhad*) E=40;; *) E=20;; esac
  echo "$r --tag c32h --set train.epochs=$E --set validation.every=$E" >> $J
done
echo "baseline replays start $(date -u +%H:%M:%S) $(wc -l < $J) jobs" >> $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/c32h_progress.log 2> benchmarks/out/c32h_err.log
echo "baseline replays end $(date -u +%H:%M:%S)" >> $L
while [ ! -s benchmarks/out/jm_commit ]; do sleep 20; done
git -C /work/exp51 checkout --detach -q "$(cat benchmarks/out/jm_commit)"
J=benchmarks/out/jmh_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def51_pilots/runs/*; do
  case $r in *utd_mhad*) E=40;; *) E=20;; esac
  echo "$r --tag jmh --set train.epochs=$E --set validation.every=$E --set model.modality=joint_motion" >> $J
done
echo "candidate replays start $(date -u +%H:%M:%S) code $(git -C /work/exp51 rev-parse --short HEAD)" >> $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/jmh_progress.log 2> benchmarks/out/jmh_err.log
echo "candidate replays end $(date -u +%H:%M:%S)" >> $L
