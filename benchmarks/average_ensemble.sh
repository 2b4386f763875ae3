#!/usr/bin/env bash
# What checkpoint averaging and a 2-model ensemble add on Multi30k En->De test2016 (beam 5).
#
#   bash benchmarks/average_ensemble.sh [MINUTES] [WORKDIR]
#
# Trains configs/multi30k-en-de.yaml twice (seeds 1 and 2) side by side, one CPU thread each,
# for MINUTES (default 12) of wall clock, a checkpoint every 50 steps (the last 5 kept: the last quarter of ~1,000 steps); then
# `softalign average --last 5` of each (and training.average_last=5: the last K <= 5, K chosen on
# the validation loss, in RUN/averaged), and scores on test_2016_flickr (cased sacreBLEU, chrF):
# each run's latest checkpoint, its average of the last 5, the ensemble of the two latest and
# the ensemble of the two averages. Prints one Markdown table (also WORKDIR/table.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes=${1:-12}
work=${2:-runs/average-ensemble}
data=${SOFTALIGN_DATA:-../shared/data}/multi30k
sa=.venv/bin/softalign
[ -f "$data/test_2016_flickr.en.gz" ] || { echo "needs $data (see ../shared/data/README.md)" >&2; exit 2; }
mkdir -p "$work"

for seed in 1 2; do
  [ -d "$work/seed$seed" ] && continue
  OMP_NUM_THREADS=1 $sa train configs/multi30k-en-de.yaml -o "$work/seed$seed" --no-progress \
    --set training.seed=$seed --set training.max_minutes="$minutes" --set training.threads=1 \
    --set training.checkpoint_every=50 --set training.keep_checkpoints=5 \
    --set training.average_last=5 \
    > "$work/seed$seed.log" 2>&1 &
done
wait
for seed in 1 2; do
  [ -d "$work/seed$seed-avg5" ] || $sa average "$work/seed$seed" --last 5 -o "$work/seed$seed-avg5"
done

# score NAME RUN_DIR...: translate test2016 with beam 5 (several runs: their ensemble)
score() {
  local name=$1
  shift
  $sa translate "$@" -i "$data/test_2016_flickr.en.gz" -o "$work/$name.hyp" --beam 5 2>>"$work/translate.log"
  .venv/bin/python - "$work/$name.hyp" "$data/test_2016_flickr.de.gz" "$name" <<'EOF'
import gzip, sys
from softalign.metrics import score_corpus
hyp = open(sys.argv[1], encoding="utf-8").read().splitlines()
ref = gzip.open(sys.argv[2], "rt", encoding="utf-8").read().splitlines()
s = score_corpus(hyp, ref)
print(f"| {sys.argv[3]} | {s.bleu:.2f} | {s.chrf:.2f} |")
EOF
}

{
  echo "| model (test2016, beam 5) | BLEU | chrF |"
  echo "| --- | ---: | ---: |"
  for seed in 1 2; do
    score "seed $seed, latest checkpoint" "$work/seed$seed"
    score "seed $seed, average of the last 5" "$work/seed$seed-avg5"
    score "seed $seed, average of the last K, K chosen on validation" "$work/seed$seed/averaged"
  done
  score "ensemble of the two latest" "$work/seed1" "$work/seed2"
  score "ensemble of the two averages" "$work/seed1-avg5" "$work/seed2-avg5"
} | tee "$work/table.md"
