"""The headline ratios of a benchmark run as an SVG bar chart (standard library only).

bench/run.py calls :func:`write_chart` with the run's medians; ``python bench/chart.py
bench/build/results.json OUT.svg`` redraws one from a saved run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional
from xml.sax.saxutils import escape

Bar = tuple[str, Optional[float], Optional[float]]  # label, ratio, target (None: no target)

WIDTH, LABEL_W, BAR_H, GAP, TOP = 860, 430, 18, 8, 40


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def headline_bars(m: dict[str, Any]) -> list[Bar]:
    """The ratios the issues set targets for, from a run's medians."""
    ex, th, ad = m.get("explicit", {}), m.get("threads", {}), m.get("autodecrypt", {})

    def explicit(key: str, case: str, op: str) -> Optional[float]:
        return ex.get(key, {}).get(case, {}).get(op)  # type: ignore[no-any-return]

    bars: list[Bar] = [
        (
            "Range encrypt: hooks ÷ no hooks (own API)",
            _ratio(
                explicit("own", "range_int", "encrypt"),
                explicit("own_nohooks", "range_int", "encrypt"),
            ),
            3.0,
        ),
        (
            "Det 20 B decrypt: hooks ÷ no hooks (own API)",
            _ratio(
                explicit("own", "det_short", "decrypt"),
                explicit("own_nohooks", "det_short", "decrypt"),
            ),
            1.3,
        ),
    ]
    for case, label, goal in (
        ("range_int", "Range", 1.8),
        ("det_4k", "Det 4 KiB", 1.8),
        ("det_short", "Det 20 B", 1.0),
    ):
        for key, who in (
            ("own", "own API"),
            ("mongocrypt", "drop-in"),
            ("own_nohooks", "own API, no hooks"),
        ):
            runs = th.get(key, {}).get(case, {})
            bars.append(
                (f"{label}, 2 threads ÷ 1 ({who})", _ratio(runs.get("2"), runs.get("1")), goal)
            )
    for op in ("encrypt", "decrypt"):
        bars.append(
            (
                f"Det 20 B {op}: drop-in ÷ incumbent",
                _ratio(
                    explicit("mongocrypt", "det_short", op), explicit("incumbent", "det_short", op)
                ),
                4.0,
            )
        )
    ns = "bench.docs10"
    for key, who, goal in (
        ("incumbent", "incumbent", 4.0),
        ("native", "incumbent, native lib", 1.3),
    ):
        bars.append(
            (
                f"auto-decrypt 10 fields ÷ {who}",
                _ratio(ad.get("mongocrypt", {}).get(ns), ad.get(key, {}).get(ns)),
                goal,
            )
        )
    bars.append(
        (
            "auto-decrypt 10 fields ÷ plain find",
            _ratio(ad.get("mongocrypt", {}).get(ns), ad.get("plain", {}).get(ns)),
            0.7,
        )
    )
    return [bar for bar in bars if bar[1] is not None]


def render_svg(bars: list[Bar], title: str) -> str:
    """Horizontal bars on a shared ratio scale; a tick at 1x and one per target."""
    top = max([r or 0 for _, r, _ in bars] + [t or 0 for _, _, t in bars] + [1.0]) * 1.1
    plot_w = WIDTH - LABEL_W - 60
    height = TOP + len(bars) * (BAR_H + GAP) + 30

    def x(value: float) -> float:
        return LABEL_W + plot_w * value / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{x(1):.1f}" y1="{TOP - 6}" x2="{x(1):.1f}" y2="{height - 24}" stroke="#888" '
        'stroke-dasharray="3,3"/>',
        f'<text x="{x(1):.1f}" y="{height - 10}" text-anchor="middle" fill="#555">1×</text>',
    ]
    for i, (label, value, target) in enumerate(bars):
        y = TOP + i * (BAR_H + GAP)
        met = target is None or (value or 0) >= target
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{LABEL_W}" y="{y}" width="{x(value or 0) - LABEL_W:.1f}" height="{BAR_H}" '
            f'fill="{"#3a7d44" if met else "#c0504d"}"/>'
        )
        out.append(f'<text x="{x(value or 0) + 4:.1f}" y="{y + 13}">{value:.2f}×</text>')
        if target is not None:
            out.append(
                f'<line x1="{x(target):.1f}" y1="{y - 2}" x2="{x(target):.1f}" '
                f'y2="{y + BAR_H + 2}" stroke="black" stroke-width="2"/>'
            )
    out.append(
        f'<text x="{WIDTH - 10}" y="{height - 10}" text-anchor="end" fill="#555">'
        "black tick: the target; green: met, red: missed</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(medians: dict[str, Any], path: Path, title: str) -> None:
    path.write_text(render_svg(headline_bars(medians), title))


if __name__ == "__main__":
    results = json.loads(Path(sys.argv[1]).read_text())
    write_chart(results["medians"], Path(sys.argv[2]), f"Headline ratios, {results['date']}")
