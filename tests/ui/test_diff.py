"""The prompt diff: line numbers on each side, replacements as removed then added, hunks."""

from __future__ import annotations

from ui.diff import DiffLine, DiffSummary, Skipped, collapse, line_diff, summarize


def test_identical_texts_are_all_same_with_both_numbers() -> None:
    text = "You are helpful.\nAnswer briefly.\nCite sources."
    lines = line_diff(text, text)
    assert [line.kind for line in lines] == ["same"] * 3
    assert [(line.old_number, line.new_number) for line in lines] == [(1, 1), (2, 2), (3, 3)]
    assert summarize(lines) == DiffSummary(added=0, removed=0)


def test_an_inserted_line_is_numbered_on_the_new_side_only() -> None:
    lines = line_diff("a\nb\nc", "a\nb\nnew\nc")
    assert lines == [
        DiffLine("same", 1, 1, "a"),
        DiffLine("same", 2, 2, "b"),
        DiffLine("added", None, 3, "new"),
        DiffLine("same", 3, 4, "c"),
    ]


def test_a_replacement_gives_removed_lines_then_added_lines() -> None:
    lines = line_diff("a\nold one\nold two\nz", "a\nnew one\nz")
    assert lines == [
        DiffLine("same", 1, 1, "a"),
        DiffLine("removed", 2, None, "old one"),
        DiffLine("removed", 3, None, "old two"),
        DiffLine("added", None, 2, "new one"),
        DiffLine("same", 4, 3, "z"),
    ]
    assert summarize(lines) == DiffSummary(added=1, removed=2)


def test_windows_line_endings_do_not_count_as_changes() -> None:
    lines = line_diff("a\r\nb\r\n", "a\nb\n")
    assert lines == [DiffLine("same", 1, 1, "a"), DiffLine("same", 2, 2, "b")]


def test_text_is_kept_raw_for_the_template_to_escape() -> None:
    lines = line_diff("", "<b>&</b>")
    assert lines == [DiffLine("added", None, 1, "<b>&</b>")]


def test_collapse_keeps_context_around_a_change_and_counts_what_it_skips() -> None:
    old = "\n".join(f"line {n}" for n in range(1, 21))
    new = old.replace("line 10", "line ten")
    shown = collapse(line_diff(old, new), context=2)
    assert shown[0] == Skipped(7)
    assert shown[-1] == Skipped(8)
    middle = shown[1:-1]
    assert all(isinstance(item, DiffLine) for item in middle)
    assert [item.text for item in middle if isinstance(item, DiffLine)] == [
        "line 8",
        "line 9",
        "line 10",
        "line ten",
        "line 11",
        "line 12",
    ]


def test_collapse_merges_hunks_whose_context_overlaps_and_splits_distant_ones() -> None:
    old = "\n".join(str(n) for n in range(1, 31))
    new = old.replace("\n5\n", "\nfive\n").replace("\n8\n", "\neight\n")
    new = new.replace("\n25\n", "\ntwenty-five\n")
    shown = collapse(line_diff(old, new), context=1)
    skipped = [item.count for item in shown if isinstance(item, Skipped)]
    # Lines 1-3 hidden; 4..9 one hunk (5 and 8 are 3 apart); 10..23 hidden; 24..26; 27..30.
    assert skipped == [3, 14, 4]
    kept = sum(1 for item in shown if isinstance(item, DiffLine))
    total = len(line_diff(old, new))
    assert kept + sum(skipped) == total


def test_collapse_of_an_unchanged_text_is_one_skip_and_context_zero_shows_only_changes() -> None:
    lines = line_diff("a\nb\nc", "a\nb\nc")
    assert collapse(lines) == [Skipped(3)]
    changed = line_diff("a\nb\nc", "a\nB\nc")
    assert collapse(changed, context=0) == [
        Skipped(1),
        DiffLine("removed", 2, None, "b"),
        DiffLine("added", None, 2, "B"),
        Skipped(1),
    ]


def test_collapse_with_a_short_diff_keeps_everything() -> None:
    lines = line_diff("a\nb", "a\nc")
    assert collapse(lines) == lines
