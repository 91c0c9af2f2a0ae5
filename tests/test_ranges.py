from probes.ranges import merge_ranges


def test_overlapping_and_adjacent_ranges_are_joined_in_order() -> None:
    assert merge_ranges([(8, 12), (1, 3), (4, 7), (20, 20)]) == ((1, 12), (20, 20))
    assert merge_ranges(iter([(5, 5), (5, 9), (11, 12)])) == ((5, 9), (11, 12))
    assert merge_ranges([]) == ()
