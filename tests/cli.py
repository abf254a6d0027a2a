"""Running paperbot as a real child process, the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def paperbot_command(config: Path, *args: str) -> list[str]:
    """`python -m bot --config CONFIG ARGS`."""
    return [sys.executable, "-m", "bot", "--config", str(config), *args]


def run_paperbot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run paperbot to the end in a child process: its exit code and output."""
    return subprocess.run(
        paperbot_command(config, *args), capture_output=True, text=True, timeout=60, check=False
    )


def start_paperbot(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start paperbot in a child process, its output discarded (to kill it mid-run)."""
    return subprocess.Popen(
        paperbot_command(config, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
