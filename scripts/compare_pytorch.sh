#!/usr/bin/env bash
# graphc against PyTorch on the CPU, side by side in one run: the same three models (PyTorch
# versions in benches/peers/models.py), the same batch, optimizer and thread count, run
# alternately (graphc, PyTorch, graphc, PyTorch) so that both see the same machine state. Prints a
# Markdown table: images/s of each (the better of two runs), the ratio, and each one's peak
# memory (maximum resident set size of its process).
#
#   scripts/compare_pytorch.sh [THREADS] [BATCH] [MODELS...]     (default: 2 64 vae dcgan infogan)
#
# PyTorch comes from $TORCH_PYTHON, else .venv-peers/ (created with `pip install torch` when it is
# missing: the PyPI wheel, which runs on the CPU whatever CUDA libraries it brings).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batch=${2:-64}
shift $(( $# > 2 ? 2 : $# ))
models=("${@:-vae dcgan infogan}")
[[ $# -eq 0 ]] && models=(vae dcgan infogan)

py=${TORCH_PYTHON:-.venv-peers/bin/python}
if ! "$py" -c "import torch" 2>/dev/null; then
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -q torch
    py=.venv-peers/bin/python
fi
cargo bench --bench peer_step --no-run --quiet 2>/dev/null

# Iterations per timed run, so that each takes a few seconds.
iterations() {
    case $1 in vae) echo 200 ;; dcgan) echo 6 ;; *) echo 12 ;; esac
}

# run WHAT MODEL: one timed run; prints "images_per_sec peak_kb".
run() {
    local what=$1 model=$2 n out
    n=$(iterations "$model")
    out=$(mktemp)
    if [[ $what == graphc ]]; then
        RAYON_NUM_THREADS=$threads /usr/bin/time -f "%M" -o "$out.mem" \
            cargo bench --quiet --bench peer_step -- "$model" "$batch" "$n" > "$out"
    else
        OMP_NUM_THREADS=$threads /usr/bin/time -f "%M" -o "$out.mem" \
            "$py" benches/peers/models.py "$model" "$batch" "$n" "$threads" > "$out"
    fi
    python3 -c "import json,sys; print(json.load(open('$out'))['images_per_sec'])" | tr '\n' ' '
    tail -1 "$out.mem"
    rm -f "$out" "$out.mem"
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); threads: $threads; batch: $batch; $("$py" -c 'import torch; print("PyTorch", torch.__version__)')"
echo
echo "| model | batch | graphc images/s | PyTorch images/s | graphc / PyTorch | graphc peak MB | PyTorch peak MB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for model in "${models[@]}"; do
    best_g=0 best_t=0 mem_g=0 mem_t=0
    for _ in 1 2; do
        read -r g gm < <(run graphc "$model")
        read -r t tm < <(run torch "$model")
        best_g=$(python3 -c "print(max($best_g, $g))"); mem_g=$(( gm > mem_g ? gm : mem_g ))
        best_t=$(python3 -c "print(max($best_t, $t))"); mem_t=$(( tm > mem_t ? tm : mem_t ))
    done
    python3 -c "print(f'| $model | $batch | {$best_g:,.0f} | {$best_t:,.0f} | ×{$best_g / $best_t:.2f} | {$mem_g / 1024:,.0f} | {$mem_t / 1024:,.0f} |')"
done
