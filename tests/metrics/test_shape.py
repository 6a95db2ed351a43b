from __future__ import annotations

import polars as pl
import pytest

from workbench.metrics import instruction_shape, instruction_shapes, shape_counts


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("Write a short poem about cats.", ("write", "poem")),
        ("Please give me three tips for sleeping well", ("give", "tip")),
        ("Can you explain how rainbows form?", ("explain", "how")),
        ("Given a list of numbers, sort them in ascending order.", ("sort", None)),
        ("What is the capital of France?", ("(question)", "what")),
        ("Come up with a list of metaphors for time.", ("come up", "list")),
        ("Generate stories about dragons", ("generate", "story")),
        ("", (None, None)),
    ],
)
def test_instruction_shape(text, shape):
    assert instruction_shape(text) == shape


def test_shape_counts_groups_and_ranks():
    texts = ["Write a poem about x"] * 3 + ["Write an essay on y", "Give me two examples", None]
    df = pl.DataFrame({"id": [str(i) for i in range(6)], "text": texts})
    per_row = instruction_shapes(df)
    assert per_row["id"].to_list() == [str(i) for i in range(6)]
    assert per_row["verb"].to_list()[-1] is None
    out = shape_counts(df)
    assert out.row(0, named=True) == {
        "verb": "write",
        "object": "poem",
        "count": 3,
        "verb_count": 4,
        "share": pytest.approx(3 / 5),
    }
    assert out.filter(pl.col("verb") == "give")["object"].to_list() == ["example"]
    assert shape_counts(df, top_verbs=1)["verb"].unique().to_list() == ["write"]
    assert shape_counts(df, top_objects=1).filter(pl.col("verb") == "write").height == 1
