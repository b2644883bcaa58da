"""The delta chain planner (:mod:`lgdist.checkpoint.delta`), without a store."""

from __future__ import annotations

import pytest

from lgdist.checkpoint import delta
from lgdist.checkpoint.delta import FANOUT, Link, plan_row


def _version(i: int, branch: str = "a") -> str:
    return f"{i:032}.{branch}"


def _grow(steps: int, branch: str = "a", start: tuple[Link, list, int] | None = None):
    """Plan ``steps`` appends of one item each; returns (rows, links, values)
    where rows maps version -> (base, level, items)."""
    link, value, first = start if start else (None, [], 0)
    rows, links, values = {}, [], []
    for i in range(first, first + steps):
        new = value + [i]
        row = plan_row(new, _version(i, branch), link, value if link else None)
        rows[row.link.version] = (row.base, row.level, row.items)
        link, value = row.link, new
        links.append(link)
        values.append(new)
    return rows, links, values


def _rebuild(rows: dict, version: str) -> list:
    pieces, gap = delta.assemble({v: (base, items) for v, (base, _level, items) in rows.items()}, version)
    assert gap is None
    return [item for piece in pieces for item in piece]


def _chain(rows: dict, version: str) -> list[str]:
    chain = [version]
    while rows[chain[-1]][0] is not None:
        chain.append(rows[chain[-1]][0])
    return chain


def test_first_value_is_a_root_and_later_appends_are_deltas():
    rows, links, _ = _grow(3)

    assert [rows[link.version][:2] for link in links] == [(None, None), (links[0].version, 0), (links[1].version, 0)]
    assert rows[links[2].version][2] == [2]  # only the appended item


def test_every_value_rebuilds_from_its_chain():
    rows, links, values = _grow(1100)

    for link, value in zip(links, values):
        assert _rebuild(rows, link.version) == value


def test_chain_length_is_bounded_per_level():
    rows, links, _ = _grow(1100)

    longest = max(len(_chain(rows, link.version)) for link in links[:FANOUT])
    assert longest == FANOUT  # root + 31 one-step deltas
    assert max(len(_chain(rows, link.version)) for link in links[:FANOUT**2]) <= 2 * (FANOUT - 1) + 1
    assert max(len(_chain(rows, link.version)) for link in links) <= 3 * (FANOUT - 1) + 1


def test_level_rows_hold_everything_since_their_base_so_writes_stay_flat():
    rows, links, _ = _grow(1100)

    # Row 32 (level 1) restates the 32 items since the root, row 1024 (level 2)
    # the 1024 items since the root; every other row is one item.
    assert rows[links[32].version][1:] == (1, list(range(1, 33)))
    assert rows[links[64].version][0] == links[32].version
    assert rows[links[1024].version][1:] == (2, list(range(1, 1025)))
    written = sum(len(items) for _base, _level, items in rows.values())
    assert written < 3 * len(rows)  # ~1 item per step per level in use


@pytest.mark.parametrize("index", [0, 1, 31, 32, 33, 63, 64, 95, 1023, 1024, 1057, 1099])
def test_chain_ranges_select_exactly_the_chain(index):
    rows, links, _ = _grow(1100)
    root, ranges = delta.chain_ranges(links[index])

    selected = {root} | {
        v for v, (_base, level, _items) in rows.items() for t, after, up_to in ranges if level == t and after < v <= up_to
    }

    assert selected == set(_chain(rows, links[index].version))


def test_sibling_branch_rows_are_left_out_by_the_base_links():
    trunk, links, values = _grow(40)
    fork_at = links[20]
    a_rows, a_links, a_values = _grow(30, "x", (fork_at, values[20], 21))
    b_rows, b_links, b_values = _grow(30, "y", (fork_at, values[20], 21))
    rows = {**trunk, **a_rows, **b_rows}  # one table: both branches share version ranges

    for link, value in zip(a_links + b_links, a_values + b_values):
        root, ranges = delta.chain_ranges(link)
        fetched = {root} | {
            v for v, (_b, level, _i) in rows.items() for t, after, up_to in ranges if level == t and after < v <= up_to
        }
        assert set(_chain(rows, link.version)) <= fetched
        assert _rebuild(rows, link.version) == value


def test_value_that_does_not_extend_the_parent_is_a_new_root():
    _, links, values = _grow(5)
    replaced = values[-1][:2] + ["changed"] + values[-1][3:] + [99]

    row = plan_row(replaced, _version(99), links[-1], values[-1])

    assert (row.base, row.level, row.link.index) == (None, None, 0)
    assert row.items == replaced


@pytest.mark.parametrize(
    "previous",
    [
        [0, 1, 2],  # shorter than the stored parent: not the parent's value
        [0, 1, 2, 3, 4, 5],  # longer (mutated in place after it was stored)
        (0, 1, 2, 3, 4),  # not a list
        None,
    ],
)
def test_previous_value_that_disagrees_with_the_stored_parent_gives_a_root(previous):
    _, links, values = _grow(5)

    row = plan_row(values[-1] + [5], _version(5), links[-1], previous)

    assert row.base is None


def test_only_items_that_would_be_stored_alike_are_a_prefix():
    assert delta.extends([1, 2, 3], [1, 2])
    assert delta.extends([{"a": [1]}, 2], [{"a": [1]}])  # equal copies
    assert not delta.extends([1.0, 2, 3], [1, 2])
    assert not delta.extends([True, 2], [1])
    assert not delta.extends([{"a": True}], [{"a": 1}])  # equal, but stored differently
    assert not delta.extends([1], [1, 2])


def test_values_that_are_not_lists_get_no_link():
    row = plan_row({"a": 1}, _version(1), None, None)

    assert row == (({"a": 1}), None, None, None)


def test_links_round_trip_through_json():
    _, links, _ = _grow(70)
    as_json = delta.links_to_json({"messages": links[-1]})

    assert delta.links_from_json(as_json) == {"messages": links[-1]}


def test_sql_arms_are_batched_under_the_parameter_limits():
    from lgdist.checkpoint import sql_chains

    arms = [(500, "a"), (400, "b"), (1, "c")] + [(4, f"r{i}") for i in range(100)]
    batches = list(sql_chains._batches(arms))

    assert [arm for batch in batches for arm in batch] == [arm for _cost, arm in arms]
    cost = dict((arm, c) for c, arm in arms)
    for batch in batches:
        assert len(batch) <= sql_chains._ARMS_PER_QUERY
        assert len(batch) == 1 or sum(cost[a] + 2 for a in batch) <= sql_chains._BINDS_PER_QUERY
