"""Helpers shared by the synth tests (importable because pytest puts this folder on sys.path)."""

from __future__ import annotations

from sinusapp.synth.phantom import ScannerSettings


def coarse_scanner(*, noise_hu: float = 20.0, kernel_sigma_mm: float = 0.3) -> ScannerSettings:
    """1.5 mm pixels, 2 mm slices, sinus field of view: renders in a fraction of a second."""
    return ScannerSettings(
        pixel_spacing_mm=1.5,
        slice_spacing_mm=2.0,
        slice_thickness_mm=2.0,
        matrix=96,
        noise_hu=noise_hu,
        kernel_sigma_mm=kernel_sigma_mm,
        edge_enhance=0.0,
        z_range_head_mm=(-56.0, 48.0),
        fov_centre_head_mm=(0.0, -5.0),
    )
