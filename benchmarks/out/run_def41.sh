#!/bin/bash
# seeds 41-48: 1-epoch pilots define the problems, then baseline (c32g) and half-width (w16g) replays
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1
echo "pilots start $(date -u +%H:%M:%S)" > benchmarks/out/def41_progress.log
xargs -P 2 -L 1 python benchmarks/pilot_pgfa_small.py < benchmarks/out/def41_jobs.txt >> benchmarks/out/def41_progress.log 2> benchmarks/out/def41_err.log
echo "pilots end $(date -u +%H:%M:%S)" >> benchmarks/out/def41_progress.log
J=benchmarks/out/w16g_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def41_pilots/runs/*; do
  case $r in *utd_mhad*) E=40;; *) E=20;; esac
  echo "$r --tag c32g --set train.epochs=$E --set validation.every=$E" >> $J
  echo "$r --tag w16g --set train.epochs=$E --set validation.every=$E --set model.args.channels=[16,32,64,128]" >> $J
done
echo "replays start $(date -u +%H:%M:%S) $(wc -l < $J) jobs" >> benchmarks/out/def41_progress.log
xargs -P 2 -L 1 python benchmarks/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/w16g_progress.log 2> benchmarks/out/w16g_err.log
echo "replays end $(date -u +%H:%M:%S)" >> benchmarks/out/def41_progress.log
