"""Pose2Mesh for bodies on Anny: synthetic data, two-stage training, evaluation, outputs.

With no arguments it runs end to end on a 2-core CPU in a few minutes (the ``quick`` preset:
Anny's 1,229-vertex body topology, 8 short epochs) and writes to ``outputs/pose2mesh_body/``:
the model (``model.pt``), metrics (``metrics.csv``, ``results.json``, ``results.csv``), the
loss curves (``losses.png``), a predicted mesh (``prediction.obj``/``.ply``) and a figure
(``prediction.png``: 2D input, predicted mesh, ground truth, per-vertex error).

Useful flags (all of ``meshgraph train``): ``--preset full`` (the long schedule on the full
13,718-vertex mesh), ``--body smpl --model-path PATH`` (licensed SMPL files), ``--layout
binary_tree``, ``--variant direct``, ``--device cuda``, ``--resume``.
"""

from __future__ import annotations

import sys

from meshgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--kind", "body", *sys.argv[1:]]))
