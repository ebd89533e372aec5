"""Joint layouts: bones form a tree, adjacency partitions match the ST-GCN definitions."""
import numpy as np
import pytest

from zeroskel.data.layouts import KINECT_V1, LAYOUTS, NTU25, UTD_MHAD, get_layout, map_layout
from zeroskel.errors import ConfigError


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_bones_form_a_spanning_tree(layout):
    v = layout.num_joints
    assert len(layout.bones) == v - 1
    hop = layout.hop_distance(max_hop=v)
    assert np.isfinite(hop).all(), "graph must be connected"
    for a, b in layout.left_right:
        assert layout.joints[a].startswith("l_") and layout.joints[b].startswith("r_")
        assert layout.joints[a][2:] == layout.joints[b][2:]


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_adjacency_partitions(layout):
    v = layout.num_joints
    spatial = layout.adjacency("spatial")
    uniform = layout.adjacency("uniform")
    distance = layout.adjacency("distance")
    assert spatial.shape == (3, v, v) and uniform.shape == (1, v, v) and distance.shape == (2, v, v)
    # The partitions split the same normalised neighbourhood (A + I) D^-1.
    np.testing.assert_allclose(spatial.sum(0), uniform[0], atol=1e-6)
    np.testing.assert_allclose(distance.sum(0), uniform[0], atol=1e-6)
    np.testing.assert_allclose(uniform[0].sum(0), np.ones(v), atol=1e-6)  # column-normalised
    # Root partition holds the self loops; the centripetal one only holds neighbours closer
    # to the centre joint.
    assert np.all(np.diag(spatial[0]) > 0)
    # As in ST-GCN (and so in PGFA), distances to the centre are measured with the same
    # max_hop cap, so joints beyond it compare as equal (inf == inf) and land in 'root'.
    hop = layout.hop_distance(1)
    c = layout.center
    j, i = np.nonzero(spatial[1] * (1 - np.eye(v)))
    assert len(j) > 0 and np.all(hop[j, c] >= hop[i, c])
    j, i = np.nonzero(spatial[2])
    assert len(j) > 0 and np.all(hop[j, c] < hop[i, c])


def test_ntu25_degree_of_spine_shoulder():
    a = NTU25.adjacency("uniform")[0]
    c = NTU25.index("spine_shoulder")
    # spine shoulder has 4 neighbours (spine mid, neck, both shoulders) + itself
    assert np.isclose(a[c, c], 1 / 5)


def test_unknown_names():
    with pytest.raises(ConfigError, match="ntu25"):
        get_layout("ntu26")
    with pytest.raises(ConfigError, match="head"):
        NTU25.index("heda")
    with pytest.raises(ConfigError, match="spatial"):
        NTU25.adjacency("spectral")


def test_map_kinect_v1_to_ntu25():
    x = np.random.default_rng(0).normal(size=(7, 20, 3))
    y = map_layout(x, "kinect_v1", "ntu25", joint_axis=1)
    assert y.shape == (7, 25, 3)
    for name in ("head", "l_wrist", "r_foot"):
        np.testing.assert_array_equal(y[:, NTU25.index(name)], x[:, KINECT_V1.index(name)])
    np.testing.assert_array_equal(y[:, NTU25.index("spine_shoulder")], x[:, KINECT_V1.index("shoulder_center")])
    np.testing.assert_allclose(y[:, NTU25.index("neck")],
                               (x[:, KINECT_V1.index("shoulder_center")] + x[:, KINECT_V1.index("head")]) / 2)
    # and back: the 20 Kinect v1 joints are a subset of NTU-25's, so the round trip is exact
    np.testing.assert_array_equal(map_layout(y, "ntu25", "kinect_v1", joint_axis=1), x)
    with pytest.raises(ConfigError, match="no joint mapping from layout 'ntu25' to 'openpose18'"):
        map_layout(y, "ntu25", "openpose18", joint_axis=1)


@pytest.mark.parametrize("source", list(LAYOUTS))
@pytest.mark.parametrize("target", list(LAYOUTS))
def test_every_layout_maps_to_every_other_by_joint_name(source, target):
    """Where both layouts have a joint of the same name, the mapping copies it."""
    src, dst = get_layout(source), get_layout(target)
    x = np.random.default_rng(2).normal(size=(3, src.num_joints))
    y = map_layout(x, source, target, joint_axis=1)
    assert y.shape == (3, dst.num_joints)
    for name in set(src.joints) & set(dst.joints):
        np.testing.assert_array_equal(y[:, dst.index(name)], x[:, src.index(name)])


def test_utd_mhad_file_order():
    """utd_mhad is kinect_v1 with the first four joints reversed; its mappings agree with
    going through kinect_v1, and its graph is the same graph relabelled."""
    assert UTD_MHAD.joints[:4] == ("head", "shoulder_center", "spine", "hip_center")
    assert UTD_MHAD.joints[4:] == KINECT_V1.joints[4:]
    x = np.random.default_rng(1).normal(size=(5, 20, 3))  # (T, V, xyz) in UTD order
    k = map_layout(x, "utd_mhad", "kinect_v1", joint_axis=1)
    for name in KINECT_V1.joints:
        np.testing.assert_array_equal(k[:, KINECT_V1.index(name)], x[:, UTD_MHAD.index(name)])
    np.testing.assert_array_equal(map_layout(x, "utd_mhad", "ntu25", joint_axis=1),
                                  map_layout(k, "kinect_v1", "ntu25", joint_axis=1))
    perm = [UTD_MHAD.index(n) for n in KINECT_V1.joints]  # kinect id -> utd id
    a_k, a_u = KINECT_V1.adjacency("spatial"), UTD_MHAD.adjacency("spatial")
    np.testing.assert_allclose(a_u[:, perm][:, :, perm], a_k)
    assert UTD_MHAD.joints[UTD_MHAD.center] == KINECT_V1.joints[KINECT_V1.center]
