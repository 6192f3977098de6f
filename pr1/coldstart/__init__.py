"""Cold-start parallel-thinking data (the paper's Algorithm 1): teachers, the filter, the SFT/RL forms."""
