#!/bin/sh
# The leaderboard's harm tables: 8 defenses x the three attacks that aim to hurt (accumulative, dirty-label
# backdoor, targeted) x 3 seeds on scenarios/leaderboard.toml, through experiments/leaderboard.sh (sweep, then
# `streamsim report`). Copy leaderboard.md, leaderboard.csv, figures/leaderboard.png, results.csv and sweep.json
# into experiments/results/leaderboard-harm/ to update docs/studies/harm.md (tests/test_leaderboard.py checks it).
# Usage: experiments/leaderboard_harm.sh [OUT_DIR] [extra sweep options, e.g. --resume]
set -eu
OUT="${1:-runs/leaderboard-harm}"
[ $# -gt 0 ] && shift
ATTACKS='{name = "accumulative", params = {eps = 0.3, steps = 3, trigger_at = 18.0, trigger_size = 64}},{name = "backdoor", params = {target = 0, size = 7}},{name = "targeted", params = {target = 9, source_class = 4, n_victims = 10, eps = 0.5, steps = 10}}' \
  exec sh "$(dirname "$0")/leaderboard.sh" "$OUT" "$@"
