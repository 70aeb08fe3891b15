#!/usr/bin/env bash
# The Geography-Aware SSL comparison of docs/gassl.md, on the seasonal demo
# world: image encoders trained the same number of epochs, then one
# linear probe of their frozen features for the climate class, side by side
# with a randomly initialised backbone.
#
#   bash benchmarks/gassl_demo.sh                  # 2,000 points x 4 dates, 50 epochs
#   EPOCHS=10 bash benchmarks/gassl_demo.sh        # a shorter run
#
# Environment: OUT (runs/gassl_compare), DATA (data/demo_t, made when missing),
# POINTS (2000), EPOCHS (50), JOBS (2 trainings at a time, one thread each),
# BATCH (the recipes' batch sizes unless set; tests use a tiny world),
# VARIANTS (the five below unless set: names separated by spaces),
# SEED (the recipes' seed_everything, 0, unless set),
# PROBE_ARGS (more probe-images arguments, separated by spaces; tests pass
# --folds 2: fewer probe fits on a tiny world).
#
# Variants (configs/gassl_demo.yaml is MoCo-v2 + Geo + TP; the others switch
# parts off on the command line; satclip is configs/satclip_demo.yaml):
#   moco_v2         positives by augmentation (views: 2 of the index image)
#   moco_v2_geo     ... and the geo pretext
#   moco_v2_tp      temporal positives (dates: pair)
#   moco_v2_geo_tp  temporal positives and the geo pretext
#   satclip         SatCLIP's image-location CLIP loss, on the index images
# and, only when VARIANTS names them, two of them with shuffled batch norm
# emulated over 8 parts of a batch (moco_bn_splits: 8):
#   moco_v2_split8, moco_v2_geo_tp_split8
# Each trains in its own folder OUT/<variant> (the recipes write
# runs/... relative to the working directory).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${OUT:-runs/gassl_compare}" && cd "${OUT:-runs/gassl_compare}" && pwd)"
DATA="${DATA:-data/demo_t}"
POINTS="${POINTS:-2000}"
EPOCHS="${EPOCHS:-50}"
JOBS="${JOBS:-2}"
extra=()  # arguments for every training
[ -n "${BATCH:-}" ] && extra+=(--data.init_args.batch_size "$BATCH")
[ -n "${SEED:-}" ] && extra+=(--seed_everything "$SEED")
read -r -a probe_extra <<< "${PROBE_ARGS:-}"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1

known=" moco_v2 moco_v2_geo moco_v2_tp moco_v2_geo_tp satclip moco_v2_split8 moco_v2_geo_tp_split8 "
read -r -a names <<< "${VARIANTS:-moco_v2 moco_v2_geo moco_v2_tp moco_v2_geo_tp satclip}"
seen=" "
for name in "${names[@]}"; do  # checked before anything trains
    case "$known" in *" $name "*) ;; *) echo "unknown variant $name (known:$known)" >&2; exit 2 ;; esac
    case "$seen" in *" $name "*) echo "variant $name named twice" >&2; exit 2 ;; esac
    seen+="$name "
done
[ "${#names[@]}" -gt 0 ] || { echo "VARIANTS names no variant" >&2; exit 2; }

if [ ! -f "$DATA/dates.csv" ]; then
    torchgeo-satclip demo-data "$DATA" --n "$POINTS" --dates 4 --overwrite --quiet
    torchgeo-satclip pack "$DATA" --patch-size 32
fi
DATA="$(cd "$DATA" && pwd)"

nogeo=(--model.init_args.geo_classes 0 --model.init_args.geo_loss_weight 0)
augmentation=(--model.init_args.moco_positives augmentation
              --data.init_args.views 2 --data.dict_kwargs.dates index)
train() {  # train NAME CONFIG [ARGS...]
    local name=$1 config=$2 start
    shift 2
    mkdir -p "$OUT/$name"
    start=$(date +%s)
    (cd "$OUT/$name" && torchgeo fit --config "$repo/configs/$config" \
        --trainer.max_epochs "$EPOCHS" --trainer.enable_progress_bar false \
        --trainer.logger lightning.pytorch.loggers.CSVLogger \
        --trainer.logger.save_dir "$OUT/$name" \
        --data.dict_kwargs.root "$DATA" "${extra[@]}" "$@" > "$OUT/$name/fit.log" 2>&1) ||
        { echo "$name failed: see $OUT/$name/fit.log" >&2; return 1; }
    echo "$name: $EPOCHS epochs in $(( $(date +%s) - start )) s"
}
split8=(--model.init_args.moco_bn_splits 8)
run() {  # run NAME
    case $1 in
        moco_v2) train "$1" gassl_demo.yaml "${nogeo[@]}" "${augmentation[@]}" ;;
        moco_v2_geo) train "$1" gassl_demo.yaml "${augmentation[@]}" ;;
        moco_v2_tp) train "$1" gassl_demo.yaml "${nogeo[@]}" ;;
        moco_v2_geo_tp) train "$1" gassl_demo.yaml ;;
        satclip) train "$1" satclip_demo.yaml --trainer.max_epochs "$EPOCHS" ;;
        moco_v2_split8)
            train "$1" gassl_demo.yaml "${nogeo[@]}" "${augmentation[@]}" "${split8[@]}" ;;
        moco_v2_geo_tp_split8) train "$1" gassl_demo.yaml "${split8[@]}" ;;
    esac
}
pids=()
for name in "${names[@]}"; do
    run "$name" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

checkpoints=()
for name in "${names[@]}"; do
    sub=gassl_demo
    [ "$name" = satclip ] && sub=demo
    checkpoints+=("$name=$OUT/$name/runs/$sub/checkpoints/last.ckpt")
done
torchgeo-satclip probe-images "$DATA" --patch-size 32 --crop-size 16 \
    --checkpoints "${checkpoints[@]}" --output-dir "$OUT/probe" --overwrite --quiet \
    "${probe_extra[@]}"
