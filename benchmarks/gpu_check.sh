#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA GPU and PyTorch (no network needed; run from the
# repository root, with softalign installed or importable from src/):
#   bash benchmarks/gpu_check.sh [MULTI30K_DIR] [OUT_DIR] [MINUTES]
# 1. the CUDA tests: fp32/bf16/fp16 training, fp16 resume with its loss scale, the same loss
#    and translations on the GPU as on the CPU, the chunked generator loss in fp32/bf16/fp16,
#    decoder gradients GPU = CPU, bf16/fp16 decoding (tests/unit/test_cuda.py);
# 2. training throughput on Multi30k En->De (configs/multi30k-en-de.yaml, the CPU model and
#    batch), fp32 and bf16, 300 steps each;
# 3. time to 32 BLEU on test2016 (beam 5) with bf16 for a MINUTES-minute budget (default 3),
#    every 200-step checkpoint translated (benchmarks/time_to_bleu.py);
# 4. the budget recipe (configs/multi30k-en-de-15min.yaml: cosine to the deadline, the last
#    checkpoints averaged) on a MINUTES-minute GPU budget in bf16, its average scored on
#    test2016 with beam 5.
set -u
DATA=${1:-../shared/data/multi30k}
OUT=${2:-runs/gpu-check}
MINUTES=${3:-3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

nvidia-smi -L
$PY -c "import torch, sentencepiece, sacrebleu; print('torch', torch.__version__, torch.cuda.get_device_name(), '| sacrebleu', sacrebleu.__version__)"

echo "== CUDA tests"
timeout 240 $PY -m pytest -q -p no:cacheprovider -rs tests/unit/test_cuda.py 2>&1 | tail -n 15

echo "== training throughput (300 steps)"
for precision in fp32 bf16; do
    timeout 150 $PY -m softalign train configs/multi30k-en-de.yaml -o "$OUT/speed-$precision" \
        --data-dir "$DATA" --device cuda --no-progress --max-steps 300 \
        --set training.precision=$precision --set training.valid_every=100000 \
        --set training.checkpoint_every=100000 2>&1 | tail -n 2
    $PY - "$OUT/speed-$precision/metrics.jsonl" "$precision" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(x) for x in open(sys.argv[1])]
speeds = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][2:]
print(f"{sys.argv[2]}: median {statistics.median(speeds):,.0f} target tokens/s over {len(speeds)} reports")
PYEOF
done

echo "== time to 32 BLEU (bf16, $MINUTES minutes)"
timeout $((MINUTES * 60 + 240)) $PY benchmarks/time_to_bleu.py configs/multi30k-en-de.yaml \
    -o "$OUT/time-to-bleu" --minutes "$MINUTES" --every 200 --target 32 --device cuda \
    --data-dir "$DATA" --set training.precision=bf16 2>&1 | grep -v "^[0-9:]* train: \|^[0-9:]* step"

echo "== the budget recipe (bf16, $MINUTES minutes), its average on test2016"
timeout $((MINUTES * 60 + 120)) $PY -m softalign train configs/multi30k-en-de-15min.yaml \
    -o "$OUT/recipe" --data-dir "$DATA" --device cuda --no-progress \
    --set training.max_minutes="$MINUTES" --set training.precision=bf16 \
    --set training.checkpoint_every=200 2>&1 | tail -n 2
timeout 120 $PY -m softalign evaluate "$OUT/recipe/averaged" --device cuda --beam 5 --json \
    --src "$DATA/test_2016_flickr.en.gz" --ref "$DATA/test_2016_flickr.de.gz"
