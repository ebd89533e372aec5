"""Drawings of zeroskel.viz read back as pixels: upright people, both persons, equal axes,
frames in order, and files that are what they claim to be."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zeroskel.cli import main
from zeroskel.data.readers.custom import write_custom
from zeroskel.viz import render_animation, render_frame

# ntu25 joints of a person standing at x = 0, feet at y = -0.9, head at y = 0.8 (y up)
_STAND = {
    0: (0, 0), 1: (0, .3), 2: (0, .65), 3: (0, .8), 20: (0, .6),
    4: (-.2, .6), 5: (-.25, .35), 6: (-.27, .1), 7: (-.28, .05), 21: (-.29, 0), 22: (-.25, .05),
    8: (.2, .6), 9: (.25, .35), 10: (.27, .1), 11: (.28, .05), 23: (.29, 0), 24: (.25, .05),
    12: (-.1, 0), 13: (-.1, -.45), 14: (-.1, -.85), 15: (-.15, -.9),
    16: (.1, 0), 17: (.1, -.45), 18: (.1, -.85), 19: (.15, -.9),
}


def _person(shear=0.0, dx=0.0) -> np.ndarray:
    """(3, 25): the standing person, leaning by x += shear * y, moved by dx."""
    p = np.zeros((3, 25), np.float32)
    for j, (x, y) in _STAND.items():
        p[:, j] = (x + shear * y + dx, y, 2.5)
    return p


def _mask(img: np.ndarray, color: str) -> np.ndarray:
    rgb = img[..., :3].astype(float)
    rgb = rgb / 255 if rgb.max() > 1 else rgb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if color == "blue":  # tab:blue, person 0
        return (b > .55) & (r < .35) & (g < .6)
    return (r > .7) & (g < .35) & (b < .35)  # tab:red, person 1


def _bbox(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_frame_is_upright_with_both_persons_and_equal_axes(tmp_path):
    import matplotlib.image as mpimg

    seq = np.zeros((3, 4, 25, 2), np.float32)
    seq[:, 2, :, 0] = _person(shear=0.5)        # leans right: head at x +0.4, feet at x -0.5
    seq[:, 2, :, 1] = _person(dx=1.5)           # second person, to the right
    path = render_frame(seq, "ntu25", 2, tmp_path / "f.png")
    img = mpimg.imread(path)
    blue, red = _mask(img, "blue"), _mask(img, "red")
    assert blue.sum() > 200 and red.sum() > 200, "both persons are drawn"
    top, bottom, left, right = _bbox(blue)
    # y up: the head (top rows of the drawing) is to the right, the feet (bottom rows) to the left
    assert np.nonzero(blue[top])[0].mean() > np.nonzero(blue[bottom])[0].mean() + 20
    # person 1 stands to the right of person 0 (x not mirrored), at the same height
    r_top, r_bottom, r_left, _ = _bbox(red)
    assert r_left > right and abs(r_top - top) < 10 and abs(r_bottom - bottom) < 10
    # equal axes: the drawn person has the data's height/width ratio, not the figure's
    pts = seq[:2, 2, :, 0]
    want = np.ptp(pts[1]) / np.ptp(pts[0])
    got = (bottom - top) / (right - left)
    assert abs(got / want - 1) < 0.15, (got, want)


def test_animation_has_the_valid_frames_in_order(tmp_path):
    from PIL import Image

    t, length = 12, 7   # frames past the valid length are padding and are not drawn
    seq = np.zeros((3, t, 25, 1), np.float32)
    for i in range(t):
        seq[:, i, :, 0] = _person(dx=0.2 * i)   # walks right
    path = render_animation(seq, length, "ntu25", tmp_path / "a.gif", fps=10)
    im = Image.open(path)
    assert im.n_frames == length
    centres = []
    for k in range(length):
        im.seek(k)
        blue = _mask(np.asarray(im.convert("RGB")), "blue")
        centres.append(np.nonzero(blue)[1].mean())
    assert all(b > a + 2 for a, b in zip(centres, centres[1:])), centres
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]  # no temporary file left


def test_render_refuses_a_length_past_the_array_or_a_wrong_layout(tmp_path):
    seq = np.zeros((3, 10, 25, 1), np.float32)
    seq[:, :, :, 0] = _person()[:, None]
    out = tmp_path / "a.gif"
    # was an IndexError at frame 10, after a 10-frame GIF had been written
    with pytest.raises(ValueError, match="longer than the array's 10 frames"):
        render_animation(seq, 20, "ntu25", out)
    with pytest.raises(ValueError, match="not a whole number"):
        render_animation(seq, 2.5, "ntu25", out)
    # 25 joints drawn with kinect_v1's 20-joint bones was an IndexError
    with pytest.raises(ValueError, match="25 joints but layout 'kinect_v1' has 20"):
        render_frame(seq, "kinect_v1", 0, tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []
    # a (3, T, V) array is one person
    assert render_animation(seq[..., 0], 3, "ntu25", out).is_file()


def test_interrupted_animation_leaves_no_gif(tmp_path, monkeypatch):
    # matplotlib's writer saved the frames drawn so far when Ctrl-C stopped the drawing: a short
    # GIF that looked finished, and that the CLI then refused to replace without --force. The
    # interrupt comes from the (third-party) writer at its 5th frame: deterministic, unlike a timer
    from matplotlib.animation import PillowWriter

    seq = np.zeros((3, 30, 25, 1), np.float32)
    seq[:, :, :, 0] = _person()[:, None]
    grab, calls = PillowWriter.grab_frame, []

    def interrupted_grab(self, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return grab(self, **kw)

    monkeypatch.setattr(PillowWriter, "grab_frame", interrupted_grab)
    with pytest.raises(KeyboardInterrupt):
        render_animation(seq, 30, "ntu25", tmp_path / "a.gif")
    assert len(calls) == 5 and list(tmp_path.iterdir()) == []


def test_inspect_png_name_is_the_file_written(tmp_path, capsys):
    data = tmp_path / "d.npz"
    write_custom(data, [np.stack([_person().T] * 5)] * 2, [0, 1], ["stand", "wait"], "ntu25")
    # '--png frame' was written by matplotlib as frame.png, reported as 'frame', and replaced
    # on the next call without --force
    assert main(["inspect", str(data), "--png", str(tmp_path / "frame")]) == 0
    assert f"to {tmp_path / 'frame.png'}" in capsys.readouterr().out
    assert (tmp_path / "frame.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", str(data), "--png", str(tmp_path / "frame")]) == 2
    assert "frame.png exists" in capsys.readouterr().err
    # an extension matplotlib cannot write was a ValueError traceback after the summary
    assert main(["inspect", str(data), "--png", str(tmp_path / "frame.xyz")]) == 2
    err = capsys.readouterr().err
    assert "--png" in err and "'.xyz'" in err and ".png" in err
    assert not (tmp_path / "frame.xyz").exists()
    assert main(["inspect", str(data), "--png", str(tmp_path / "frame.svg"), "--json"]) == 0
    assert (tmp_path / "frame.svg").read_text().lstrip().startswith("<?xml")
    capsys.readouterr()
    # a --frame past the recording shows its last frame, and says so (it did not)
    assert main(["inspect", str(data), "--png", str(tmp_path / "late.png"), "--frame", "99"]) == 0
    assert "frame 4 (--frame 99 is past its 5 frames: its last)" in capsys.readouterr().out
    assert main(["inspect", str(data), "--png", str(tmp_path / "late.json.png"), "--frame", "99", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["png_frame"] == 4


def test_render_index_errors_name_the_flag(tmp_path, capsys):
    batch = tmp_path / "batch.npy"
    seq = np.zeros((3, 3, 6, 25, 1), np.float32)
    seq[..., 0] = _person()[None, :, None]
    np.save(batch, seq)
    gif = tmp_path / "b.gif"
    # said "pass index=0..2 (or use load_recordings)", the Python API's words
    assert main(["render", str(batch), "--out", str(gif)]) == 2
    assert "holds 3 recordings; choose one with --index 0..2" in capsys.readouterr().err
    assert main(["render", str(batch), "--out", str(gif), "--index", "3"]) == 2
    assert "--index 3: " in capsys.readouterr().err
    assert not gif.exists()
    assert main(["render", str(batch), "--out", str(gif), "--index", "2"]) == 0
    assert f"wrote {gif} (6 frames, layout ntu25)" in capsys.readouterr().out
    from PIL import Image
    assert Image.open(gif).n_frames == 6
