#!/usr/bin/env python3
"""Condenses package-benchmark's text output into one table: per benchmark,
the median (p50) wall-clock ns/op and mallocs/op."""
import re
import sys

text = open(sys.argv[1]).read()
rows = []
for block in re.split(r"\n(?=\S[^\n]*\n╒)", text):
    lines = block.strip().split("\n")
    if len(lines) < 2 or not lines[1].startswith("╒"):
        continue

    def p50(label):
        for line in lines:
            if label in line:
                cells = [c.strip() for c in line.split("│")]
                return cells[4]
        return "-"

    rows.append((lines[0], p50("Time (wall clock)"), p50("Malloc (total)")))

width = max((len(r[0]) for r in rows), default=10)
print(f"{'benchmark':{width}}  {'ns/op (p50)':>12}  {'mallocs/op':>10}")
for name, wall, mallocs in sorted(rows):
    print(f"{name:{width}}  {wall:>12}  {mallocs:>10}")
