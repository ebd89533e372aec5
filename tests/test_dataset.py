"""SkeletonDataset: validation, subsets, partitions, memory-mapped save/load."""
import numpy as np
import pytest

from zeroskel.data.dataset import SkeletonDataset, stack_sequences
from zeroskel.errors import ConfigError, DataError


def _toy(n=6, t=8):
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(t - i % 3, 20, 3)).astype(np.float32) for i in range(n)]
    data, lengths = stack_sequences(seqs, max_persons=2)
    return SkeletonDataset("toy", "kinect_v1", ["a", "b", "c"], data, lengths, np.arange(n) % 3,
                           meta={"subject": np.arange(n)}, partitions={"p": np.arange(n) < 4})


def test_stack_and_lengths():
    ds = _toy()
    assert ds.data.shape == (6, 3, 8, 20, 2)
    assert ds.lengths.tolist() == [8, 7, 6, 8, 7, 6]
    assert not ds.data[1, :, 7:].any() and not ds.data[..., 1].any()


def test_subset_and_partition():
    ds = _toy()
    assert ds.partition("p", "train").tolist() == [0, 1, 2, 3]
    sub = ds.subset(ds.partition("p", "test"))
    assert len(sub) == 2 and sub.meta["subject"].tolist() == [4, 5]
    with pytest.raises(ConfigError, match="partition"):
        ds.partition("xsub", "train")


def test_validation_errors():
    ds = _toy()
    with pytest.raises(DataError, match="label 3"):
        SkeletonDataset("toy", "kinect_v1", ["a", "b", "c"], ds.data, ds.lengths, np.full(6, 3))
    with pytest.raises(DataError, match="layout 'ntu25' has 25 joints"):
        SkeletonDataset("toy", "ntu25", ["a", "b", "c"], ds.data, ds.lengths, ds.labels)
    with pytest.raises(DataError, match="'subject'"):
        SkeletonDataset("toy", "kinect_v1", ["a", "b", "c"], ds.data, ds.lengths, ds.labels,
                        meta={"subject": np.arange(3)})


def test_save_load_memmap(tmp_path):
    ds = _toy()
    ds.save(tmp_path / "d")
    back = SkeletonDataset.load(tmp_path / "d")
    assert isinstance(back.data, np.memmap)
    np.testing.assert_array_equal(back.data, ds.data)
    assert back.class_names == ds.class_names and back.partitions["p"].tolist() == ds.partitions["p"].tolist()
    (tmp_path / "d" / "dataset.json").write_text("{broken")
    with pytest.raises(DataError, match="dataset.json"):
        SkeletonDataset.load(tmp_path / "d")
    with pytest.raises(DataError, match="not a prepared"):
        SkeletonDataset.load(tmp_path / "nothing")


def test_head_below_hips_batches_match_single_recordings():
    """The batch form (computed in blocks of 256) equals the per-recording value, padding frames
    and absent persons not counted; an upside-down copy scores one minus the upright share."""
    from zeroskel.data.dataset import head_below_hips
    from zeroskel.data.layouts import get_layout

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3, 12, 20, 2)).astype(np.float32)
    x[:, :, 9:] = 0  # padding frames
    x[::3, :, :, :, 1] = 0  # second person absent
    got = head_below_hips(x, "kinect_v1")
    assert got.shape == (300,)
    assert all(got[i] == head_below_hips(x[i], "kinect_v1") for i in (0, 1, 255, 256, 299))
    lay = get_layout("kinect_v1")
    head, hip = lay.index("head"), lay.index("hip_center")
    low = x[3, 1, :9, head, 0] < x[3, 1, :9, hip, 0]  # sample 3: one person, 9 frames
    assert got[3] == pytest.approx(low.mean())
    flipped = x.copy()
    flipped[:, 1] *= -1
    np.testing.assert_allclose(head_below_hips(flipped, "kinect_v1"), 1 - got)
