#!/usr/bin/env bash
# Does bf16 autocast training keep the quality of fp32? Same config, same number of steps,
# several seeds per precision, all runs at once on one GPU (they are launch-bound, so they
# share it well), then test2016 BLEU with beam 5 (decoded in fp32) for each:
#   bash benchmarks/precision_quality.sh [MULTI30K_DIR] [OUT_DIR] [STEPS] [SEEDS]
# Prints one line per run and the mean BLEU per precision. Needs a CUDA GPU.
set -u
DATA=${1:-../shared/data/multi30k}
OUT=${2:-runs/precision-quality}
STEPS=${3:-1200}
SEEDS=${4:-3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

for precision in fp32 bf16; do
    for seed in $(seq 1 "$SEEDS"); do
        run="$OUT/$precision-seed$seed"
        (
            $PY -m softalign train configs/multi30k-en-de.yaml -o "$run" --data-dir "$DATA" \
                --device cuda --no-progress --max-steps "$STEPS" \
                --set training.precision=$precision --set training.seed=$seed \
                --set training.valid_every=100000 --set training.checkpoint_every=100000 \
                >"$run.log" 2>&1 &&
            $PY -m softalign evaluate "$run" --src "$DATA/test_2016_flickr.en.gz" \
                --ref "$DATA/test_2016_flickr.de.gz" --beam 5 --precision fp32 --device cuda \
                --json >"$run.json" 2>>"$run.log"
        ) &
    done
done
wait

$PY - "$OUT" "$STEPS" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out, steps = Path(sys.argv[1]), sys.argv[2]
by_precision = {}
for path in sorted(out.glob("*.json")):
    text = path.read_text().strip()
    if not text:
        print(f"{path.stem}: no result (see {path.with_suffix('.log')})")
        continue
    result = json.loads(text)
    by_precision.setdefault(path.stem.split("-")[0], []).append(result["bleu"])
    print(f"{path.stem}: BLEU {result['bleu']:.2f} after {steps} steps")
for precision, scores in by_precision.items():
    spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
    print(f"{precision}: mean BLEU {statistics.mean(scores):.2f} ± {spread:.2f} over {len(scores)} seeds")
PYEOF
