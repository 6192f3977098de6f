"""Command implementations behind the CLI: argument checking, progress and printing."""
