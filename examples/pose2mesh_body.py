"""Pose2Mesh for bodies on Anny: synthetic data, two-stage training, evaluation, outputs.

With no arguments it runs end to end on a 2-core CPU in about 4 minutes (the ``quick`` preset:
Anny's 1,229-vertex body topology, 1,024 PoseNet steps then 768 steps of the whole model) and
writes to ``outputs/pose2mesh_body/``: the model (``model.pt``), metrics (``metrics.csv``,
``results.json``, ``results.csv``), the loss curves (``losses.png``), a predicted mesh
(``prediction.obj``/``.ply``) and a figure (``prediction.png``: 2D input, predicted mesh,
ground truth, per-vertex error). Measured: PA-MPJPE 84.2 mm, MPVPE 148.5 mm with
ground-truth 2D, 2.4 times better than the mean mesh.

Useful flags (all of ``meshgraph train``): ``--preset long`` (about an hour here: PA-MPJPE
60 mm, MPVPE 118 mm; with ``--posenet-epochs 44 --epochs 28``, 83 minutes: 55 and 111 mm),
``--preset full`` (the full 13,718-vertex mesh, for a GPU), ``--layout binary_tree``,
``--variant direct|fc``, ``--device cuda``, ``--bf16``, ``--compile``, ``--resume``,
``--threads N``, ``--no-progress``,
and ``--body smpl|smplh --model-path DIR`` to train on licensed SMPL or SMPL-H files instead
of Anny (never downloaded; ``--regressor h36m=J_regressor_h36m_correct.npy`` uses the
released regressor).
"""

from __future__ import annotations

import sys

from meshgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--kind", "body", *sys.argv[1:]]))
