"""Plots of shower samples (matplotlib, Agg canvases, PNG files)."""

from calobench.plots.overview import write_overview_plots

__all__ = ["write_overview_plots"]
