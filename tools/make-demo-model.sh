#!/usr/bin/env bash
# Rebuilds models/demo from nothing, deterministically: phantoms -> twice transfer learning -> model folder.
#
#   tools/make-demo-model.sh            # about an hour on a 2-core machine (wasm backend, one core)
#   WORK=/tmp/demo tools/make-demo-model.sh   # keep the generated phantoms and the training output there
#
# Stage 1: random (Kaiming) initialisation, no ImageNet weights. Stage 2: a phantom proxy of the NIH
# ChestX-ray14 findings task (14 sigmoid outputs). Stage 3: COVID-19 / pneumonia / normal, keeping the
# stage-2 Pneumonia neuron. The training config is models/demo/train-config.yaml; the phantom seeds are
# below (test/training/demo-model.test.ts checks the model on a seed used by neither).
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE2_SEED=1001
STAGE3_SEED=2002
STAGE2_COUNT=${STAGE2_COUNT:-1500}
STAGE3_COUNT=${STAGE3_COUNT:-1500}
WORK=${WORK:-$(mktemp -d -t cxr-demo-XXXXXX)}

npx tsc -p tsconfig.json

# `cxr-gateway phantoms` and `cxr-gateway train`, through main.js once it routes them, else through the
# command functions themselves (same arguments, same code).
cli() {
  local command=$1
  shift
  if node dist/src/cli/main.js help 2>/dev/null | grep -q "cxr-gateway ${command}"; then
    node dist/src/cli/main.js "${command}" "$@"
  elif [ "${command}" = phantoms ]; then
    node --input-type=module -e "import { phantomsCommand } from './dist/src/cli/phantoms-command.js'; process.exitCode = await phantomsCommand(process.argv.slice(1));" -- "$@"
  else
    node --input-type=module -e "import { train } from './dist/src/cli/train-command.js'; process.exitCode = await train(process.argv.slice(1));" -- "$@"
  fi
}

# Square and portrait detectors, PA and AP, both photometric interpretations (the generator's defaults).
[ -f "${WORK}/stage2/labels.csv" ] || cli phantoms --out "${WORK}/stage2" --n "${STAGE2_COUNT}" --seed "${STAGE2_SEED}" --size 256 --aspect portrait
[ -f "${WORK}/stage3/labels.csv" ] || cli phantoms --out "${WORK}/stage3" --n "${STAGE3_COUNT}" --seed "${STAGE3_SEED}" --size 384

rm -rf "${WORK}/model"
cli train --config models/demo/train-config.yaml --intermediate-data "${WORK}/stage2" --data "${WORK}/stage3" \
  --out "${WORK}/model" | tee "${WORK}/train.out"

# Replace the committed model (weights, manifest, logs); the config stays.
for f in manifest.json weights.safetensors training-log.jsonl metrics.json; do cp "${WORK}/model/${f}" "models/demo/${f}"; done
node dist/src/cli/main.js model check models/demo
echo "models/demo rebuilt from ${WORK}"
