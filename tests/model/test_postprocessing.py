"""The bundle's lesion post-processing: threshold, opening, small components, the mirrored
pass and the growth into the cavities on the CT grid."""

from __future__ import annotations

import numpy as np
import pytest

from sinusapp.model.config import Postprocessing


def _prob() -> np.ndarray:
    p = np.zeros((20, 20, 20), np.float32)
    p[2:10, 2:10, 2:10] = 0.9  # a thick lesion
    p[15, 2:18, 2:18] = 0.9  # a rim one voxel thin
    p[12, 15, 15] = 0.9  # a speck
    p[4:6, 14:16, 14:16] = 0.55  # weak
    return p


def test_defaults_change_nothing() -> None:
    p = _prob()
    assert np.array_equal(Postprocessing().apply(p), p)
    assert Postprocessing.from_dict(None) == Postprocessing()


def test_opening_drops_thin_rims_and_keeps_thick_lesions() -> None:
    out = Postprocessing(opening=True).apply(_prob())
    assert (out[15] == 0).all() and out[12, 15, 15] == 0
    assert (out[3:9, 3:9, 3:9] > 0.5).all()


def test_small_components_and_the_threshold() -> None:
    out = Postprocessing(lesion_threshold=0.6, min_component_vox=30).apply(_prob())
    assert out[12, 15, 15] == 0  # 1 voxel < 30
    assert out[15, 5, 5] > 0  # the rim has 256 voxels
    # Below the threshold: not lesion, and its probability is left as it is.
    assert np.allclose(out[4:6, 14:16, 14:16], 0.55)


def test_kept_lesions_keep_their_soft_edges() -> None:
    """Only removed voxels are zeroed, so interpolating the output does not shrink a kept lesion.

    Zeroing the sub-threshold rim as well moved every interpolated edge inwards (real-anatomy
    validation Dice 0.73 -> 0.67).
    """
    from scipy import ndimage

    p = np.zeros((24, 24, 24), np.float32)
    p[4:20, 4:20, 4:20] = 0.6  # the soft edge of a lesion
    p[5:19, 5:19, 5:19] = 0.9  # its core
    post = Postprocessing(lesion_threshold=0.7, min_component_vox=30)
    out = post.apply(p)
    assert np.array_equal(out, p)  # nothing removed: nothing changed
    fine = ndimage.zoom(out, 3, order=1) >= post.lesion_threshold
    assert np.array_equal(fine, ndimage.zoom(p, 3, order=1) >= post.lesion_threshold)


