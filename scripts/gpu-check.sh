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
# The NVIDIA Vulkan driver of the image, where it keeps one.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
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

stage machine bash -c 'nvidia-smi; nproc; free -g; uname -a'
stage devices "$OB" devices
for t in "$HERE"/bin/tests/cuda/*_test; do stage "cuda/$(basename "$t")" "$t"; done
# Vulkan on the GPU (device 0 is the first non-CPU device): the same shader tests as lavapipe.
for t in "$HERE"/bin/tests/vulkan/*_test; do
    stage "vulkan/$(basename "$t")" env OB_VK_TEST_DEVICE=0 "$t"
done

# Speed: a 1B-shaped synthetic model per weight type, CPU (all cores) against CUDA.
M=$OUT/models
mkdir -p "$M"
echo '[' >"$OUT/bench.json"
first=1
for type in ${TYPES:-q4_0 q8_0 q4_k_m q6_k}; do
    stage "synth 1b $type" "$OB" synth --shape "${SHAPE:-1b}" --type $type -o "$M/1b-$type.gguf"
    for dev in cuda cpu; do
        n=128
        [ $dev = cpu ] && n=32
        stage "bench $type $dev" bash -c "\"$OB\" bench -m \"$M/1b-$type.gguf\" --device $dev -p 512 -n $n -r 3 --json > \"$OUT/b.json\" && cat \"$OUT/b.json\""
        if [ -s "$OUT/b.json" ]; then
            [ $first = 1 ] || echo ',' >>"$OUT/bench.json"
            first=0
            printf '{"type": "%s", "device": "%s", "result": %s}' $type $dev "$(cat "$OUT/b.json")" >>"$OUT/bench.json"
        fi
        rm -f "$OUT/b.json"
    done
    rm -f "$M/1b-$type.gguf"
done
echo ']' >>"$OUT/bench.json"
rm -rf "$M"

printf '%s\n' "${SUMMARY[@]}" | tee -a "$REPORT"
grep -E '^[0-9]+ passed, [0-9]+ failed' "$REPORT" | sort | uniq -c | tee -a "$REPORT"
