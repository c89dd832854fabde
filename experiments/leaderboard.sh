#!/bin/sh
# Regenerates the leaderboard of docs/studies/leaderboard.md: 8 defenses x 6 attacks x 3 seeds on scenarios/leaderboard.toml,
# then `streamsim report`, which writes leaderboard.md, leaderboard.csv and leaderboard.png into the sweep
# directory. Copy those (and results.csv, sweep.json) into experiments/results/leaderboard/ to update the
# docs page (tests/test_leaderboard.py checks its table against them).
# Usage: experiments/leaderboard.sh [OUT_DIR] [extra sweep options, e.g. --resume]
# ATTACKS (the attackers.0.attack grid values) replaces the six attacks: experiments/leaderboard_harm.sh sets it.
set -eu
OUT="${1:-runs/leaderboard}"
[ $# -gt 0 ] && shift
STREAMSIM="${STREAMSIM:-streamsim}"
SIX_ATTACKS='{name = "label-flip", params = {mode = "permutation"}},{name = "noise", params = {scale = 0.5}},{name = "fgsm", params = {knowledge = "white-box", eps = 0.3, mode = "critic-classifier"}},{name = "fgsm", params = {knowledge = "posteriors", eps = 0.3, mode = "critic-classifier", shadow = {classifier = "small-cnn", points = 1000, epochs = 3, critic_epochs = 30}}},{name = "adaptive", params = {knowledge = "verdicts", surrogate_epochs = 3}},{name = "adaptive", params = {knowledge = "effects", surrogate_epochs = 3}}'
ATTACKS="${ATTACKS:-$SIX_ATTACKS}"
$STREAMSIM sweep leaderboard --seeds 0,1,2 --jobs "${JOBS:-2}" --out "$OUT" "$@" \
  --grid 'defense={name = "none"},{name = "oracle"},{name = "depois", params = {preset = "fast", condition = "claimed", k = 1.0}},{name = "knn"},{name = "centroid"},{name = "loss-trim"},{name = "roni"},{name = "spectral"}' \
  --grid "attackers.0.attack=$ATTACKS"
$STREAMSIM report "$OUT"
