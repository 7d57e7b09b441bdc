"""Slice viewer against a real ViewerModel: planes, scrolling, window/level, overlays,
measurement, HU under the cursor, crosshair."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from sinusapp.imaging.planes import Plane
from sinusapp.ui.viewer import PRESETS, SliceViewer


@pytest.fixture
def viewer(qtbot, phantom):
    v = SliceViewer()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    v.set_volume(phantom[0])
    return v


def _wheel(widget: QtWidgets.QWidget, delta: int, modifiers=QtCore.Qt.KeyboardModifier.NoModifier):
    pos = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    ev = QtGui.QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QtCore.QPoint(0, 0),
        QtCore.QPoint(0, delta),
        QtCore.Qt.MouseButton.NoButton,
        modifiers,
        QtCore.Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QtWidgets.QApplication.sendEvent(widget, ev)


def test_coronal_first_with_physical_aspect(viewer, phantom):
    vol = phantom[0]
    assert viewer.model.plane is Plane.CORONAL
    view = viewer.views[Plane.CORONAL]
    assert view.isVisible() and not viewer.views[Plane.AXIAL].isVisible()
    t = view.image.transform()
    assert (t.m11(), t.m22()) == pytest.approx((vol.spacing_mm[2], vol.spacing_mm[0]))
    assert view.view.state["aspectLocked"]
    assert "DEMO Patient" in view.corner["tl"].text()
    assert "Sinus 1.0 H70 bone" in view.corner["tr"].text()
    assert [view.edge[k].text() for k in "lrtb"] == ["R", "L", "S", "I"]


def test_fit_shows_the_body_not_the_whole_field_of_view(qtbot):
    """A head in a big field of view filled a third of the view at "Fit"; Fit (and opening)
    now frame the body's box."""
    from sinusapp.imaging.volume import Volume

    a = np.full((40, 200, 200), -1000, np.int16)
    a[:, 70:130, 80:120] = 40  # a 60 x 40 mm "head" in a 200 mm field of view (1 mm voxels)
    v = SliceViewer()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    axial = np.zeros((4, 4))  # index (k, j, i) -> LPS (i, j, k): an axial series
    axial[0, 2] = axial[1, 1] = axial[2, 0] = axial[3, 3] = 1.0
    v.set_volume(Volume(array=a, affine=axial))
    v.reset_zoom()
    (x0, x1), _ = v.views[Plane.CORONAL].view.viewRange()
    # coronal: left-right is the body's x 80-120 mm (10 mm margin), not the 200 mm image
    assert x0 >= 55 and x1 <= 145, (x0, x1)
    axial = v.model.geometry[Plane.AXIAL]
    assert axial.box_rect_mm(v.model.body_box) == pytest.approx((70.0, 60.0, 60.0, 80.0), abs=4)


def test_a_sagittally_ordered_series_is_drawn(qtbot):
    """A series whose slices run left-right (sagittal acquisition) raised "the last axis must
    be contiguous" in the grey look-up and showed no image."""
    from sinusapp.imaging.volume import Volume

    a = np.arange(30 * 40 * 50, dtype=np.int16).reshape(30, 40, 50) % 2000 - 1000
    v = SliceViewer()
    qtbot.addWidget(v)
    v.resize(600, 400)
    v.show()
    v.set_volume(Volume(array=a, affine=np.eye(4)))  # index k runs along LPS x
    for plane in Plane:
        g = v.model.geometry[plane]
        img = g.extract(a, v.model.slice_index(plane))
        assert not img.flags["C_CONTIGUOUS"] or plane is not Plane.CORONAL
        rgba = v.model.to_rgba(img)
        assert rgba.shape == (*img.shape, 4)
        expected = v.model.to_rgba(np.ascontiguousarray(img))
        assert np.array_equal(rgba, expected)


