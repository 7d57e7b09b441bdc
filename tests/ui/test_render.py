"""Renders a pyqtgraph view offscreen: a broken PySide6 / pyqtgraph pairing (e.g. PySide6
6.12.0 with pyqtgraph 0.14.0, "deallocating None") fails here, not on a workstation."""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui


def test_slice_view_renders_image_and_red_contour(qtbot, phantom):
    from sinusapp.ui.viewer import SliceViewer

    vol, lesion, _ = phantom
    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    viewer.resize(600, 500)
    viewer.show()
    viewer.set_volume(vol)
    viewer.model.set_mask("model", lesion)
    viewer.model.focus_mask("model")
    for _ in range(3):
        qtbot.wait(10)
    img = (
        viewer.current_view()
        .graphics.grab()
        .toImage()
        .convertToFormat(QtGui.QImage.Format.Format_RGB32)
    )
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.width(), 4)
    b, g, r = arr[..., 0].astype(int), arr[..., 1].astype(int), arr[..., 2].astype(int)
    grey = (np.abs(r - g) < 4) & (np.abs(g - b) < 4) & (r > 40) & (r < 220)
    red = (r > 180) & (g < 90) & (b < 90)
    assert grey.sum() > 1000, "the CT image was not drawn"
    assert red.sum() > 20, "the red model contour was not drawn"
