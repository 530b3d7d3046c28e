#!/usr/bin/env bash
# Train + evaluate on a GPU box that lacks diffusers (wheels carried in .whl/); results land in $OUT.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:. HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
set -o pipefail
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m models.training.train --out models/easel-tiny "$@" 2>&1 | grep -v '^ ' | tee "$OUT/train.log" || exit 1
cp models/easel-tiny/unet/diffusion_pytorch_model.safetensors "$OUT/unet.safetensors"
tar czf "$OUT/easel-tiny-rest.tgz" --exclude=unet/diffusion_pytorch_model.safetensors models/easel-tiny
python3 -m models.training.evaluate --batch 128 --extra "${EVAL_EXTRA:-20:3,20:7.5,20:10,30:7.5}" 2>&1 \
  | grep -v -i 'loading' | tee "$OUT/eval.log"
cp models/easel-tiny/eval.json models/easel-tiny/eval_grid.png "$OUT/"