def test_mouse_wheel_scrolls_slices_and_ctrl_wheel_zooms(qtbot, viewer):
    view = viewer.views[Plane.CORONAL]
    start = viewer.model.slice_index(Plane.CORONAL)
    rng_before = view.view.viewRange()
    _wheel(view.graphics.viewport(), 120)
    assert viewer.model.slice_index(Plane.CORONAL) == start + 1
    _wheel(view.graphics.viewport(), -120)
    _wheel(view.graphics.viewport(), -120)
    assert viewer.model.slice_index(Plane.CORONAL) == start - 1
    assert view.view.viewRange() == rng_before  # plain wheel does not zoom
    _wheel(view.graphics.viewport(), 120, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert viewer.model.slice_index(Plane.CORONAL) == start - 1
    assert view.view.viewRange() != rng_before
    # the image follows the slice
    g = viewer.model.geometry[Plane.CORONAL]
    expected = viewer.model.to_rgba(g.extract(viewer.model.volume.array, start - 1))
    assert np.array_equal(view.image.image, expected)


def test_keys_switch_planes(qtbot, viewer):
    viewer.activateWindow()
    viewer.setFocus()
    qtbot.keyClick(viewer, QtCore.Qt.Key.Key_A)
    if viewer.model.plane is not Plane.AXIAL:  # offscreen platforms may not route shortcuts
        viewer.plane_actions[Plane.AXIAL].trigger()
    assert viewer.model.plane is Plane.AXIAL
    viewer.plane_actions[Plane.SAGITTAL].trigger()
    assert viewer.views[Plane.SAGITTAL].isVisible()
    assert [viewer.views[Plane.SAGITTAL].edge[k].text() for k in "lrtb"] == ["A", "P", "S", "I"]
    keys = {a.shortcut().toString() for a in viewer.shortcut_actions()}
    assert {"C", "A", "S", "T", "1", "2", "3", "M"} <= keys


def test_presets_and_manual_window(viewer):
    view = viewer.views[Plane.CORONAL]
    assert (viewer.model.window_hu, viewer.model.level_hu) == (2000, 400)
    viewer.preset_combo.setCurrentIndex(1)
    assert (viewer.model.window_hu, viewer.model.level_hu) == (
        PRESETS[1].window_hu,
        PRESETS[1].level_hu,
    )
    assert viewer.model.levels == pytest.approx((40 - 200, 40 + 200))
    # the displayed grey levels follow the window: −160 HU black, 240 HU white, 40 HU mid-grey
    grey = viewer.model.to_display(np.array([-1000, -160, 40, 240, 3000], np.int16))
    assert list(grey[[0, 1, 3, 4]]) == [0, 0, 255, 255] and 125 <= grey[2] <= 129
    g = viewer.model.geometry[Plane.CORONAL]
    idx = viewer.model.slice_index(Plane.CORONAL)
    shown = viewer.model.to_rgba(g.extract(viewer.model.volume.array, idx))
    assert np.array_equal(view.image.image, shown)
    viewer.preset_actions[2].trigger()
    assert (viewer.model.window_hu, viewer.model.level_hu) == (80, 40)
    viewer.window_spin.setValue(1500)
    assert viewer.model.window_hu == 1500
    assert viewer.preset_combo.currentText() == "Custom"
    # right-drag window / level
    view.view.window_dragged.emit(30.0, -10.0)
    assert viewer.model.window_hu > 1500 and viewer.model.level_hu < 40
    assert viewer.window_spin.value() == round(viewer.model.window_hu)
    assert "W " in view.corner["bl"].text()


def test_contours_toggles_fill_and_dice(viewer, phantom):
    _, lesion, reference = phantom
    m = viewer.model
    m.set_mask("model", lesion)
    m.set_mask("reference", reference)
    m.focus_mask("model")
    view = viewer.views[Plane.CORONAL]
    red, blue = view.curves["model"], view.curves["reference"]
    assert red.isVisible() and blue.isVisible()
    assert np.isfinite(red.getData()[0]).sum() > 10
    assert viewer.dice_label.text().startswith("DSC 0.")
    assert float(viewer.dice_label.text().split(" ")[1]) == pytest.approx(m.dice(), abs=1e-3)
    viewer.reference_action.trigger()
    assert not blue.isVisible() and red.isVisible()
    viewer.fill_action.trigger()
    assert view.fill.isVisible()
    viewer.opacity_slider.setValue(80)
    assert m.opacity == pytest.approx(0.8)
    with pytest.raises(ValueError, match="shape"):
        m.set_mask("reference", lesion[:-1])


def test_measurement_in_mm(viewer):
    viewer.measure_action.trigger()
    view = viewer.views[Plane.CORONAL]
    assert view.view.measuring
    view.view.measured.emit(QtCore.QPointF(10.0, 5.0), QtCore.QPointF(16.0, 13.0), False)
    assert view.measure_text.toPlainText() == "10.0 mm"  # while dragging
    view.view.measured.emit(QtCore.QPointF(10.0, 5.0), QtCore.QPointF(16.0, 13.0), True)
    assert view.measurement_mm() == pytest.approx(10.0)
    assert view.annotation_texts == ["D1 10.0 mm"]  # kept and labelled
    viewer.measure_action.trigger()  # the tool off: a drag pans again, the measurement stays
    assert not view.view.measuring and view.measurement_mm() == pytest.approx(10.0)


def test_hu_and_position_under_cursor(viewer, phantom):
    vol = phantom[0]
    view = viewer.views[Plane.CORONAL]
    g = viewer.model.geometry[Plane.CORONAL]
    x, y = g.pixel_centre_mm(3, 7)
    voxel = g.voxel_of_pixel(3, 7, viewer.model.slice_index(Plane.CORONAL))
    text = view.hover_text(x, y)
    assert text.startswith(f"{int(vol.array[voxel])} HU")
    assert "mm LPS" in text
    assert view.hover_text(-5.0, y) == ""


def test_triple_layout_linked_crosshair(qtbot, viewer):
    viewer.triple_action.trigger()
    assert viewer.model.triple and all(v.isVisible() for v in viewer.views.values())
    axial = viewer.views[Plane.AXIAL]
    assert axial.vline.isVisible()
    g = viewer.model.geometry[Plane.AXIAL]
    x, y = g.pixel_centre_mm(10, 20)
    axial.view.clicked.emit(x, y)
    expected = g.voxel_of_pixel(10, 20, viewer.model.slice_index(Plane.AXIAL))
    assert viewer.model.cursor == expected
    assert viewer.model.slice_index(Plane.CORONAL) == expected[1]
    cor = viewer.model.geometry[Plane.CORONAL]
    assert viewer.views[Plane.CORONAL].vline.value() == pytest.approx(
        cor.pixel_centre_mm(*cor.pixel_of_voxel(expected))[0]
    )


def test_hu_readout_follows_the_slice_under_a_still_mouse(qtbot, viewer, phantom):
    """Issue 12 item 6: the HU / position readout was stale after scrolling."""
    vol = phantom[0]
    view = viewer.views[Plane.CORONAL]
    g = viewer.model.geometry[Plane.CORONAL]
    row, col = vol.shape[0] // 2, vol.shape[2] // 2
    x, y = g.pixel_centre_mm(row, col)
    scene = view.view.mapViewToScene(QtCore.QPointF(x, y))
    view.graphics.scene().sigMouseMoved.emit(scene)
    first = view.corner["bl"].text().splitlines()[0]
    assert first == view.hover_text(x, y) and "HU" in first
    # scroll until the voxel under the mouse has another HU value (the phantom varies)
    for _ in range(vol.shape[1]):
        view.view.scroll_requested.emit(1)
        if view.hover_text(x, y).split(" HU")[0] != first.split(" HU")[0]:
            break
    now = view.corner["bl"].text().splitlines()[0]
    assert now == view.hover_text(x, y)
    assert now != first, "the readout still shows the previous slice's position"
    # leaving the image clears it
    QtWidgets.QApplication.sendEvent(view, QtCore.QEvent(QtCore.QEvent.Type.Leave))
    assert view.corner["bl"].text().splitlines()[0] == ""


def test_no_crosshair_in_the_empty_viewer_and_none_left_behind(qtbot, phantom):
    """Issue 12 item 6: a crosshair was drawn in the empty viewer; ghost lines in 1×3."""
    v = SliceViewer()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    v.model.set_triple(True)
    assert not any(pv.vline.isVisible() or pv.hline.isVisible() for pv in v.views.values())
    v.set_volume(phantom[0])
    assert all(pv.vline.isVisible() for pv in v.views.values())
    for pv in v.views.values():  # full repaints: a moved line leaves no copy behind
        mode = pv.graphics.viewportUpdateMode()
        assert mode == QtWidgets.QGraphicsView.ViewportUpdateMode.FullViewportUpdate
    v.set_volume(None)
    assert not any(pv.vline.isVisible() or pv.hline.isVisible() for pv in v.views.values())
