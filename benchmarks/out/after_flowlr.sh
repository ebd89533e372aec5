#!/bin/bash
# wait for the Flora phase-2 lr screen, then the half-width PGFA replays
cd /work/main
export ZEROSKEL_DATA=/work/shared/data HF_HUB_OFFLINE=1
while pgrep -f "select_flora.py" >/dev/null; do sleep 10; done
echo "w16 start $(date -u +%H:%M:%S)" > benchmarks/out/w16_progress.log
xargs -P 2 -L 1 python benchmarks/pilot_pgfa_nested.py --threads 1 < benchmarks/out/w16_jobs.txt >> benchmarks/out/w16_progress.log 2> benchmarks/out/w16_err.log
echo "w16 end $(date -u +%H:%M:%S)" >> benchmarks/out/w16_progress.log
