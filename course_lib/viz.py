"""Pictures of attention: one labelled heatmap, and a grid of them (e.g. layers x heads).

Every picture has a title and labelled axes; tick labels are strings (tokens, item
titles, positions), never bare index grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_MAX_TICKS = 40  # beyond this many labels, show every n-th one so they stay readable
_MAX_ANNOTATED_CELLS = 64  # write numbers into cells only for small matrices


def to_numpy(x: object) -> np.ndarray:
    """A float NumPy copy of a tensor (any device, with or without grad) or array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float64)


def _check_labels(labels: Sequence[str] | None, size: int, name: str, axis: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != size:
        raise ValueError(f"{name} has {len(labels)} labels but the matrix has {size} {axis}.")
    return labels


def _thin(labels: list[str] | None, max_ticks: int = _MAX_TICKS) -> list[str] | bool:
    if labels is None:
        return False
    if len(labels) <= max_ticks:
        return labels
    step = int(np.ceil(len(labels) / max_ticks))
    return [label if i % step == 0 else "" for i, label in enumerate(labels)]


def _panel_ticks(ax, labels: list[str] | bool, axis: str) -> None:
    """Ticks at cell centres with ``labels`` (False = no ticks), as seaborn's heatmap places them."""
    set_ticks, set_labels = (ax.set_xticks, ax.set_xticklabels) if axis == "x" else (ax.set_yticks, ax.set_yticklabels)
    if labels is False:
        set_ticks([])
        return
    set_ticks(np.arange(len(labels)) + 0.5)
    set_labels(labels)


def _color_scale(values: np.ndarray, cmap: str | None, vmin: float | None, vmax: float | None) -> dict:
    """Weights (all >= 0) get a sequential map from 0; signed scores a diverging map around 0."""
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if lo < 0 < hi and cmap is None:
        bound = max(-lo, hi)
        return dict(cmap="vlag", vmin=-bound if vmin is None else vmin, vmax=bound if vmax is None else vmax)
    return dict(
        cmap=cmap or "rocket_r",
        vmin=(min(0.0, lo) if vmin is None else vmin),
        vmax=(hi if vmax is None else vmax),
    )


def heatmap(
    matrix: object,
    *,
    title: str,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    attn_mask: object | None = None,
    annotate: bool | None = None,
    fmt: str = ".2f",
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str = "weight",
    ax: Axes | None = None,
) -> Axes:
    """Draw one labelled heatmap of a (rows, columns) matrix, e.g. queries x keys.

    Args:
        matrix: 2-D tensor or array (Lq, Lk).
        title: the picture's title (required: say what is shown).
        x_labels: one string per column (tokens, item titles, positions).
        y_labels: one string per row.
        xlabel, ylabel: axis names.
        attn_mask: optional bool (Lq, Lk), True = may attend; False cells are drawn
            hatched grey instead of coloured, so masked positions are visible as such.
        annotate: write the values in the cells (default: only for small matrices).
        fmt: number format for annotations.
        cmap, vmin, vmax: colour scale; by default sequential from 0 for weights and
            diverging around 0 for signed scores.
        colorbar_label: what the colours mean.
        ax: draw into this Axes (default: a new figure).

    Returns:
        The matplotlib Axes.
    """
    values = to_numpy(matrix)
    if values.ndim != 2:
        raise ValueError(f"heatmap expects a 2-D matrix (rows, columns), got shape {values.shape}.")
    rows, cols = values.shape
    x_labels = _check_labels(x_labels, cols, "x_labels", "columns")
    y_labels = _check_labels(y_labels, rows, "y_labels", "rows")
    hidden = None
    if attn_mask is not None:
        allowed = to_numpy(attn_mask).astype(bool)
        if allowed.shape != values.shape:
            allowed = np.broadcast_to(allowed, values.shape)
        hidden = ~allowed  # seaborn hides True cells; our masks say True = may attend
    if annotate is None:
        annotate = rows * cols <= _MAX_ANNOTATED_CELLS
    if ax is None:
        width = min(1.0 + 0.45 * cols, 14.0) + 1.5
        height = min(1.0 + 0.4 * rows, 12.0) + 0.8
        _, ax = plt.subplots(figsize=(max(width, 4.0), max(height, 3.0)))
    sns.heatmap(
        values,
        ax=ax,
        mask=hidden,
        annot=annotate,
        fmt=fmt,
        square=False,
        xticklabels=_thin(x_labels),
        yticklabels=_thin(y_labels),
        cbar_kws={"label": colorbar_label},
        **_color_scale(values if hidden is None else values[~hidden], cmap, vmin, vmax),
    )
    if hidden is not None:
        ax.set_facecolor("#e6e6e6")
        ax.patch.set_hatch("///")
        ax.patch.set_edgecolor("#b3b3b3")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if x_labels is not None:
        ax.tick_params(axis="x", labelrotation=90 if max(map(len, x_labels), default=0) > 3 else 0)
    if y_labels is not None:
        ax.tick_params(axis="y", labelrotation=0)
    return ax


def heatmap_grid(
    matrices: object,
    *,
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    attn_mask: object | None = None,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str = "weight",
    panel_size: float = 2.6,
) -> Figure:
    """Draw a rows x columns grid of heatmaps with one shared colour scale.

    Typical use: layers x heads of a Transformer, ``matrices`` of shape
    (layers, heads, Lq, Lk), ``row_labels=["layer 1", ...]``, ``col_labels=["head 1", ...]``.

    Args:
        matrices: 4-D tensor/array (R, C, Lq, Lk), or 3-D (C, Lq, Lk) for a single row.
        title: the figure's title.
        row_labels: R strings, written at the left of each row.
        col_labels: C strings, written above each column.
        x_labels, y_labels: tick labels shared by every panel (Lk and Lq strings).
        xlabel, ylabel: axis names, written once on the outer panels.
        attn_mask: optional bool broadcastable to (Lq, Lk), True = may attend; False
            cells are hatched grey in every panel.
        cmap, vmin, vmax: shared colour scale (see :func:`heatmap`).
        colorbar_label: what the colours mean.
        panel_size: inches per panel.

    Returns:
        The matplotlib Figure.
    """
    values = to_numpy(matrices)
    if values.ndim == 3:
        values = values[None]
    if values.ndim != 4:
        raise ValueError(
            f"heatmap_grid expects (rows, columns, Lq, Lk) or (columns, Lq, Lk), got shape {values.shape}."
        )
    n_rows, n_cols, lq, lk = values.shape
    row_labels = _check_labels(row_labels, n_rows, "row_labels", "grid rows")
    col_labels = _check_labels(col_labels, n_cols, "col_labels", "grid columns")
    x_labels = _check_labels(x_labels, lk, "x_labels", "columns (keys)")
    y_labels = _check_labels(y_labels, lq, "y_labels", "rows (queries)")
    hidden = None
    if attn_mask is not None:
        hidden = ~np.broadcast_to(to_numpy(attn_mask).astype(bool), (lq, lk))
    shown = values if hidden is None else values[..., ~hidden]
    scale = _color_scale(shown, cmap, vmin, vmax)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(panel_size * n_cols + 1.2, panel_size * n_rows + 0.8),
        squeeze=False,
        constrained_layout=True,
    )
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            # pcolormesh, not sns.heatmap: seaborn redraws the whole figure for every panel to
            # check label overlap, which made a 6 x 12 grid take over a minute
            panel = values[r, c] if hidden is None else np.ma.masked_array(values[r, c], mask=hidden)
            ax.pcolormesh(panel, **scale)
            ax.set_xlim(0, lk)
            ax.set_ylim(lq, 0)  # row 0 at the top, as in a matrix
            _panel_ticks(ax, _thin(x_labels, 20) if r == n_rows - 1 else False, "x")
            _panel_ticks(ax, _thin(y_labels, 20) if c == 0 else False, "y")
            if hidden is not None:
                ax.set_facecolor("#e6e6e6")
                ax.patch.set_hatch("///")
                ax.patch.set_edgecolor("#b3b3b3")
            if r == 0:
                ax.set_title(col_labels[c])
            if c == 0:
                ax.set_ylabel(f"{row_labels[r]}\n{ylabel}")
            if r == n_rows - 1:
                ax.set_xlabel(xlabel)
                ax.tick_params(axis="x", labelrotation=90)
            ax.tick_params(axis="y", labelrotation=0)
    mappable = axes[0, 0].collections[0]
    fig.colorbar(mappable, ax=axes, shrink=0.8, label=colorbar_label)
    fig.suptitle(title)
    return fig
