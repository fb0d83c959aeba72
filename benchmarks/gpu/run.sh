#!/usr/bin/env bash
# The real-data protocol on the GPU machine, in one call of the device tool (see docs/gpu.md):
#   run(command="bash benchmarks/gpu/run.sh", carry=["benchmarks/gpu/bundle"], timeout_s=570)
# Needs only python3 with torch, transformers, torch-geometric, accelerate, numpy, pyyaml,
# safetensors and tqdm: no spaCy, no network, kgfuse not installed (run_gpu.py puts a
# kgfuse/ shim on sys.path when `import kgfuse.kg` fails). Extra arguments go to run_gpu.py,
# e.g. `bash benchmarks/gpu/run.sh --dataset csqa --seeds 0 --time-budget 200`.
# Writes into $OUT (at most 8 files come back): results.json, results.md, log.txt, env.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/kgfuse-gpu-out}"
BUNDLE="${KGFUSE_GPU_BUNDLE:-benchmarks/gpu/bundle}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
{
  date -u +%FT%TZ; uname -m; nproc
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c 'import sys, torch, transformers, torch_geometric, accelerate; print(sys.version.split()[0], torch.__version__, torch.version.cuda, transformers.__version__, torch_geometric.__version__, accelerate.__version__)' 2>&1
  python3 -c 'import spacy' 2>&1 | tail -n 1
} > "$OUT/env.txt"
if [ ! -f "$BUNDLE/manifest.json" ]; then
  echo "$BUNDLE is missing: build it with make_bundle.py and name it in carry" | tee "$OUT/log.txt"
  exit 2
fi
# --node-vocab train: the node table holds the training concepts only (docs/benchmarks.md); the
# timing phase still measures the full-table model too. `--node-vocab all` (later wins) undoes it.
python3 benchmarks/gpu/run_gpu.py --bundle "$BUNDLE" --out "$OUT" --work /tmp/kgfuse-gpu-work --node-vocab train "$@" 2>&1 \
  | grep --line-buffered -v -e 'Loading weights:' | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