@pytest.mark.parametrize(
    "bad",
    [
        {"lesion_threshold": 1.0},
        {"opening": "yes"},
        {"min_component_vox": -1},
        {"x": 1},
        {"mirror_average": 1},
        {"grow_mm": -1.0},
        {"grow_mm": 25.0},
        {"grow_min_hu": -1000.0},
        {"grow_min_hu": 400.0},
        {"grow_min_probability": 0.0},
        {"grow_min_probability": 0.6, "lesion_threshold": 0.5},
        {"grow_min_probability": True},
    ],
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Postprocessing.from_dict(bad)


def test_older_manifests_read_as_no_mirror_and_no_growth() -> None:
    post = Postprocessing.from_dict({"lesion_threshold": 0.75, "opening": False})
    assert post.mirror_average is False and post.grow_mm == 0.0
    assert Postprocessing.from_dict(post.to_dict()) == post


def _sinus(shape=(20, 40, 40), spacing=(1.0, 0.5, 0.5)):  # type: ignore[no-untyped-def]
    """A CT with one air-filled cavity (x 10-30, y 10-30) walled by bone; a 2 mm-thick
    soft-tissue lining on its left wall (x 10-13) and muscle outside the wall."""
    from sinusapp.imaging.volume import Volume

    hu = np.full(shape, 40, np.int16)  # muscle / soft tissue outside
    hu[:, 8:32, 8:32] = 900  # bone wall
    hu[:, 10:30, 10:30] = -1000  # air
    hu[:, 10:30, 10:14] = 35  # mucosal thickening, 4 voxels = 2 mm thick
    cav = np.zeros(shape, np.uint8)
    cav[:, 10:30, 10:30] = 1
    aff = np.zeros((4, 4))  # slice → S, row → P, column → L
    aff[0, 2], aff[1, 1], aff[2, 0], aff[3, 3] = spacing[2], spacing[1], spacing[0], 1.0
    return Volume(array=hu, affine=aff), cav


def test_growth_fills_the_lining_and_stops_at_air_bone_and_the_cavity_wall() -> None:
    from sinusapp.model.refine import grow_into_cavities

    vol, cav = _sinus()
    truth = (vol.array == 35) & (cav > 0)
    mask = np.zeros(vol.shape, np.uint8)
    mask[:, 10:30, 11:13] = 1  # the network found the lining's middle, short of both edges
    grown = grow_into_cavities(mask, volume=vol, cavities=cav, max_mm=1.0, min_hu=-300.0)
    assert grown.dtype == np.uint8 and grown.shape == vol.shape
    assert np.array_equal(grown.astype(bool), truth)  # the edges the CT shows
    assert not grown[vol.array == -1000].any()  # never air
    assert not grown[vol.array == 900].any()  # never the bone (outside the cavities)
    assert not grown[:, :, :8].any()  # never the muscle outside
    assert not mask[:, :, 10].any()  # the input is left alone ...
    same = grow_into_cavities(
        mask, volume=vol, cavities=cav, max_mm=1.0, min_hu=-300.0, in_place=True
    )
    assert same is mask and np.array_equal(same, grown)  # ... unless grown in place


def test_growth_is_limited_in_mm_and_needs_a_connection() -> None:
    from sinusapp.imaging.volume import Volume
    from sinusapp.model.refine import grow_into_cavities

    vol, cav = _sinus()
    hu = vol.array.copy()
    hu[:, 10:30, 14:24] = 35  # soft tissue across the cavity to column 24
    vol = Volume(array=hu, affine=vol.affine)
    mask = np.zeros(vol.shape, np.uint8)
    mask[:, 10:30, 10:12] = 1
    grown = grow_into_cavities(mask, volume=vol, cavities=cav, max_mm=2.0, min_hu=-300.0)
    # 2 mm at 0.5 mm per column: 4 columns beyond column 11, no further
    assert grown[:, 10:30, 12:16].all() and not grown[:, :, 16:].any()
    # soft tissue not connected to the lesion is never joined
    hu2 = vol.array.copy()
    hu2[:, 10:30, 12:24] = -1000
    hu2[:, 20:22, 13:15] = 35  # an island one air column away from the lesion
    vol2 = Volume(array=hu2, affine=vol.affine)
    island = grow_into_cavities(mask, volume=vol2, cavities=cav, max_mm=2.0, min_hu=-300.0)
    assert np.array_equal(island, mask)


def test_no_growth_without_distance_and_the_right_shapes() -> None:
    from sinusapp.model.refine import grow_into_cavities

    vol, cav = _sinus()
    mask = np.zeros(vol.shape, np.uint8)
    mask[:, 10:30, 11:13] = 1
    same = grow_into_cavities(mask, volume=vol, cavities=cav, max_mm=0.0, min_hu=-300.0)
    assert np.array_equal(same, mask)
    with pytest.raises(ValueError, match="shape"):
        grow_into_cavities(mask[1:], volume=vol, cavities=cav, max_mm=1.0, min_hu=-300.0)


def test_lesion_mask_grows_only_when_asked_and_with_cavities() -> None:
    """:func:`lesion_mask` (what the Predictor runs) applies the growth of the bundle."""
    from sinusapp.model.refine import lesion_mask

    vol, cav = _sinus()
    prob = np.zeros(vol.shape, np.float32)
    prob[:, 10:30, 11:13] = 0.9
    # the block is the CT grid itself here: map_back is then an identity at the voxel centres
    plain = Postprocessing(lesion_threshold=0.5)
    grow = Postprocessing(lesion_threshold=0.5, grow_mm=1.0)
    args = {"block_affine": vol.affine, "volume": vol}
    base = lesion_mask(prob, postprocessing=plain, cavities=cav, **args)
    assert int(base.sum()) == int((prob >= 0.5).sum())
    assert int(lesion_mask(prob, postprocessing=grow, cavities=None, **args).sum()) == base.sum()
    grown = lesion_mask(prob, postprocessing=grow, cavities=cav, **args)
    assert grown.sum() > base.sum() and np.array_equal(
        grown.astype(bool), (vol.array == 35) & (cav > 0)
    )


def test_growth_outside_the_cavities_only_where_the_probability_reaches_the_floor() -> None:
    """``grow_min_probability``: the lesion also grows into soft tissue outside the sinus
    head's cavities where the network's own probability reaches it, nowhere else."""
    from sinusapp.model.refine import lesion_mask

    vol, cav = _sinus()
    cav_small = cav.copy()
    cav_small[:, :, 10:12] = 0  # the sinus head misses the lining's outer two columns
    prob = np.zeros(vol.shape, np.float32)
    prob[:, 10:30, 12:14] = 0.9  # confident core
    prob[:, 10:30, 10:12] = 0.45  # the less confident rim, outside the cavities found
    prob[:, 10:30, 5:8] = 0.45  # the same probability on the muscle: not connected (bone)
    args = {"block_affine": vol.affine, "volume": vol, "cavities": cav_small}
    cav_only = Postprocessing(lesion_threshold=0.5, grow_mm=2.0)
    hyst = Postprocessing(lesion_threshold=0.5, grow_mm=2.0, grow_min_probability=0.4)
    high = Postprocessing(lesion_threshold=0.5, grow_mm=2.0, grow_min_probability=0.49)
    a = lesion_mask(prob, postprocessing=cav_only, **args).astype(bool)
    b = lesion_mask(prob, postprocessing=hyst, **args).astype(bool)
    c = lesion_mask(prob, postprocessing=high, **args).astype(bool)
    assert not a[:, :, 10:12].any()  # outside the cavities: not without the floor
    assert b[:, 10:30, 10:12].all()  # the rim at 0.45 >= 0.4 joins
    assert np.array_equal(c, a)  # 0.45 < 0.49: nothing more
    # the wall (900 HU passes the HU floor) has probability 0 and is no cavity: never grown
    # into, so the 0.45 on the muscle beyond it is never reached
    assert not b[:, :, :10].any()
    assert np.array_equal(b, (vol.array == 35) & (cav > 0))


def test_growth_into_the_rim_where_the_sinus_head_sees_a_cavity() -> None:
    """``grow_cavity_probability``: where disease fills a cavity to its wall the sinus head is
    unsure of the cavity's last voxels (its labels, a class at ≥ 0.5, leave them out); the
    lesion may grow into them where the head's probability of any cavity reaches the floor,
    never into voxels the head gives less (the bone, the muscle beyond it)."""
    from sinusapp.model.refine import lesion_mask

    vol, cav = _sinus()
    labels = cav.copy()
    labels[:, :, 10:12] = 0  # the labels miss the lining's outer two columns
    prob = np.zeros(vol.shape, np.float32)
    prob[:, 10:30, 12:14] = 0.9  # the network's lesion: the lining's inner half
    head = np.zeros((2, *vol.shape), np.float32)  # softmax: background, one cavity
    head[1][cav > 0] = 0.9
    head[1][:, 10:30, 10:12] = 0.35  # the unsure rim
    head[1][:, :, 5:8] = 0.35  # the same on the muscle, behind the bone
    head[0] = 1.0 - head[1]
    args = {"block_affine": vol.affine, "volume": vol, "cavities": labels}
    posts = {
        q: Postprocessing(lesion_threshold=0.5, grow_mm=3.0, grow_cavity_probability=q)
        for q in (None, 0.3, 0.4)
    }
    masks = {
        q: lesion_mask(
            prob,
            postprocessing=p,
            sinus_probabilities=head,
            **args,
        ).astype(bool)
        for q, p in posts.items()
    }
    assert not masks[None][:, :, 10:12].any()  # the labels alone stop short of the bone
    assert np.array_equal(masks[0.3], (vol.array == 35) & (cav > 0))  # 0.35 >= 0.3: to the bone
    assert not masks[0.3][:, :, :10].any()  # the bone has no cavity probability: not crossed
    assert np.array_equal(masks[0.4], masks[None])  # 0.35 < 0.4: nothing more
    # without the head's probabilities the option changes nothing
    assert np.array_equal(lesion_mask(prob, postprocessing=posts[0.3], **args), masks[None])
    assert Postprocessing.from_dict(posts[0.3].to_dict()) == posts[0.3]
    for bad in (0.0, 1.0, True, "0.3"):
        with pytest.raises(ValueError, match="grow_cavity_probability"):
            Postprocessing(grow_cavity_probability=bad)  # type: ignore[arg-type]


def _head(shape=(30, 60, 60), spacing=(2.0, 0.5, 0.5)):  # type: ignore[no-untyped-def]
    """A CT grid (2 mm slices, 0.5 mm in-plane) with a two-chamber maxillary label (class 1:
    a main chamber and a second one a 1 mm septum away), a stray class-1 piece 20 mm lateral
    and a class-9 (nasal cavity) label next to the main chamber."""
    from sinusapp.imaging.volume import Volume

    aff = np.zeros((4, 4))
    aff[0, 2], aff[1, 1], aff[2, 0], aff[3, 3] = spacing[2], spacing[1], spacing[0], 1.0
    vol = Volume(array=np.zeros(shape, np.int16), affine=aff)
    labels = np.zeros(shape, np.uint8)
    labels[5:20, 10:30, 10:25] = 1  # main chamber
    labels[5:20, 32:40, 10:25] = 1  # second chamber, 2 voxels = 1 mm beyond the septum
    labels[8:12, 10:20, 55:58] = 1  # stray piece: x 55-57, 15 mm from the main chamber
    labels[5:20, 10:30, 2:8] = 9  # the nasal cavity, medial
    return vol, labels


def test_keep_main_cavities_drops_a_far_stray_piece_and_keeps_a_second_chamber() -> None:
    from sinusapp.model.refine import keep_main_cavities

    vol, labels = _head()
    before = labels.copy()
    cut = keep_main_cavities(labels, volume=vol, within_mm=3.0)
    out = cut.labels
    assert np.array_equal(labels, before)  # a new array; the input is left as it is
    assert len(cut.dropped) == 1  # the stray piece, in class 1's box
    piece, box = cut.dropped[0]
    assert piece.sum() == 4 * 10 * 3 and (before[box][piece] == 1).all()
    assert not out[8:12, 10:20, 55:58].any()  # the stray piece is gone
    assert (out[5:20, 32:40, 10:25] == 1).all()  # the chamber beyond the septum stays
    assert np.array_equal(out[before != 1], before[before != 1])  # other classes untouched
    assert (out == 1).sum() == (before == 1).sum() - 4 * 10 * 3
    # within 20 mm the stray piece counts as next to the sinus
    assert np.array_equal(keep_main_cavities(labels, volume=vol, within_mm=20.0).labels, before)
    with pytest.raises(ValueError, match="shape"):
        keep_main_cavities(labels[1:], volume=vol, within_mm=3.0)


def test_drop_far_lesion_keeps_lesion_in_or_next_to_a_cavity_only() -> None:
    from sinusapp.model.refine import drop_far_lesion

    vol, labels = _head()
    cavities = np.where(labels == 1, 0, labels)  # the nasal cavity only (x 2-7)
    mask = np.zeros(vol.shape, np.uint8)
    mask[6:10, 12:16, 3:6] = 1  # inside the nasal cavity
    mask[12:16, 12:16, 10:12] = 1  # just beside it: 1.5 mm from x 7
    mask[12:16, 40:44, 40:44] = 1  # 16 mm away: dropped
    kept = drop_far_lesion(mask.copy(), volume=vol, cavities=cavities, within_mm=3.0)
    assert kept[6:10, 12:16, 3:6].all() and kept[12:16, 12:16, 10:12].all()
    assert not kept[12:16, 40:44, 40:44].any()
    assert kept.sum() == mask.sum() - 4 * 4 * 4
    # no cavity at all: nothing to judge the lesion by, it is left as it is
    empty = np.zeros_like(cavities)
    assert np.array_equal(
        drop_far_lesion(mask.copy(), volume=vol, cavities=empty, within_mm=3.0), mask
    )


def test_lesion_on_a_stray_label_piece_goes_and_lesion_beside_no_label_stays() -> None:
    """The case on the GE head: a lesion sitting on a stray piece of the maxillary label far
    lateral of the sinus goes with ``drop_stray_lesion``; the cut alone
    (``sinus_component_mm``) leaves it; a lesion in the main chamber stays, and
    so does a lesion next to no label at all (an ethmoid, frontal or sphenoid sinus, which a
    4-class head does not label). ``lesion_within_mm`` (for a head that labels every sinus)
    drops that one too, but never the stray-piece lesion on its own (the piece anchors it)."""
    from sinusapp.imaging.quantify import LABEL_IDS
    from sinusapp.model.config import SINUS_HEAD_REGIONS_ALL
    from sinusapp.model.refine import cavity_labels, lesion_mask

    vol, labels = _head()
    head = np.zeros((10, *vol.shape), np.float32)  # softmax over the ten head classes
    for cls, region in enumerate(SINUS_HEAD_REGIONS_ALL):
        if cls:
            head[cls][labels == LABEL_IDS[region]] = 1.0
    head[0] = 1.0 - head[1:].sum(axis=0)
    prob = np.zeros(vol.shape, np.float32)
    stray = (slice(8, 12), slice(10, 20), slice(53, 58))  # on the stray piece and beside it
    main = (slice(10, 14), slice(15, 20), slice(15, 20))  # in the main chamber
    lone = (slice(24, 28), slice(50, 55), slice(30, 35))  # 10 mm from any label
    for box in (stray, main, lone):
        prob[box] = 0.9
    posts = {
        "plain": Postprocessing(lesion_threshold=0.5),
        "cut": Postprocessing(lesion_threshold=0.5, sinus_component_mm=3.0),
        "stray": Postprocessing(
            lesion_threshold=0.5, sinus_component_mm=3.0, drop_stray_lesion=True
        ),
        "far": Postprocessing(lesion_threshold=0.5, lesion_within_mm=3.0),
        "both": Postprocessing(
            lesion_threshold=0.5,
            sinus_component_mm=3.0,
            drop_stray_lesion=True,
            lesion_within_mm=3.0,
        ),
    }
    masks = {}
    for name, post in posts.items():
        cav = cavity_labels(head, block_affine=vol.affine, volume=vol, postprocessing=post)
        assert (cav.labels[8:12, 10:20, 55:58] == 0).all() == (name in ("cut", "stray", "both"))
        masks[name] = lesion_mask(
            prob, block_affine=vol.affine, volume=vol, postprocessing=post, cavities=cav
        ).astype(bool)
        assert masks[name][main].all()
    assert masks["plain"][stray].all() and masks["plain"][lone].all()
    assert masks["cut"][stray[0], stray[1], slice(55, 58)].all()  # on the cut piece: kept
    assert not masks["stray"][stray].any() and masks["stray"][lone].all()
    assert masks["far"][stray].all() and not masks["far"][lone].any()
    assert not masks["both"][stray].any() and not masks["both"][lone].any()
    # a plain label array (no record of what was cut) drops nothing for drop_stray_lesion
    plain_labels = cavity_labels(
        head, block_affine=vol.affine, volume=vol, postprocessing=posts["stray"]
    )
    unrecorded = lesion_mask(
        prob,
        block_affine=vol.affine,
        volume=vol,
        postprocessing=posts["stray"],
        cavities=plain_labels.labels,
    ).astype(bool)
    assert unrecorded[stray[0], stray[1], slice(53, 55)].all()
    for post in posts.values():
        assert Postprocessing.from_dict(post.to_dict()) == post


@pytest.mark.parametrize("name", ["sinus_component_mm", "lesion_within_mm"])
@pytest.mark.parametrize("bad", [0.0, -1.0, 31.0, True, "3"])
def test_anatomical_clean_up_distances_are_checked(name: str, bad: object) -> None:
    with pytest.raises(ValueError, match=name):
        Postprocessing(**{name: bad})  # type: ignore[arg-type]


def test_drop_stray_lesion_needs_the_cut() -> None:
    with pytest.raises(ValueError, match="needs sinus_component_mm"):
        Postprocessing(drop_stray_lesion=True)
    with pytest.raises(ValueError, match="drop_stray_lesion must be true or false"):
        Postprocessing(sinus_component_mm=3.0, drop_stray_lesion=1)  # type: ignore[arg-type]


def test_lesion_on_a_stray_piece_between_the_sinuses_stays() -> None:
    """A stray piece of a class that lies within the left-right span of the kept labels may
    be a real sinus under the wrong class (a diseased sphenoid read as "maxillary", measured
    on placed disease): the piece leaves the labels, its lesion stays. One lateral of every
    kept label goes with its lesion."""
    from sinusapp.imaging.volume import Volume
    from sinusapp.model.refine import drop_stray_lesion, keep_main_cavities

    vol, labels = _head()
    labels[24:28, 50:56, 12:20] = 1  # a second stray class-1 piece, behind, within x 2-24
    cut = keep_main_cavities(labels, volume=vol, within_mm=3.0)
    assert len(cut.dropped) == 1 and not (cut.labels[24:28, 50:56, 12:20]).any()
    mask = np.zeros(vol.shape, np.uint8)
    mask[24:28, 50:56, 12:20] = 1  # lesion on the medial stray piece
    mask[8:12, 10:20, 53:58] = 1  # lesion on the lateral one
    out = drop_stray_lesion(mask.copy(), volume=vol, cavities=cut, within_mm=3.0)
    assert out[24:28, 50:56, 12:20].all()
    assert not out[8:12, 10:20, 53:58].any()
    # mirrored left-right (the lateral piece now on the other side): the same
    flip = vol.affine.copy()
    flip[0, 2] = -flip[0, 2]
    mirrored = Volume(array=vol.array, affine=flip)
    out = drop_stray_lesion(mask.copy(), volume=mirrored, cavities=cut, within_mm=3.0)
    assert out[24:28, 50:56, 12:20].all() and not out[8:12, 10:20, 53:58].any()


def test_the_lesion_still_grows_into_the_pieces_the_cut_takes_from_the_labels() -> None:
    """The cut says which sinus a voxel counts for, not whether the head saw a cavity: on
    placed disease the head reads a diseased sphenoid as stray "maxillary" pieces, and the
    growth into them is most of the sphenoid's lesion that 2.1.0 finds."""
    from sinusapp.imaging.quantify import LABEL_IDS
    from sinusapp.model.config import SINUS_HEAD_REGIONS_ALL
    from sinusapp.model.refine import cavity_labels, lesion_mask

    vol, labels = _head()  # HU 0 everywhere: soft tissue, growable
    labels[24:28, 50:56, 12:20] = 1  # a stray class-1 piece between the sinuses
    head = np.zeros((10, *vol.shape), np.float32)
    for cls, region in enumerate(SINUS_HEAD_REGIONS_ALL):
        if cls:
            head[cls][labels == LABEL_IDS[region]] = 1.0
    head[0] = 1.0 - head[1:].sum(axis=0)
    prob = np.zeros(vol.shape, np.float32)
    prob[25:27, 52:54, 14:16] = 0.9  # the network's lesion: the piece's core
    masks = {}
    for cut_mm in (None, 3.0):
        post = Postprocessing(
            lesion_threshold=0.5,
            grow_mm=3.0,
            sinus_component_mm=cut_mm,
            drop_stray_lesion=cut_mm is not None,
        )
        cav = cavity_labels(head, block_affine=vol.affine, volume=vol, postprocessing=post)
        assert (cav.labels[24:28, 50:56, 12:20] == 1).all() == (cut_mm is None)
        masks[cut_mm] = lesion_mask(
            prob, block_affine=vol.affine, volume=vol, postprocessing=post, cavities=cav
        ).astype(bool)
    assert masks[None][24:28, 50:56, 12:20].all()  # grown through the whole piece
    assert np.array_equal(masks[3.0], masks[None])  # the same with the cut


def test_a_lesion_joining_the_sinus_to_a_stray_piece_stays() -> None:
    """A component that reaches a kept label is the sinus's own lesion, even where it also
    runs onto a stray piece: never dropped."""
    from sinusapp.model.refine import drop_stray_lesion, keep_main_cavities

    vol, labels = _head()
    cut = keep_main_cavities(labels, volume=vol, within_mm=3.0)
    mask = np.zeros(vol.shape, np.uint8)
    mask[9:11, 12:14, 20:58] = 1  # from the main chamber (x ≤ 24) onto the piece (x 55-57)
    mask[9:11, 16:18, 53:58] = 1  # the piece's own lesion, apart from the bridge (rows 16-17)
    out = drop_stray_lesion(mask.copy(), volume=vol, cavities=cut, within_mm=3.0)
    assert out[9:11, 12:14, 20:58].all()
    assert not out[9:11, 16:18, 53:58].any()


def test_a_sinus_missing_from_the_labels_does_not_narrow_the_span_on_its_side() -> None:
    """One maxillary sinus unlabelled (fully opacified, say): the kept labels' left-right span
    is mirrored about the nasal cavity, so a lesion on a stray piece where that sinus lies
    stays; one lateral of the mirrored span still goes."""
    from sinusapp.imaging.volume import Volume
    from sinusapp.model.refine import drop_stray_lesion, keep_main_cavities

    aff = np.zeros((4, 4))
    aff[0, 2], aff[1, 1], aff[2, 0], aff[3, 3] = 0.5, 0.5, 2.0, 1.0  # x = 0.5 * column
    vol = Volume(array=np.zeros((30, 60, 80), np.int16), affine=aff)
    labels = np.zeros(vol.shape, np.uint8)
    labels[5:20, 10:40, 36:45] = 9  # nasal cavity, x 18-22 (mean 20)
    labels[5:20, 10:40, 50:66] = 1  # the one maxillary sinus labelled, x 25-32.5
    labels[8:12, 15:25, 15:26] = 1  # stray piece where the other sinus lies, x 7.5-12.5
    labels[8:12, 15:25, 1:5] = 1  # stray piece beyond it, x 0.5-2
    cut = keep_main_cavities(labels, volume=vol, within_mm=3.0)
    assert len(cut.dropped) == 1 and not cut.labels[:, :, :30].any()
    mask = np.zeros(vol.shape, np.uint8)
    mask[8:12, 15:25, 15:26] = 1
    mask[8:12, 15:25, 1:5] = 1
    out = drop_stray_lesion(mask.copy(), volume=vol, cavities=cut, within_mm=3.0)
    assert out[8:12, 15:25, 15:26].all()  # inside the mirrored span: kept
    assert not out[8:12, 15:25, 1:5].any()  # lateral of it: dropped
    # without a nasal-cavity label there is no midline: the span is the labels' own
    no_nasal = np.where(labels == 9, 0, labels).astype(np.uint8)
    cut = keep_main_cavities(no_nasal, volume=vol, within_mm=3.0)
    out = drop_stray_lesion(mask.copy(), volume=vol, cavities=cut, within_mm=3.0)
    assert not out[:, :, :30].any()
    # both maxillary sinuses labelled (the other one small): the span is the labels' own too
    both = labels.copy()
    both[5:20, 10:40, 32:35] = 2  # x 16-17, beyond the stray lesion's reach
    cut = keep_main_cavities(both, volume=vol, within_mm=3.0)
    out = drop_stray_lesion(mask.copy(), volume=vol, cavities=cut, within_mm=3.0)
    assert not out[:, :, :30].any()
