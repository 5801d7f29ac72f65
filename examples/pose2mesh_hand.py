"""Pose2Mesh for hands on Anny's right hand: synthetic data, training, evaluation, outputs.

With no arguments it runs end to end on a 2-core CPU in about 2.5 minutes (the ``quick``
preset: 512 steps) and writes to ``outputs/pose2mesh_hand/`` the model, metrics (with
PA-MPVPE, F@5 mm and F@15 mm), loss curves, a predicted mesh and a figure. Measured: MPVPE
27.3 mm, PA-MPVPE 12.2 mm with ground-truth 2D, 4.0 times better than the mean mesh.
``--preset long`` (47 minutes here) reaches PA-MPVPE 4.8 mm; ``--preset full`` is the GPU
schedule; ``--device cuda``, ``--layout binary_tree``, ``--variant direct|fc``,
``--resume``; see ``meshgraph train --help`` for every flag. ``--body mano --model-path DIR``
trains on licensed MANO files instead of Anny (never downloaded; see docs/pose2mesh.rst).
"""

from __future__ import annotations

import sys

from meshgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--kind", "hand", *sys.argv[1:]]))
