"""`pr1 bench`: the project's benchmarks (rollout, structured decoding, SFT and GRPO per backend) as tables."""
