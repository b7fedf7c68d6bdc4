"""`python -m search.report experiment=NAME`: the usage is `search.report.page.USAGE`."""

from __future__ import annotations

from data.config import run_cli
from search.report.page import main

if __name__ == "__main__":
    run_cli(main)
