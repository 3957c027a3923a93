"""The CLI reference of the documentation (docs/cli.md), generated from the parser so that it
cannot drift from it: every command's `--help` at a fixed width. A published test compares the
page's block with this; `python -m aebench.bench.cli.reference` rewrites it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

START, END = "<!-- cli:start -->", "<!-- cli:end -->"
WIDTH = "100"


def markdown() -> str:
    from . import parser

    held = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at the terminal's width
    try:
        top, subs = parser()
        parts = ["```text", top.format_help().rstrip(), "```"]
        for name, sub in subs.items():
            parts += ["", f"## `{name}`", "", "```text", sub.format_help().rstrip(), "```"]
    finally:
        if held is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = held
    return "\n".join(parts)


def write(page: Path) -> Path:
    from aebench.bench.reports.blocks import replace_block

    page.write_text(replace_block(page.read_text(encoding="utf-8"), START, END, markdown()),
                    encoding="utf-8")
    return page


if __name__ == "__main__":
    print(f"wrote {write(Path(sys.argv[1] if len(sys.argv) > 1 else 'docs/cli.md'))}")
