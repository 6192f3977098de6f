"""`pr1 rl`: GRPO with pr1's rollout engine, rewards and run folder (see docs/RL.md)."""
