"""pr1: teach language models parallel thinking with reinforcement learning (Parallel-R1)."""

__version__ = "0.1.0"
