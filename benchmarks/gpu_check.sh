#!/usr/bin/env bash
# The GPU check: run once on a machine with a CUDA GPU (under 8 minutes on one H100/H200), then
# commit the figures it writes under benchmarks/results/: the *_cuda.json files beside the CPU ones
# (search_speed_cuda.json, train_speed_cuda.json, recognizer_speed_cuda.json, their PNGs) and
# gpu_check.log. They never overwrite the CPU results the README quotes.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, in the project's environment
#
# 1. the test suite's CUDA paths (GPU augmentation, FAISS GPU copy and sharding, re-ranked GPU search,
#    CUDA device choice) and the plug-in contract, on the GPU machine;
# 2. bf16 autocast + channels_last training steps of every task (`train.device=cuda`, 3 steps each);
# 3. FAISS on the GPU: gallery search speed and recall (uniform 10k/100k; face-like 100k: exact and
#    the fixed-rule indexes, not the minutes-long recall tuning);
# 4. train_speed (DR-GAN, DVG-Face, TSGAN) and recognizer_speed on CUDA.
# A step that fails or times out is reported and the next one still runs (device time is scarce);
# the script exits 1 at the end if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
log=benchmarks/results/gpu_check.log
exec > >(tee "$log") 2>&1
start=$(date +%s)
stamp() { echo "== $(($(date +%s) - start)) s: $*"; }
failed=()
check() { # check NAME COMMAND...: run one step, note its failure, go on
  local name=$1
  shift
  if ! "$@"; then
    echo "!! step failed: $name"
    failed+=("$name")
  fi
}

python - <<'EOF' || exit 1
import torch, faiss
assert torch.cuda.is_available(), "no CUDA device: run this on the GPU machine"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("faiss", faiss.__version__, "GPUs seen by FAISS:", faiss.get_num_gpus())
EOF

stamp "1. CUDA tests (GPU augmentation, FAISS GPU, device choice) and the task contract"
check "CUDA tests" timeout 240 python -m pytest -q -p no:cacheprovider tests/data/test_augment.py \
  tests/gallery/test_gallery_index.py tests/gallery/test_gallery_kinds.py tests/gallery/test_gallery_rerank.py \
  tests/engine/test_engine_task.py tests/test_machine.py tests/engine/test_task_contract.py -k "not gloo"

stamp "2. bf16 + channels_last training steps of every task on CUDA"
check "bf16 steps" timeout 180 python - <<'EOF'
import sys, tempfile
from pathlib import Path
sys.path[:0] = ["tests", "tests/data"]
from task_contract_recipes import VARIANTS, write_contract_data
from hfr.engine import get_task, train
with tempfile.TemporaryDirectory() as tmp:
    data = write_contract_data(Path(tmp) / "data")
    for v in VARIANTS:
        cfg = v.config(data, 3, ("train.device=cuda", "train.amp=bf16", "train.channels_last=true"))
        task = get_task(v.task)()
        result = train(task, cfg, recipe=v.name, runs_root=Path(tmp) / "runs")
        assert task.ctx.device.type == "cuda" and task.ctx.amp, v.name
        print(f"{v.name:28s} 3 steps on {task.ctx.device} bf16: {v.falling} {result['logs'].get(v.falling):.4f}")
EOF

stamp "3. FAISS on the GPU: search speed"
check "search_speed" timeout 150 python benchmarks/search_speed.py --sizes 10k,100k --face-sizes 100k \
  --face-methods flat,ivf,ivfpq-32,ivfpq-64 --gpu --out benchmarks/results/search_speed_cuda.json

stamp "4. training and recognizer speed on CUDA"
check "train_speed" timeout 150 python benchmarks/train_speed.py --device cuda --methods drgan,dvg,tsgan --steps 5 \
  --out benchmarks/results/train_speed_cuda.json
check "recognizer_speed" timeout 60 python benchmarks/recognizer_speed.py --device cuda --rounds 3 \
  --out benchmarks/results/recognizer_speed_cuda.json

stamp "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed steps: ${failed[*]}"
  exit 1
fi
