#!/usr/bin/env bash
# Does bf16 autocast training keep the quality of fp32? Same config, same number of steps,
# several seeds per variant, all runs at once on one GPU (they are launch-bound, so they
# share it well), then test2016 BLEU with beam 5 (decoded in fp32) for each:
#   bash benchmarks/precision_quality.sh [MULTI30K_DIR] [OUT_DIR] [STEPS] [SEEDS] \
#       [NAME_A "KEY=VALUE ..." NAME_B "KEY=VALUE ..."]
# The two variants default to fp32 and bf16 (training.precision); any two sets of config
# overrides can be compared instead (e.g. model.output_vocab=seen against =all).
# Prints one line per run and the mean BLEU per variant. Needs a CUDA GPU.
set -u
DATA=${1:-../shared/data/multi30k}
OUT=${2:-runs/precision-quality}
STEPS=${3:-1200}
SEEDS=${4:-3}
declare -A SETS=(["${5:-fp32}"]="${6:-training.precision=fp32}" ["${7:-bf16}"]="${8:-training.precision=bf16}")
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

for variant in "${!SETS[@]}"; do
    overrides=()
    for kv in ${SETS[$variant]}; do overrides+=(--set "$kv"); done
    for seed in $(seq 1 "$SEEDS"); do
        run="$OUT/$variant-seed$seed"
        (
            $PY -m softalign train configs/multi30k-en-de.yaml -o "$run" --data-dir "$DATA" \
                --device cuda --no-progress --max-steps "$STEPS" \
                "${overrides[@]}" --set training.seed=$seed \
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
by_variant = {}
for path in sorted(out.glob("*.json")):
    text = path.read_text().strip()
    if not text:
        print(f"{path.stem}: no result (see {path.with_suffix('.log')})")
        continue
    result = json.loads(text)
    by_variant.setdefault(path.stem.rsplit("-seed", 1)[0], []).append(result["bleu"])
    print(f"{path.stem}: BLEU {result['bleu']:.2f} after {steps} steps")
for variant, scores in by_variant.items():
    spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
    print(f"{variant}: mean BLEU {statistics.mean(scores):.2f} ± {spread:.2f} over {len(scores)} seeds")
PYEOF
