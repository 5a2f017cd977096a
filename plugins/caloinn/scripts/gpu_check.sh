#!/usr/bin/env bash
# GPU check of caloinn and caloinn-vae (issue 11): train both quick presets on a CUDA device with
# mixed precision (the training base's autocast + gradient scaling on CUDA), then time generation
# at batch 10,000 with `calobench bench` (one warm-up, then timed rounds; the INN also samples under
# autocast). Published GPU figures on DS1 photons (CaloChallenge 2022): CaloINN 0.19 ms/shower,
# CaloVAE+INN 0.26 ms/shower.
#
#   bash plugins/caloinn/scripts/gpu_check.sh              # on the GPU machine: a few minutes
#   DEVICE=cpu PRESET=smoke BATCH=100 AMP=false bash plugins/caloinn/scripts/gpu_check.sh   # dry run
#
# Needs the synthetic-ds1-photons data set (made on first use; CALOBENCH_DATA chooses where).
set -euo pipefail
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-quick}
BATCH=${BATCH:-10000}
AMP=${AMP:-true}
OUT=${OUT:-runs/caloinn-gpu}
DATASET=${DATASET:-synthetic-ds1-photons}

# the INN trains in one stage (`amp`), the VAE+INN in two (`vae_amp`, `inn_amp`); `calobench train`
# prints each training's wall time
calobench train caloinn --dataset "$DATASET" --preset "$PRESET" --device "$DEVICE" \
    --set amp="$AMP" --out "$OUT/caloinn-seed0" --force
calobench train caloinn-vae --dataset "$DATASET" --preset "$PRESET" --device "$DEVICE" \
    --set vae_amp="$AMP" inn_amp="$AMP" --out "$OUT/caloinn-vae-seed0" --force
calobench bench caloinn caloinn-vae --device "$DEVICE" --batch-sizes "$BATCH" --rounds 3 --runs "$OUT" \
    --json "$OUT/bench.json"
