"""Pose2Mesh for hands on Anny's right hand: synthetic data, training, evaluation, outputs.

With no arguments it runs end to end on a 2-core CPU in a few minutes (the ``quick``
preset) and writes to ``outputs/pose2mesh_hand/`` the model, metrics (with PA-MPVPE, F@5 mm
and F@15 mm), loss curves, a predicted mesh and a figure. ``--preset full`` is the long
schedule; ``--body mano --model-path PATH`` uses licensed MANO files; see
``meshgraph train --help`` for every flag.
"""

from __future__ import annotations

import sys

from meshgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--kind", "hand", *sys.argv[1:]]))
