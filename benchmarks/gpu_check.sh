#!/usr/bin/env bash
# The GPU check of issue 12, in about 8 minutes on one GPU machine. From the checkout's root:
#
#   bash .gpu/setup.sh && export PYTHONPATH=/tmp/site:$PWD ANNY_CACHE_DIR=/tmp/annycache \
#       MESHGRAPH_CACHE_DIR=/tmp/mgcache && bash benchmarks/gpu_check.sh
#
# (.gpu/ comes from `PYTHON=.venv/bin/python bash ../shared/tools/gpu-carry.sh`, carried along.)
# Writes into benchmarks/results/ (copy them into $OUT on a lent device machine):
#   tests-cuda.txt                 pytest --device cuda over the test suite
#   suite-cuda.{json,md,png}       the CUDA benchmark subset (ChebConv, Pose2Mesh, training,
#                                  surface losses)
#   speed-vs-4024ed2-cuda.{json,md} full-body B64 inference and training step against 4024ed2
#   trainer-options-full-cuda.{json,md} stage-2 step: eager, bf16 autocast, torch.compile
#   train-quick-cuda.{json,txt}    `meshgraph train --kind body --preset quick --device cuda`
set -uo pipefail
cd "$(dirname "$0")/.."
res=benchmarks/results
mkdir -p "$res"
py=${PYTHON:-python3}
start=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

stamp "tests on cuda"
timeout 240 $py -m pytest tests -q -x --device cuda -p no:cacheprovider -W ignore::UserWarning \
  > "$res/tests-cuda.txt" 2>&1; echo "pytest exit $?" >> "$res/tests-cuda.txt"
tail -3 "$res/tests-cuda.txt"

stamp "benchmark subset on cuda"
timeout 180 $py -m pytest benchmarks -q --devices cuda -p no:cacheprovider \
  -k "(chebconv and body and not scaling) or (pose2mesh and not peak) or training or surface" \
  --benchmark-json="$res/suite-cuda.json" > /dev/null 2>&1
$py -m benchmarks.report "$res/suite-cuda.json" > /dev/null && echo "wrote $res/suite-cuda.md"

stamp "speed against 4024ed2 on cuda"
timeout 150 $py -m benchmarks.speed_vs_commit --base 4024ed2 --device cuda --threads 16 \
  --rounds 2 --reps 5 --cases infer-B64 train-B64 | tail -4

stamp "trainer options (bf16 autocast, torch.compile) on cuda"
timeout 200 $py -m benchmarks.trainer_options --device cuda --preset full --steps 10 \
  --variants eager bf16 compile | tail -5

stamp "quick body training on cuda"
t0=$(date +%s)
timeout 150 $py -m meshgraph.cli train --kind body --preset quick --device cuda --no-progress \
  --out /tmp/gpu-quick --overwrite > "$res/train-quick-cuda.txt" 2>&1
rc=$?
echo "{\"exit\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}" > "$res/train-quick-cuda.json"
tail -6 "$res/train-quick-cuda.txt"
cp /tmp/gpu-quick/results.json "$res/train-quick-cuda-results.json" 2>/dev/null || true
stamp "done"
if [ -n "${OUT:-}" ]; then cp "$res"/*-cuda* "$OUT"/ 2>/dev/null || true; fi
