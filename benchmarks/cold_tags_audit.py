"""How much of users' activity the ``tags`` item feature of ml-latest-small carries onto cold items.

MovieLens tags are written by users (``tags.csv``: userId, movieId, tag, timestamp), so an item's tags
say that someone engaged with it. On a cold-items split (:func:`gan4rec.data.split.cold_items`) a cold
item keeps its tags as content. This prints, per split seed, the share of items with tags, the share of
cold-test interactions that fall on tagged items (tagged items are the popular ones: a popularity hint
the content carries), and the share of cold-test (user, item) pairs where that user tagged that item (a
direct trace of the test interaction in the features)::

    GAN4REC_DATA=../shared/datasets python benchmarks/cold_tags_audit.py --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="ml-latest-small")
    p.add_argument("--seeds", default="0,1,2,3,4")
    args = p.parse_args()
    import polars as pl

    from gan4rec.data.datasets import fetch, load_dataset
    from gan4rec.data.split import cold_items

    data = load_dataset(args.data)
    tags = pl.read_csv(fetch(args.data) / "tags.csv", columns=["userId", "movieId"], schema_overrides={
        "userId": pl.Int64, "movieId": pl.Int64})
    pairs = set(zip(tags["userId"].to_list(), tags["movieId"].to_list(), strict=True))
    tagged = np.asarray(data.item_features["tags"].getnnz(axis=1) > 0)  # (n_items,)
    print(f"{args.data}: {len(tags)} tag applications by {tags['userId'].n_unique()} users; "
          f"{tagged.mean():.1%} of the {data.n_items} rated items have a tag")
    print(f"{'seed':>4} {'cold-test items tagged':>22} {'cold-test inter. on tagged':>26} {'pairs tagged by the user':>24}")
    for seed in (int(s) for s in args.seeds.split(",")):
        split = cold_items(data, random_state=seed)
        test = split.test
        cold = np.zeros(test.n_items, dtype=bool)
        cold[split.cold_test_items] = True
        on_cold = cold[test.indices]
        users = np.asarray(test.user_map.ids)[test.user_index()[on_cold]]
        items = np.asarray(test.item_map.ids)[test.indices[on_cold]]
        by_user = np.mean([(int(u), int(i)) in pairs for u, i in zip(users, items, strict=True)])
        print(f"{seed:>4} {tagged[split.cold_test_items].mean():>22.1%} {tagged[test.indices[on_cold]].mean():>26.1%} "
              f"{by_user:>24.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
