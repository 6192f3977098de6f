"""`pr1 bench` settings (no torch import: the CLI builds its flags from them)."""

from __future__ import annotations

from dataclasses import dataclass

from pr1.settings import SettingError, Settings, setting

BENCHMARKS = ("rollout", "engines", "structured", "sft", "grpo")
BACKENDS = ("hf", "unsloth")  # the training backends of sft and grpo (skipped where unavailable)
RESULTS_FILE = "bench.jsonl"
TABLES_FILE = "BENCH.md"


@dataclass
class BenchConfig(Settings):
    names: list[str] = setting(
        factory=lambda: list(BENCHMARKS),
        help="Benchmarks to run: rollout, engines (vLLM vs hf), structured, sft, grpo (default: all).",
        argument=True,
    )
    model: str | None = setting(
        None,
        "Model: a name or folder, or qwen3-0.6b / qwen3-1.7b / qwen3-4b for random weights of that architecture "
        "(default: the embedded model on CPU, qwen3-0.6b on CUDA).",
    )
    backends: list[str] = setting(factory=lambda: list(BACKENDS), help="Training backends for sft and grpo.")
    quick: bool = setting(False, "Smoke-test sizes, not figures to publish.", flag="--quick")
    force: bool = setting(False, "Measure again what --out already holds.", flag="--force")
    # `--set KEY=VALUE`: a setting of every selected benchmark that has it (checked by pr1.bench.suite)
    overrides: dict[str, str] = setting(factory=dict, help="KEY=VALUE settings of the selected benchmarks.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self.names:
            if name not in BENCHMARKS:
                raise SettingError(
                    f"pr1 bench: unknown benchmark {name!r}; expected some of {', '.join(BENCHMARKS)}"
                )
        for backend in self.backends:
            if backend not in BACKENDS:
                raise SettingError(f"--backends: unknown backend {backend!r}; expected hf and/or unsloth")
        if not self.names or not self.backends:
            raise SettingError("pr1 bench: nothing to run (no benchmark or no backend given)")
