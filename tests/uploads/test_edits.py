"""Column choices carried across a re-read of the verify page (``uploads.edits``)."""

from uploads.edits import Choice, carry_edits, from_json, to_json


def test_edits_follow_their_header_and_the_rest_is_what_the_new_read_detected():
    previous = [Choice("Region", "region", "text"), Choice("Amount", "amount", "text")]
    posted = [Choice("Region", "area", "text"), Choice("Amount", "amount", "text")]
    # Read again with a decimal comma: "Amount" is numeric now, and a column comes first.
    now = [
        Choice("Code", "code", "integer"),
        Choice("Amount", "amount", "numeric"),
        Choice("Region", "region", "text"),
    ]

    carried = carry_edits(previous, posted, now)

    assert carried.choices == [
        Choice("Code", "code", "integer"),
        Choice("Amount", "amount", "numeric"),  # not edited: the new read's type
        Choice("Region", "area", "text"),
    ]
    assert (carried.kept, carried.lost) == (1, 0)


def test_a_repeated_header_is_matched_by_its_position_among_its_repeats():
    previous = [Choice("x", "x", "integer"), Choice("y", "y", "text"), Choice("x", "x_1", "text")]
    posted = [Choice("x", "first", "integer"), Choice("y", "y", "text"), Choice("x", "x_1", "date")]
    now = [Choice("x", "x", "integer"), Choice("x", "x_1", "text")]

    carried = carry_edits(previous, posted, now)

    assert carried.choices == [Choice("x", "first", "integer"), Choice("x", "x_1", "date")]
    assert (carried.kept, carried.lost) == (2, 0)


def test_edits_to_a_header_that_is_gone_are_counted_as_lost():
    previous = [Choice("a;b", "a_b", "text")]
    posted = [Choice("a;b", "ab", "text")]
    now = [Choice("a", "a", "text"), Choice("b", "b", "text")]

    carried = carry_edits(previous, posted, now)

    assert carried.choices == now
    assert (carried.kept, carried.lost) == (0, 1)


def test_a_changed_date_format_is_kept_and_an_unchanged_one_follows_the_new_read():
    previous = [Choice("d", "d", "date", "%d/%m/%Y"), Choice("e", "e", "date", "%d/%m/%Y")]
    posted = [Choice("d", "d", "date", "%m/%d/%Y"), Choice("e", "e", "date", "%d/%m/%Y")]
    now = [Choice("d", "d", "date", "%d/%m/%Y"), Choice("e", "e", "text")]

    carried = carry_edits(previous, posted, now)

    assert carried.choices == [Choice("d", "d", "date", "%m/%d/%Y"), Choice("e", "e", "text")]
    assert carried.kept == 1


def test_choices_travel_as_json_and_anything_else_reads_as_none():
    choices = [Choice("Région", "r_gion", "date", "%d/%m/%Y"), Choice("", "column_2", "text")]

    assert from_json(to_json(choices)) == choices
    for text in ("", "not json", "{}", '[["a", "b"]]', "[[1, 2, 3, 4]]"):
        assert from_json(text) == []
