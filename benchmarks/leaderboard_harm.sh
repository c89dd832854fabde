#!/bin/sh
# The leaderboard's harm tables: 8 defenses x the three attacks that aim to hurt (accumulative, dirty-label
# backdoor, targeted) x 3 seeds on scenarios/leaderboard.toml, then `streamsim report`, which writes
# leaderboard.md, leaderboard.csv and leaderboard.png into the sweep directory. Copy those (and results.csv,
# sweep.json) into benchmarks/results/leaderboard-harm/ to update the README (tests/test_leaderboard.py checks
# the README's harm tables against them).
# Usage: benchmarks/leaderboard_harm.sh [OUT_DIR] [extra sweep options, e.g. --resume]
set -eu
OUT="${1:-runs/leaderboard-harm}"
[ $# -gt 0 ] && shift
STREAMSIM="${STREAMSIM:-streamsim}"
$STREAMSIM sweep leaderboard --seeds 0,1,2 --jobs "${JOBS:-2}" --out "$OUT" "$@" \
  --grid 'defense={name = "none"},{name = "oracle"},{name = "depois", params = {preset = "fast", condition = "claimed", k = 1.0}},{name = "knn"},{name = "centroid"},{name = "loss-trim"},{name = "roni"},{name = "spectral"}' \
  --grid 'attackers.0.attack={name = "accumulative", params = {eps = 0.3, steps = 3, trigger_at = 18.0, trigger_size = 64}},{name = "backdoor", params = {target = 0, size = 7}},{name = "targeted", params = {target = 9, source_class = 4, n_victims = 10, eps = 0.5, steps = 10}}'
$STREAMSIM report "$OUT"
