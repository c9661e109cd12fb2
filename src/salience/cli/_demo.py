"""``salience demo``: every bottom-up method on bundled photos, as maps, overlays and one HTML page."""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  salience demo                      # writes salience-demo/index.html and the images it shows
  salience demo --out /tmp/gallery

Uses the photos that ship with scikit-image and matplotlib (nothing is downloaded); needs the demo extra:
pip install 'salience[demo]'.  Files of an earlier demo run in the same folder are replaced.
"""


def add_parser(sub):
    p = sub.add_parser(
        "demo",
        help="run every method on bundled photos and write an HTML gallery",
        description="Run every bottom-up method of the registry on the photos bundled with scikit-image and "
                    "matplotlib; write maps, overlays, an Itti-Koch panel and scanpaths, and index.html.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", "-o", default="salience-demo", metavar="DIR",
                   help="output folder (default: salience-demo)")
    return p


def run(args) -> int:
    from ..demo import run_demo

    index = run_demo(args.out)
    print(f"salience demo: open {index} in a browser")
    return 0
