"""The blocked visiting order: every rating copied once, every cell once per epoch."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd._blocks import BlockedRatings, _balanced_groups, choose_n_blocks
from funksgd._validation import check_ratings


def _random_ratings(n_users=60, n_items=45, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    return check_ratings(sp.csr_array((values, (rows, cols)), shape=mask.shape))


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 5])
@pytest.mark.parametrize("shuffle", [True, False])
def test_schedule_visits_every_cell_once_in_disjoint_strata(n_blocks, shuffle):
    blocks = BlockedRatings(_random_ratings(), n_blocks, np.random.RandomState(0))
    rng = np.random.RandomState(1)
    for _ in range(4):
        schedule = blocks.schedule(rng, shuffle)
        assert schedule.shape == (n_blocks, n_blocks)
        assert schedule.dtype == np.int32 and schedule.flags.c_contiguous
        np.testing.assert_array_equal(np.sort(schedule, axis=None), np.arange(n_blocks**2))
        for stratum in schedule:
            # no user block and no item block twice in a stratum: its cells run at once
            assert len(set(stratum // n_blocks)) == n_blocks
            assert len(set(stratum % n_blocks)) == n_blocks


def test_schedule_order_changes_between_epochs():
    blocks = BlockedRatings(_random_ratings(), 4, np.random.RandomState(0))
    rng = np.random.RandomState(0)
    orders = {blocks.schedule(rng).tobytes() for _ in range(5)}
    assert len(orders) > 1
    unshuffled = blocks.schedule(rng, shuffle=False)
    np.testing.assert_array_equal(unshuffled, blocks.schedule(rng, shuffle=False))


@pytest.mark.parametrize("n_blocks", [1, 3, 4])
def test_grouping_copies_each_rating_once_into_its_cell(n_blocks):
    X = _random_ratings()
    blocks = BlockedRatings(X, n_blocks, np.random.RandomState(0))
    assert blocks.block_ptr[0] == 0 and blocks.block_ptr[-1] == X.nnz
    assert np.all(np.diff(blocks.block_ptr) >= 0)
    # users are positions in row_order: map them back and compare with the input
    # users and items are positions in row_order and item_order: map them back
    rows, cols = blocks.row_order[blocks.users], blocks.item_order[blocks.items]
    x_rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    expected = sorted(zip(x_rows.tolist(), X.indices.tolist(), X.data.tolist(), strict=True))
    got = sorted(zip(rows.tolist(), cols.tolist(), blocks.ratings.tolist(), strict=True))
    assert got == expected
    cell_of = np.repeat(np.arange(n_blocks**2), np.diff(blocks.block_ptr))
    np.testing.assert_array_equal(blocks.user_block[rows], cell_of // n_blocks)
    np.testing.assert_array_equal(blocks.item_block[cols], cell_of % n_blocks)
    np.testing.assert_array_equal(blocks.item_order[blocks.item_position()], np.arange(X.shape[1]))
    # inside a cell the users come in order, each user's ratings together
    for cell in range(n_blocks**2):
        users = blocks.users[blocks.block_ptr[cell] : blocks.block_ptr[cell + 1]]
        assert np.all(np.diff(users) >= 0)


@pytest.mark.parametrize("n_blocks", [1, 3, 4])
def test_grouping_does_not_depend_on_threads(n_blocks):
    X = _random_ratings(n_users=200, n_items=80, density=0.2)
    X = check_ratings(sp.diags_array(np.arange(200) % 7 > 0, dtype=float) @ X)  # empty rows
    one = BlockedRatings(X, n_blocks, np.random.RandomState(0))
    for n_threads in (2, 3):
        many = BlockedRatings(X, n_blocks, np.random.RandomState(0), n_threads=n_threads)
        for name in ("block_ptr", "users", "items", "ratings", "row_order", "item_order"):
            np.testing.assert_array_equal(getattr(many, name), getattr(one, name))


def test_blocks_are_contiguous_in_row_and_item_order():
    blocks = BlockedRatings(_random_ratings(), 4, np.random.RandomState(0))
    assert np.all(np.diff(blocks.user_block[blocks.row_order]) >= 0)
    assert np.all(np.diff(blocks.item_block[blocks.item_order]) >= 0)


def test_balanced_groups_split_counts_evenly():
    counts = np.ones(100, dtype=np.int64)
    groups = _balanced_groups(np.arange(100), counts, 4)
    np.testing.assert_array_equal(np.bincount(groups), [25, 25, 25, 25])
    counts = np.random.default_rng(0).integers(1, 10, 1000)
    order = np.random.default_rng(1).permutation(1000)
    groups = _balanced_groups(order, counts, 5)
    assert np.all(np.diff(groups[order]) >= 0)
    per_group = np.bincount(groups, weights=counts)
    assert per_group.max() - per_group.min() <= 2 * counts.max()


def test_choose_n_blocks_depends_on_shape_only_and_is_bounded():
    netflix = choose_n_blocks(480_189, 17_770, 100_000_000, 100, 4)
    assert netflix == choose_n_blocks(480_189, 17_770, 100_000_000, 100, 4)
    assert 2 <= netflix <= 16
    assert choose_n_blocks(943, 1682, 80_000, 100, 4) >= 2
    # cells are never tiny, and there are never more blocks than users or items
    assert choose_n_blocks(10, 10, 50, 5, 8) == 1
    assert choose_n_blocks(3, 10_000, 10_000_000, 100, 8) <= 3
