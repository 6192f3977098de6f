"""gpu-kit: install and validate pr1 on an offline CUDA machine from a small wheelhouse (docs/GPU.md).

Standard library only: it runs before pr1 (or anything pr1 needs) is installed. `build` runs on a connected
machine and writes the kit folder; `check` runs on the GPU machine from that folder and a checkout.
"""


class KitError(Exception):
    """A problem the user can fix, told in one line (no traceback)."""
