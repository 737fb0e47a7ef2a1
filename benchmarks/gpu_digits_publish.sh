#!/usr/bin/env bash
# One device session on a GPU box: `kdbench doctor` on CUDA (the bf16, channels_last, device-memory
# cache and torch.compile checks only a GPU can run), then every digits twin suite trained on that GPU
# with the `pool` executor, its records packed for `kdbench publish` on the machine that commits them.
#   source .whl/env.sh && bash benchmarks/gpu_digits_publish.sh        # figures and records under $OUT
# With suite names as arguments it skips the doctor and runs those suites (two streams), e.g. to finish
# a campaign whose run store and teacher records travel in $KDBENCH_RUNS and $KDBENCH_HOME.
# DEADLINE_S (seconds from this script's start) bounds the suites so the records come back before the
# device's limit; a suite left unfinished is resumed by the same command (finished runs are kept by key).
set -uo pipefail
out=${OUT:-$PWD/gpu_out}; mkdir -p "$out"      # $OUT: the device tool's folder that comes back
slots=${SLOTS:-6}
export KDBENCH_HOME=${KDBENCH_HOME:-$PWD/gpu_home} KDBENCH_RUNS=${KDBENCH_RUNS:-runs}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; } > "$out/gpu.txt" 2>&1

if [ $# -eq 0 ]; then
  timeout 170 kdbench doctor --device cuda --out "$out/doctor.json" > "$out/doctor.txt" 2>&1
  echo "doctor exit $?" >> "$out/doctor.txt"
fi

kdbench export-folder digits --param image_size=32 > "$out/export.txt" 2>&1
budget=$(( ${DEADLINE_S:-520} - SECONDS - 20 ))
pool=(--executor pool --param devices=1 --param "runs_per_device=$slots" --param threads=1 --quiet)
stream() {  # suites one after another, each timed
  for suite in "$@"; do
    [ -e "$out/stop" ] && break
    start=$(date +%s)
    if [ "$suite" = digits_tune ]; then
      kdbench tune suites/digits_tune.yaml "${pool[@]}" > "$out/log_$suite.txt" 2>&1 \
        && kdbench tune suites/digits_tune.yaml --final "${pool[@]}" >> "$out/log_$suite.txt" 2>&1
    else
      kdbench run "suites/$suite.yaml" "${pool[@]}" > "$out/log_$suite.txt" 2>&1
    fi
    echo "$suite exit $? seconds $(( $(date +%s) - start ))" >> "$out/suites.txt"
  done
}
if [ $# -eq 0 ]; then
  stream digits_similar digits_vanilla digits_imagenet & a=$!
  stream digits_different digits_teachers digits_ablation & b=$!
  stream digits_estimators digits_noise digits_sota digits_selection digits_lambda digits_eta digits_tune & c=$!
else
  stream "$1" & a=$!
  shift; stream "$@" & b=$!; c=$b
fi
( sleep "$budget"; echo "budget of $budget s reached" >> "$out/suites.txt"; touch "$out/stop"
  pkill -f 'kdbench (run|tune)'; pkill -f multiprocessing.spawn ) & watchdog=$!
wait $a $b $c; kill $watchdog 2>/dev/null; sleep 2; rm -f "$out/stop"
for log in "$out"/log_*.txt; do tail -c 20000 "$log" > "$log.tail" && mv "$log.tail" "$log"; done
tar czf "$out/runs.tgz" --exclude='*.pt' --exclude='*.lock' "$KDBENCH_RUNS" "$KDBENCH_HOME/scores" "$KDBENCH_HOME/teachers" 2>/dev/null
(cd "$out" && tar czf logs.tgz log_*.txt && rm -f log_*.txt)
ls -la "$out"
