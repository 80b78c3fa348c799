#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, from the repository root, with gpu-kit/bin built by
# scripts/gpu_kit.sh: the CUDA backend's GPU tests, short training runs of every model file on
# the GPU, and training images/s of graphc and PyTorch on the same GPU, same architecture and
# batch (FP32). Results go to stdout and, when $OUT is set, to files under it.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
bin=gpu-kit/bin
iterations=${ITERATIONS:-30}

# NVRTC and cuBLAS: the system CUDA's, and those PyTorch's wheels ship.
for dir in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; [print(os.path.join(p, d, "lib")) for p in nvidia.__path__ for d in os.listdir(p)]' 2>/dev/null); do
    [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== GPU tests (tests/cuda_device.rs); on a failure, again with each step synchronized so that a fault names its step"
if ! timeout 240 "$bin/cuda_device" --ignored --nocapture --test-threads 1 > "$out/cuda_device.txt" 2>&1; then
    GRAPHC_CUDA_SYNC=1 timeout 240 "$bin/cuda_device" --ignored --nocapture --test-threads 1 > "$out/cuda_device_sync.txt" 2>&1
    tail -25 "$out/cuda_device_sync.txt"
fi
tail -25 "$out/cuda_device.txt"

echo "== training runs on the GPU (50 iterations each)"
for model in vae vae_2d dcgan infogan; do
    timeout 120 "$bin/graphc" run "graphs/$model.g" --device cuda --max-steps 50 --out "$out/run_$model" 2>&1 |
        grep -E "device:|step 50|error|done" | tail -3
done

echo "== where InfoGAN's device time goes (GRAPHC_PROFILE=1: CUDA events around every launch group; 30 iterations)"
GRAPHC_PROFILE=1 timeout 120 "$bin/graphc" run graphs/infogan.g --device cuda --max-steps 30 --out "$out/profile_infogan" 2>&1 |
    grep -E "^profile:|^step 30 |error" | tee "$out/profile_infogan.txt"

echo "== what CUDA graphs save, and what reading the losses back after every step costs (images/s over the last log interval before iteration 200)"
for model in vae infogan; do
    for mode in log step; do
        for graphs in 1 0; do
            rate=$(GRAPHC_CUDA_GRAPHS=$graphs timeout 120 "$bin/graphc" run "graphs/$model.g" --device cuda --max-steps 200 \
                --loss-readback "$mode" --out "$out/readback_${model}_${mode}_$graphs" 2>&1 | grep -E "^step 200 " | grep -oE "[0-9]+ img/s")
            echo "$model --loss-readback $mode GRAPHC_CUDA_GRAPHS=$graphs: ${rate:-failed}"
        done
    done
done | tee "$out/readback.txt"

echo "== training images/s, graphc vs PyTorch, same GPU, FP32"
printf "%-8s %6s %12s %12s %8s\n" model batch graphc pytorch ratio
for model in vae dcgan infogan; do
    for batch in 64 128; do
        ours=$(timeout 120 "$bin/peer_step" "$model" "$batch" "$iterations" train cuda 2>>"$out/bench_errors.txt" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_sec"])' 2>/dev/null || echo nan)
        theirs=$(timeout 120 python3 benches/peers/models.py "$model" "$batch" "$iterations" 1 train cuda 2>>"$out/bench_errors.txt" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_sec"])' 2>/dev/null || echo nan)
        python3 -c "import sys; a, b = float('$ours'), float('$theirs'); print('%-8s %6s %12.0f %12.0f %8s' % ('$model', '$batch', a, b, 'x%.2f' % (a / b) if b == b and b > 0 else '-'))"
    done
done | tee "$out/bench.txt"
