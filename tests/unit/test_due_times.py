"""The intake's schedule of looks: due paths come out earliest first, each once, and a path
whose time moved or that was dropped does not come out at its old time."""

from __future__ import annotations

from hotfolder.daemon.due import DueTimes


def test_due_paths_come_out_earliest_first_and_each_once():
    due = DueTimes()
    due["c"] = 3.0
    due["a"] = 1.0
    due["b"] = 1.0
    due["a"] = 1.0  # set again to the same time: still handed over once
    assert list(due.due(2.0)) == ["a", "b"]
    assert list(due.due(2.0)) == []  # taken off as handed over
    assert list(due.due(5.0)) == ["c"]


def test_a_moved_or_dropped_path_is_not_handed_over_at_its_old_time():
    due = DueTimes()
    due["later"] = 1.0
    due["gone"] = 1.0
    due["later"] = 9.0
    due.pop("gone")
    assert list(due.due(2.0)) == []
    assert "gone" not in due and len(due) == 1
    assert list(due.due(9.0)) == ["later"]


def test_one_not_looked_at_is_put_back_for_the_next_tick():
    due = DueTimes()
    for path in ("x", "y", "z"):
        due[path] = 0.0
    handed = due.due(1.0)
    assert next(handed) == "x"
    due["x"] = 5.0  # looked at: due again later
    assert next(handed) == "y"
    due.put_back("y")  # the tick's limit: not looked at
    assert list(due.due(1.0)) == ["z", "y"]
