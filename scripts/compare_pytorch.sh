#!/usr/bin/env bash
# graphc against PyTorch (and numpy) on the CPU, side by side in one run. Three tables:
#   training  the three models (PyTorch versions in benches/peers/models.py), same batch,
#             optimizer and thread count: images/s (the better of two runs), the ratio, and each
#             process's peak memory (maximum resident set size);
#   generation  the same models' generators alone (no gradients), images/s and the ratio;
#   gemm      the runtime's GEMM (benches/gemm.rs) against numpy's OpenBLAS
#             (benches/peers/gemm.py) at the models' shapes, GFLOP/s and the ratio;
#   conv      every model convolution's three passes (benches/conv.rs) against PyTorch's
#             (benches/peers/conv.py) at batch 64, milliseconds and the speed ratio.
# graphc and its peer run alternately (graphc, peer, graphc, peer) so both see the same machine.
#
#   scripts/compare_pytorch.sh [THREADS] [BATCH] [MODELS...]     (default: 2 64 vae dcgan infogan)
#   TABLES="training generation gemm conv" (the default) selects tables.
#
# PyTorch and numpy come from $TORCH_PYTHON, else .venv-peers/ (created with `pip install torch
# numpy threadpoolctl` when missing: the PyPI wheels, which run on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batch=${2:-64}
shift $(( $# > 2 ? 2 : $# ))
models=("$@")
[[ ${#models[@]} -eq 0 ]] && models=(vae dcgan infogan)
tables=${TABLES:-training generation gemm conv}

py=${TORCH_PYTHON:-.venv-peers/bin/python}
if ! "$py" -c "import torch, numpy" 2>/dev/null; then
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -q torch numpy threadpoolctl
    py=.venv-peers/bin/python
fi
cargo bench --bench peer_step --bench gemm --bench conv --no-run --quiet 2>/dev/null

# Iterations per timed run, so that each takes a few seconds.
iterations() {
    case $1/$2 in vae/train) echo 200 ;; dcgan/train) echo 6 ;; */train) echo 12 ;; *) echo 40 ;; esac
}

# run WHO MODEL MODE: one timed run; prints "images_per_sec peak_kb".
run() {
    local who=$1 model=$2 mode=$3 n out
    n=$(iterations "$model" "$mode")
    out=$(mktemp)
    if [[ $who == graphc ]]; then
        RAYON_NUM_THREADS=$threads /usr/bin/time -f "%M" -o "$out.mem" \
            cargo bench --quiet --bench peer_step -- "$model" "$batch" "$n" "$mode" > "$out"
    else
        OMP_NUM_THREADS=$threads /usr/bin/time -f "%M" -o "$out.mem" \
            "$py" benches/peers/models.py "$model" "$batch" "$n" "$threads" "$mode" > "$out"
    fi
    python3 -c "import json,sys; print(json.load(open('$out'))['images_per_sec'])" | tr '\n' ' '
    tail -1 "$out.mem"
    rm -f "$out" "$out.mem"
}

# models_table MODE: one row per model, the better of two alternating runs of each.
models_table() {
    local mode=$1 model g gm t tm best_g best_t mem_g mem_t
    for model in "${models[@]}"; do
        best_g=0 best_t=0 mem_g=0 mem_t=0
        for _ in 1 2; do
            read -r g gm < <(run graphc "$model" "$mode")
            read -r t tm < <(run torch "$model" "$mode")
            best_g=$(python3 -c "print(max($best_g, $g))"); mem_g=$(( gm > mem_g ? gm : mem_g ))
            best_t=$(python3 -c "print(max($best_t, $t))"); mem_t=$(( tm > mem_t ? tm : mem_t ))
        done
        python3 -c "print(f'| $model | $batch | {$best_g:,.0f} | {$best_t:,.0f} | ×{$best_g / $best_t:.2f} | {$mem_g / 1024:,.0f} | {$mem_t / 1024:,.0f} |')"
    done
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); threads: $threads; batch: $batch; $("$py" -c 'import torch; print("PyTorch", torch.__version__)')"
for table in $tables; do
    echo
    case $table in
    training | generation)
        mode=$([[ $table == training ]] && echo train || echo generate)
        echo "$table:"
        echo
        echo "| model | batch | graphc images/s | PyTorch images/s | graphc / PyTorch | graphc peak MB | PyTorch peak MB |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        models_table "$mode"
        ;;
    gemm)
        ours=$(mktemp) theirs=$(mktemp)
        for round in 1 2; do
            RAYON_NUM_THREADS=$threads cargo bench --quiet --bench gemm -- --json graphc >> "$ours"
            shapes=$(python3 -c "import json, sys
seen = dict.fromkeys(f\"{r['m']}x{r['k']}x{r['n']}\" for r in map(json.loads, open(sys.argv[1])))
print(' '.join(seen))" "$ours")
            # shellcheck disable=SC2086 # one argument per shape
            OPENBLAS_NUM_THREADS=$threads "$py" benches/peers/gemm.py $shapes >> "$theirs" 2> "$theirs.info"
        done
        echo "GEMM, GFLOP/s (the better of two runs; numpy: $(head -1 "$theirs.info")):"
        echo
        "$py" - "$ours" "$theirs" <<'EOF'
import json, sys
def best(path, keep):
    rows = {}
    for line in open(path):
        r = json.loads(line)
        if keep(r["name"]):
            key = (r["m"], r["k"], r["n"], r["name"])
            rows[key] = max(rows.get(key, 0), r["gflops"])
    return rows
ours = best(sys.argv[1], lambda name: True)
theirs = {(m, k, n): g for (m, k, n, _), g in best(sys.argv[2], lambda name: True).items()}
names = sorted({name for (*_, name) in ours})
print("| m×k×n | " + " | ".join(names) + " | numpy | best graphc / numpy |")
print("|---|" + "---:|" * (len(names) + 2))
for shape, numpy in theirs.items():
    mine = [ours.get((*shape, name), 0) for name in names]
    cells = " | ".join(f"{g:.0f}" for g in mine)
    print(f"| {shape[0]}×{shape[1]}×{shape[2]} | {cells} | {numpy:.0f} | ×{max(mine) / numpy:.2f} |")
EOF
        rm -f "$ours" "$theirs" "$theirs.info"
        ;;
    conv)
        ours=$(mktemp) theirs=$(mktemp)
        for round in 1 2; do
            RAYON_NUM_THREADS=$threads cargo bench --quiet --bench conv -- --json >> "$ours"
            "$py" benches/peers/conv.py "$threads" "$ours" >> "$theirs"
        done
        echo "Convolutions at batch 64, milliseconds (the better of two runs):"
        echo
        "$py" - "$ours" "$theirs" <<'EOF'
import json, sys
def best(path):
    rows = {}
    for r in map(json.loads, open(path)):
        key = (r["layer"], r["pass"])
        rows[key] = min(rows.get(key, float("inf")), r["ms"])
    return rows
ours, theirs = best(sys.argv[1]), best(sys.argv[2])
print("| layer | pass | graphc ms | PyTorch ms | graphc speed / PyTorch |")
print("|---|---|---:|---:|---:|")
for (layer, pass_name), mine in ours.items():
    peer = theirs[(layer, pass_name)]
    print(f"| {layer} | {pass_name} | {mine:.2f} | {peer:.2f} | ×{peer / mine:.2f} |")
EOF
        rm -f "$ours" "$theirs"
        ;;
    esac
done
