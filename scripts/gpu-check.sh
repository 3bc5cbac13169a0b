#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one pass that fits a few minutes of a borrowed
# machine (docs/GPU.md). Runs from the unpacked .gpu/pack.tgz (scripts/gpu-pack.sh): no build,
# no network. Writes $OUT/gpu-report.txt (stage by stage, each with its time and exit status)
# and $OUT/bench.json, and prints a summary at the end.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/out}
mkdir -p "$OUT"
REPORT=$OUT/gpu-report.txt
: >"$REPORT"
export LD_LIBRARY_PATH=$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OB_SHARED=$HERE/shared OB_BUILD=$HERE/bin
# The NVIDIA Vulkan driver of the image, where it keeps one (the lent H200 image has the
# manifest but not the library it names, so Vulkan skips there: docs/GPU.md).
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && export VK_DRIVER_FILES=$icd && break
done
OB=$HERE/bin/outboard
SUMMARY=()

stage() {
    local name=$1 t0=$SECONDS rc
    shift
    echo "=== $name" >>"$REPORT"
    timeout "${STAGE_LIMIT:-240}" "$@" >>"$REPORT" 2>&1
    rc=$?
    echo "=== $name: exit $rc, $((SECONDS - t0)) s" >>"$REPORT"
    SUMMARY+=("$(printf '%-28s exit %-3s %4ss' "$name" "$rc" "$((SECONDS - t0))")")
}

if [ "${TESTS:-1}" = 1 ]; then
    stage machine bash -c 'nvidia-smi; nproc; free -g; uname -a; grep -m1 "^flags" /proc/cpuinfo; echo "Vulkan: ${VK_DRIVER_FILES:-no driver manifest}"; cat "${VK_DRIVER_FILES:-/dev/null}"; ldconfig -p | grep -iE "nvidia|vulkan" | head -30'
    stage devices "$OB" devices
    for t in "$HERE"/bin/tests/cuda/*_test; do stage "cuda/$(basename "$t")" "$t"; done
    # Vulkan on the GPU (device 0 is the first non-CPU device): the same shader tests as lavapipe.
    for t in "$HERE"/bin/tests/vulkan/*_test; do
        stage "vulkan/$(basename "$t")" env OB_VK_TEST_DEVICE=0 "$t"
    done
    # The kernels alone at 8B shapes: decode weight GB/s against the card's bandwidth, prefill
    # TFLOP/s, attention KV GB/s, and what the host pays per op.
    [ -x "$HERE/bin/cuda_bench" ] && stage cuda_bench "$HERE/bin/cuda_bench" Q4_0,Q8_0,Q4_K,Q6_K 0.3
fi

# Speed: a synthetic model per weight type (1B-shaped; SHAPE=8b for the issue's 8B figures,
# which take longer to write), outboard on CUDA, on the card through Vulkan, half its layers on
# the card behind an emulated 3 GB/s link, and the CPU; llama.cpp's CUDA and Vulkan builds on
# the same file when the pack carries llama-bench (scripts/gpu-pack.sh, LLAMA_BENCH).
M=$OUT/models
mkdir -p "$M"
echo '[' >"$OUT/bench.json"
first=1
LB=$HERE/llama/llama-bench
record() { # name of the run, then the JSON file it wrote
    if [ -s "$2" ]; then
        [ $first = 1 ] || echo ',' >>"$OUT/bench.json"
        first=0
        printf '{"type": "%s", "run": "%s", "result": %s}' "$type" "$1" "$(cat "$2")" >>"$OUT/bench.json"
    fi
    rm -f "$2"
}
SHAPE=${SHAPE:-1b}
for type in ${TYPES:-q4_0 q8_0 q4_k_m q6_k}; do
    F=$M/$SHAPE-$type.gguf
    stage "synth $SHAPE $type" "$OB" synth --shape "$SHAPE" --type $type ${SYNTH_ARGS:-} -o "$F"
    layers=$("$OB" plan -m "$F" --json 2>/dev/null | sed -n 's/.*"n_layer": \([0-9]*\).*/\1/p')
    for run in ${RUNS:-cuda vulkan split cpu}; do
        case $run in
        cuda) args="--device cuda" n=128 ;;
        vulkan) args="--device vulkan" n=128 ;;
        split) args="--device cuda --gpu-layers $(( ${layers:-2} / 2 )) --link-emulate 3" n=64 ;;
        cpu) args="--device cpu" n=32 ;;
        esac
        stage "bench $type $run" bash -c "\"$OB\" bench -m \"$F\" $args -p 512 -n $n -r 3 --json > \"$OUT/b.json\" && cat \"$OUT/b.json\""
        record "outboard $run" "$OUT/b.json"
    done
    if [ -x "$LB" ]; then
        for dev in ${LB_DEVS:-CUDA0 Vulkan0}; do
            stage "llama-bench $type $dev" bash -c "\"$LB\" -m \"$F\" -dev $dev -ngl 99 -p 512 -n 128 -r 3 -o json > \"$OUT/b.json\" && cat \"$OUT/b.json\""
            record "llama.cpp $dev" "$OUT/b.json"
        done
    fi
    rm -f "$F"
done
echo ']' >>"$OUT/bench.json"
rm -rf "$M"

printf '%s\n' "${SUMMARY[@]}" | tee -a "$REPORT"
grep -E '^[0-9]+ passed, [0-9]+ failed' "$REPORT" | sort | uniq -c | tee -a "$REPORT"
