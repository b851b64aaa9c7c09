"""Screenshot of a report in headless Chromium, for the README (docs/report.png).

    .venv/bin/python scripts/screenshot_report.py results/demo/report.html --out docs/report.png

Renders the page the way a reader's browser does (Chromium, plotly.js from the page itself),
lets its scripts run on a virtual clock, captures the top ``--height`` pixels at ``--width``,
and stores the PNG optimised; over 500 KB, with a 256-colour palette (octree: it keeps the
families' colours apart, where a median cut merges purple into grey).
Needs ``chromium`` on the PATH (``apt-get install chromium``) and Pillow (a dev dependency).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars")
MAX_BYTES = 500_000


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def screenshot(page: Path, out: Path, *, width: int, height: int) -> int:
    """Write ``out``, the top ``width`` x ``height`` pixels of ``page``; returns its size in bytes."""
    from PIL import Image

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("error: chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="report-shot-") as scratch:
        raw = Path(scratch) / "shot.png"
        subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={scratch}/profile", "--virtual-time-budget=20000",
             f"--window-size={width},{height}", f"--screenshot={raw}", page.resolve().as_uri()],
            check=True, timeout=180, capture_output=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(raw) as shot:
            image = shot.convert("RGB")
        image.save(out, optimize=True)
        if out.stat().st_size > MAX_BYTES:
            image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, optimize=True)
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report's HTML file")
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1900)
    args = parser.parse_args(argv)
    if not args.page.is_file():
        parser.error(f"{args.page} is not a file")
    size = screenshot(args.page, args.out, width=args.width, height=args.height)
    print(f"{args.out}: {size / 1000:.0f} KB")
    if size > MAX_BYTES:
        print(f"warning: over {MAX_BYTES / 1000:.0f} KB; try a smaller --height", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
