# Shared by run-step.sh and run-cka.sh (sourced from the repository root):
# the PyTorch environment, one criterion bench on one backend, and the table
# of medians and ratios.

# The virtual environment with PyTorch 2.9.0 from PyPI, made once
# (UNTRAINABLE_TORCH_VENV, default target/torch-venv; ~7 GB); sets $venv.
torch_venv() {
    venv="$(realpath -m "${UNTRAINABLE_TORCH_VENV:-target/torch-venv}")"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
        echo "installing PyTorch 2.9.0 into $venv (once)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "torch==2.9.0" numpy
    fi
}

# run_bench BACKEND PACKAGE BENCH FILTER THREADS WORK: the criterion bench
# BENCH of PACKAGE on BACKEND, its results copied to WORK/BACKEND (the next
# backend writes the same criterion paths). flex is the default build;
# ndarray (with the system OpenBLAS, libopenblas-dev) and tch-cpu (burn
# against the venv's torch wheel, LIBTORCH_USE_PYTORCH=1) build in
# target/blas and target/tch, so that the default build is not replaced.
run_bench() {
    local backend="$1" package="$2" bench="$3" filter="$4" threads="$5" work="$6" target
    case "$backend" in
    flex)
        target="$PWD/target"
        RAYON_NUM_THREADS="$threads" cargo test --workspace --bench "$bench" -- --bench ${filter:+"$filter"} >&2
        ;;
    ndarray)
        target="$PWD/target/blas"
        CARGO_TARGET_DIR="$target" UNTRAINABLE_BACKEND=ndarray RAYON_NUM_THREADS="$threads" \
            OPENBLAS_NUM_THREADS="$threads" cargo test -p "$package" \
            --features untrainable-core/openblas --bench "$bench" -- --bench ${filter:+"$filter"} >&2
        ;;
    tch-cpu)
        target="$PWD/target/tch"
        local torch_lib
        torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')/lib"
        PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib" \
            CARGO_TARGET_DIR="$target" UNTRAINABLE_BACKEND=tch-cpu OMP_NUM_THREADS="$threads" \
            cargo test -p "$package" --features untrainable-kernels/tch --bench "$bench" -- --bench ${filter:+"$filter"} >&2
        ;;
    *)
        echo "unknown backend '$backend': expected flex, ndarray or tch-cpu" >&2
        return 2
        ;;
    esac
    mkdir "$work/$backend"
    cp -r "$target/criterion/." "$work/$backend/"
}

# ratio_table TORCH_JSONL WORK BACKEND...: every PyTorch median beside each
# backend's criterion median and their ratios; rows with GFLOP/s alone.
ratio_table() {
    python3 - "$@" <<'PY'
import json, pathlib, sys
torch = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if "gflops" in row:
        print(f"{row['bench']:56} {row['gflops']:9.1f} GFLOP/s")
    elif "bench" in row:
        torch[row["bench"]] = row["median_s"]
work, backends = pathlib.Path(sys.argv[2]), sys.argv[3:]
header = "".join(f" {b:>10}" for b in backends) + f" {'torch':>10}"
header += "".join(f" {'torch/' + b:>14}" for b in backends)
print(f"{'benchmark':56}{header}")
for bench, t in torch.items():
    times = []
    for backend in backends:
        estimates = work / backend / bench / "new/estimates.json"
        times.append(json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9)
    row = "".join(f" {s:9.4f}s" for s in times) + f" {t:9.4f}s"
    row += "".join(f" {t / s:13.2f}x" for s in times)
    print(f"{bench:56}{row}")
PY
}

# compare TWIN PACKAGE BENCH FILTER [threads] [backend ...]: the PyTorch twin
# benches/reference/TWIN, then the criterion bench on each backend (flex by
# default), one after the other on the same thread count (2 by default), then
# the table.
compare() {
    local twin="$1" package="$2" bench="$3" filter="$4"
    shift 4
    local threads="${1:-2}"
    shift || true
    local backends=("${@:-flex}") work backend
    torch_venv
    work="$(mktemp -d)"
    trap "rm -rf '$work'" EXIT
    OMP_NUM_THREADS="$threads" "$venv/bin/python" "benches/reference/$twin" --threads "$threads" |
        tee "$work/torch.jsonl" >&2
    for backend in "${backends[@]}"; do
        run_bench "$backend" "$package" "$bench" "$filter" "$threads" "$work"
    done
    ratio_table "$work/torch.jsonl" "$work" "${backends[@]}"
}
