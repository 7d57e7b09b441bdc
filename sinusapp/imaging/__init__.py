"""Imaging: the :class:`Volume` type, resampling, windowing, contours, quantification."""

from sinusapp.imaging.volume import SeriesInfo, Volume, affine_from_geometry

__all__ = ["SeriesInfo", "Volume", "affine_from_geometry"]
