"""The comparison report: one self-contained HTML page with embedded figures.

:func:`write_report` turns a :func:`gan4rec.compare.compare` result into ``DIR/report.html`` (plus
``results.json`` and ``experiment.toml`` beside it). Figures need matplotlib (``pip install
'gan4rec[report]'``); without it the page is written with its tables only.
"""

from gan4rec.report.html import render_html, write_report
from gan4rec.report.plots import Plot, make_plots

__all__ = ["Plot", "make_plots", "render_html", "write_report"]
