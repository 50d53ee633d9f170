"""ui/selection.py: a table selection is only used while it still points at a row."""

from types import SimpleNamespace

from ui.selection import picked_index, rows_key


def event(*rows: int) -> SimpleNamespace:
    return SimpleNamespace(selection=SimpleNamespace(rows=list(rows)))


def test_a_position_past_the_end_of_a_shrunk_table_is_no_selection() -> None:
    assert picked_index(event(2), 2) is None
    assert picked_index(event(1), 2) == 1
    assert picked_index(event(), 2) is None
    assert picked_index(None, 2) is None


def test_the_widget_key_follows_the_rows_shown() -> None:
    assert rows_key("queue", [1, 2, 3]) == rows_key("queue", [1, 2, 3])
    assert rows_key("queue", [1, 2, 3]) != rows_key("queue", [1, 2])
    assert rows_key("queue", [1, 2]) != rows_key("queue", [2, 1])
