"""The picture helpers: labels, titles, masks and shape errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.attention import causal_mask
from course_lib.viz import heatmap, heatmap_grid


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_heatmap_labels_title_and_values():
    weights = torch.tensor([[0.7, 0.3], [0.1, 0.9]], requires_grad=True)
    ax = heatmap(weights, title="Weights", x_labels=["Alien", "Heat"], y_labels=["Ann", "Bo"], xlabel="item", ylabel="user")
    assert ax.get_title() == "Weights"
    assert ax.get_xlabel() == "item" and ax.get_ylabel() == "user"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Alien", "Heat"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Ann", "Bo"]
    assert [t.get_text() for t in ax.texts] == ["0.70", "0.30", "0.10", "0.90"]  # annotated, small matrix
    np.testing.assert_allclose(ax.collections[0].get_array().reshape(2, 2), weights.detach().numpy())


def test_heatmap_hides_masked_cells():
    ax = heatmap(torch.rand(3, 3), title="causal", attn_mask=causal_mask(3))
    shown = ax.collections[0].get_array()
    assert np.ma.count_masked(shown) == 3  # the three cells above the diagonal


def test_heatmap_signed_scores_get_a_diverging_scale_centred_at_zero():
    ax = heatmap(np.array([[-2.0, 1.0], [0.5, 0.0]]), title="scores")
    low, high = ax.collections[0].get_clim()
    assert low == -high == -2.0


def test_heatmap_thins_long_tick_label_lists():
    labels = [f"pos {i}" for i in range(100)]
    ax = heatmap(np.random.rand(2, 100), title="long", x_labels=labels, y_labels=["a", "b"])
    texts = [t.get_text() for t in ax.get_xticklabels()]
    assert 0 < sum(bool(t) for t in texts) <= 40 and texts[0] == "pos 0"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(matrix=np.zeros((2, 2, 2))), "2-D"),
        (dict(matrix=np.zeros((2, 3)), x_labels=["a", "b"]), "x_labels has 2 labels but the matrix has 3 columns"),
        (dict(matrix=np.zeros((2, 3)), y_labels=["a"]), "y_labels has 1 labels but the matrix has 2 rows"),
    ],
)
def test_heatmap_errors(kwargs, words):
    with pytest.raises(ValueError, match=words):
        heatmap(title="t", **kwargs)


def test_heatmap_grid_layout_and_shared_scale():
    values = torch.rand(2, 3, 4, 4)
    fig = heatmap_grid(
        values,
        title="layers x heads",
        row_labels=["layer 1", "layer 2"],
        col_labels=["head 1", "head 2", "head 3"],
        x_labels=list("abcd"),
        y_labels=list("wxyz"),
        attn_mask=causal_mask(4),
    )
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6
    assert fig._suptitle.get_text() == "layers x heads"
    assert [panels[c].get_title() for c in range(3)] == ["head 1", "head 2", "head 3"]
    assert panels[0].get_ylabel().startswith("layer 1") and panels[3].get_ylabel().startswith("layer 2")
    assert [t.get_text() for t in panels[3].get_xticklabels()] == list("abcd")
    climits = {ax.collections[0].get_clim() for ax in panels}
    assert len(climits) == 1  # one colour scale for all panels


def test_heatmap_grid_errors():
    with pytest.raises(ValueError, match="row_labels has 1 labels"):
        heatmap_grid(np.zeros((2, 1, 3, 3)), title="t", row_labels=["r"], col_labels=["c"])
    with pytest.raises(ValueError, match=r"\(rows, columns, Lq, Lk\)"):
        heatmap_grid(np.zeros((3, 3)), title="t", row_labels=["r"], col_labels=["c"])
