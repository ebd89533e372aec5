"""Drawing skeletons with matplotlib (headless: the Agg backend, no display needed)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .data.layouts import get_layout


def _checked(seq, lay) -> np.ndarray:
    """``seq`` as a (3, T, V, M) array of ``lay``'s joints ((3, T, V): one person); a ValueError
    naming the shape otherwise (a wrong joint count would index past the layout's bones)."""
    seq = np.asarray(seq)
    if seq.ndim == 3:
        seq = seq[..., None]
    if seq.ndim != 4 or seq.shape[0] < 2:
        raise ValueError(f"expected a (C, T, V, M) skeleton array with x, y first, got shape {seq.shape}")
    if seq.shape[2] != lay.num_joints:
        raise ValueError(f"the array has {seq.shape[2]} joints but layout {lay.name!r} has {lay.num_joints}")
    return seq


def _figure(size=(4, 5)):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=size)


def _limits(seq: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """x/y limits over the non-zero joints of seq (3, T, V, M), with a margin, equal aspect."""
    pts = seq.transpose(1, 2, 3, 0).reshape(-1, 3)
    pts = pts[np.abs(pts).sum(1) > 0]
    if len(pts) == 0:
        return (-1, 1), (-1, 1)
    lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
    c, r = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.15
    return (c[0] - r, c[0] + r), (c[1] - r, c[1] + r)


def _draw(ax, frame: np.ndarray, layout, colors=("tab:blue", "tab:red")) -> list:
    """Draw one frame (3, V, M) as x-y (front view); returns the artists."""
    artists = []
    for m in range(frame.shape[2]):
        f = frame[:, :, m]
        if not np.abs(f).sum():
            continue
        for a, b in layout.bones:
            artists += ax.plot([f[0, a], f[0, b]], [f[1, a], f[1, b]], "-", color=colors[m % 2], lw=2)
        artists += ax.plot(f[0], f[1], "o", color="k", ms=3)
    return artists


def render_frame(seq: np.ndarray, layout: str, frame: int, path: str | Path, title: str = "") -> Path:
    """Save frame ``frame`` of ``seq`` (3, T, V, M) as a PNG front view."""
    lay = get_layout(layout)
    seq = _checked(seq, lay)
    if not 0 <= frame < seq.shape[1]:
        raise ValueError(f"frame {frame} outside 0..{seq.shape[1] - 1}")
    path = image_path(path)
    plt, fig = _figure()
    try:
        ax = fig.add_subplot(111)
        _draw(ax, seq[:, frame], lay)
        xl, yl = _limits(seq[:, frame:frame + 1])
        ax.set_xlim(*xl); ax.set_ylim(*yl); ax.set_aspect("equal"); ax.set_xlabel("x"); ax.set_ylabel("y")
        ax.set_title(title or f"frame {frame}", fontsize=9)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def image_path(path: str | Path) -> Path:
    """The file :func:`render_frame` writes for ``path``: a name without a suffix gets ``.png``
    (matplotlib would add it anyway, so the file written and the one reported were not the same);
    a suffix matplotlib cannot write (``.xyz``) is a ValueError listing the ones it can."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path).expanduser()
    if path.is_dir():  # a folder is refused by the caller (new_output), not turned into folder.png
        return path
    if not path.suffix:
        return path.with_name(path.name + ".png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise ValueError(f"{path}: cannot write a {path.suffix!r} image; use .png (or one of "
                         f"{', '.join('.' + f for f in sorted(formats))})")
    return path


def render_animation(seq: np.ndarray, length: int, layout: str, path: str | Path, title: str = "",
                     fps: int = 15) -> Path:
    """Save the valid frames of ``seq`` (3, T, V, M) as an animated GIF (Pillow writer)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    lay = get_layout(layout)
    seq = _checked(seq, lay)
    if isinstance(length, (bool, np.bool_)) or int(length) != length:
        raise ValueError(f"length {length!r} is not a whole number of frames")
    length = int(length)
    if length < 1:
        raise ValueError("cannot render a sequence with no frames")
    if length > seq.shape[1]:  # the animation ended in an IndexError after writing part of the GIF
        raise ValueError(f"length {length} is longer than the array's {seq.shape[1]} frames")
    seq = seq[:, :length]
    plt, fig = _figure()
    ax = fig.add_subplot(111)
    xl, yl = _limits(seq)
    state = {"artists": []}

    def update(t):
        for a in state["artists"]:
            a.remove()
        state["artists"] = _draw(ax, seq[:, t], lay)
        ax.set_title(f"{title}  [{t + 1}/{length}]" if title else f"frame {t + 1}/{length}", fontsize=9)
        return state["artists"]

    ax.set_xlim(*xl); ax.set_ylim(*yl); ax.set_aspect("equal")
    anim = FuncAnimation(fig, update, frames=length, blit=False)
    path = Path(path).expanduser()
    # matplotlib's writer saves the frames drawn so far even when drawing stops (Ctrl-C, an
    # error): written under a temporary name, a cut-short GIF never takes the real one's place
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        anim.save(tmp, writer=PillowWriter(fps=fps))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
