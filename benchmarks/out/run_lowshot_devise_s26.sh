#!/bin/bash
# DeViSE low-shot sweep (a measurement for RESULTS, chooses nothing): 2 jobs at a time, 1 thread each
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1
xargs -P 2 -I CMD bash -c 'echo "$(date +%T) start CMD" >> benchmarks/out/lowshot_devise_s26_progress.log; CMD >> benchmarks/out/lowshot_devise_s26_err.log 2>&1; echo "$(date +%T) end rc=$? CMD" >> benchmarks/out/lowshot_devise_s26_progress.log' < benchmarks/out/lowshot_devise_s26_jobs.txt
