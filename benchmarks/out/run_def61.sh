#!/bin/bash
# rule Q3 of def51_rule.txt: UTD-MHAD problems with two held-out subjects, defined by 1-epoch pilots (def61),
# replayed as whole runs of the preset (c32m2); code of the worktree /work/exp51
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1 PYTHONPATH=/work/exp51/src
B=/work/exp51/benchmarks; L=benchmarks/out/def61_progress.log
echo "pilots start $(date -u +%H:%M:%S) code $(git -C /work/exp51 rev-parse --short HEAD)" > $L
xargs -P 2 -L 1 python $B/pilot_pgfa_small.py < benchmarks/out/def61_jobs.txt >> $L 2> benchmarks/out/def61_err.log
echo "pilots end $(date -u +%H:%M:%S)" >> $L
J=benchmarks/out/c32m2_jobs.txt; : > $J
for r in benchmarks/out/pgfa_def61_pilots/runs/*; do
  echo "$r --tag c32m2 --set train.epochs=40 --set validation.every=40" >> $J
done
echo "replays start $(date -u +%H:%M:%S) $(wc -l < $J) jobs" >> $L
xargs -P 2 -L 1 python $B/pilot_pgfa_nested.py --threads 1 < $J > benchmarks/out/c32m2_progress.log 2> benchmarks/out/c32m2_err.log
echo "replays end $(date -u +%H:%M:%S)" >> $L
