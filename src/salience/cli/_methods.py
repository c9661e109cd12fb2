"""``salience methods``: the registry, as a table or JSON."""

from __future__ import annotations

import json

from ..registry import methods


def add_parser(sub):
    p = sub.add_parser("methods", help="list the saliency methods with their papers",
                       description="List every registered method: name, kind, description and paper.")
    p.add_argument("--kind", choices=["bottom-up", "explanation"], help="only methods of this kind")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args) -> int:
    rows = methods(args.kind)
    if args.json:
        print(json.dumps([m.as_dict() for m in rows], indent=2))
        return 0
    width = max(len(m.name) for m in rows)
    for m in rows:
        print(f"{m.name:<{width}}  {m.kind:<11}  {m.description}")
        print(f"{'':<{width}}  {'':<11}  paper: {m.paper}")
    return 0
