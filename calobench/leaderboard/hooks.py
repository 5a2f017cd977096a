"""What calobench.leaderboard registers through the plugin hooks: leaderboard, run and bench."""

from __future__ import annotations

from calobench.bench.cli import bench_command
from calobench.cli.command import Command
from calobench.hookspecs import hookimpl
from calobench.leaderboard.cli import leaderboard_command, main_job_command


@hookimpl
def calobench_commands() -> list[Command]:
    return [bench_command(), leaderboard_command(), main_job_command()]
