"""One synthesis experiment: a fixed member / non-member / held-out split, a generator, every measure.

The user split (fixed by its seed and recorded in the result)::

    real users (shuffled by the split seed)
    [ members 50% ......... | non-members 25% .... | held-out 25% ........ ]
      the generator's         never seen; the MIA's   never seen by the generator: TSTR's test users
      training data           negatives               (their items split 80/20 train/test) and the
                                                      shadow attacker's own data

Fidelity is measured against the members (what the generator was shown), privacy on members vs
non-members, and utility (TSTR) on the held-out users, whom neither the generator nor any model trained
on members or synthetic users has seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan4rec._progress import step
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.synth import fidelity, privacy
from gan4rec.synth.generators import create_generator, rows_of

__all__ = [
    "COMPARE_GENERATORS",
    "Context",
    "compare",
    "evaluate_generator",
    "prepare",
    "scalars",
    "summarize",
    "target_test",
    "user_split",
]

logger = logging.getLogger(__name__)

_MIN_USERS = 8


def user_split(data: Interactions, seed: int, member_frac: float = 0.5, nonmember_frac: float = 0.25) -> dict[str, np.ndarray]:
    """Member, non-member and held-out user indices (module docstring); users without items are left out."""
    active = np.flatnonzero(data.user_counts() > 0)
    if len(active) < _MIN_USERS:
        raise DataError(f"the data has {len(active)} users with interactions; synthesis needs at least {_MIN_USERS}")
    order = np.random.default_rng(seed).permutation(active)
    a = round(member_frac * len(order))
    b = a + round(nonmember_frac * len(order))
    return {"members": np.sort(order[:a]), "nonmembers": np.sort(order[a:b]), "holdout": np.sort(order[b:])}


@dataclass
class Context:
    """The split of one seed and what every generator is measured against."""

    data: Interactions
    seed: int
    split: dict[str, np.ndarray]
    members: Interactions
    nonmembers: Interactions
    holdout: Interactions
    eval_train: Interactions
    eval_test: Interactions
    real_ndcg: dict[str, float]

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of the split (sizes, seed, fingerprint of the data)."""
        return {
            "seed": self.seed, "data": self.data.fingerprint(),
            "fractions": {"members": 0.5, "nonmembers": 0.25, "holdout": 0.25},
            "n_members": len(self.split["members"]), "n_nonmembers": len(self.split["nonmembers"]),
            "n_holdout": len(self.split["holdout"]), "holdout_test_frac": 0.2,
            "real_ndcg": self.real_ndcg,
        }


def prepare(data: Interactions, seed: int, models: tuple[str, ...] = fidelity.TSTR_MODELS) -> Context:
    """Split ``data`` by ``seed`` and score the models trained on the real members (the TSTR reference)."""
    from gan4rec.data.split import random_holdout

    split = user_split(data, seed)
    holdout = rows_of(data, split["holdout"])
    sp_ = random_holdout(holdout, test_frac=0.2, valid_frac=0.0, random_state=seed)
    assert sp_.test is not None  # test_frac > 0
    members = rows_of(data, split["members"])
    with step(f"fitting {len(models)} reference models on {members.n_users} real users", logger):
        real = fidelity.tstr_scores(fidelity.fit_tstr_models(members, models, random_state=seed),
                                    sp_.train, sp_.test)
    return Context(data=data, seed=seed, split=split, members=members,
                   nonmembers=rows_of(data, split["nonmembers"]), holdout=holdout,
                   eval_train=sp_.train, eval_test=sp_.test, real_ndcg=real)


def evaluate_generator(
    ctx: Context, name: str, params: dict[str, Any] | None = None, *, n_users: int | None = None,
    shadow: bool = True, label: str | None = None,
) -> tuple[Interactions, dict[str, Any]]:
    """Fit generator ``name`` on the members, sample ``n_users`` (default: as many as members), measure all.

    Returns
    -------
    synth, result
        The synthetic users and a JSON-ready dict (arrays for plots under ``"curves"``).
    """
    params = dict(params or {})
    n = ctx.members.n_users if n_users is None else int(n_users)
    seed = ctx.seed
    gen = create_generator(name, params, random_state=seed)
    t0 = time.perf_counter()
    with step(f"fitting generator {name!r} on {ctx.members.n_users} users", logger):
        gen.fit(ctx.members)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    synth = gen.sample(n, random_state=seed + 1)
    sample_s = time.perf_counter() - t0

    marg = fidelity.marginals(ctx.members, synth)
    co = fidelity.cooccurrence(ctx.members, synth)
    with step(f"TSTR: fitting {len(ctx.real_ndcg)} models on {n} synthetic users", logger):
        tstr = fidelity.tstr_summary(
            fidelity.tstr_scores(fidelity.fit_tstr_models(synth, tuple(ctx.real_ndcg), random_state=seed),
                                 ctx.eval_train, ctx.eval_test),
            ctx.real_ndcg,
        )
    m_csr, n_csr, s_csr = ctx.members.csr(), ctx.nonmembers.csr(), synth.csr()
    f_m, f_n = privacy.distance_features(m_csr, s_csr), privacy.distance_features(n_csr, s_csr)
    mia = privacy.membership_auc(-f_m[:, 0], -f_n[:, 0])
    result: dict[str, Any] = {
        "label": label or name, "generator": gen.describe(), "n_users": n, "seed": seed,
        "fit_seconds": fit_s, "sample_seconds": sample_s,
        "tstr_ratio": tstr["tstr_ratio_by_model"].get("ease", float("nan")),
        "kendall_tau": tstr["kendall_tau"], "mia_auc": mia["auc"],
        "dcr_members_median": float(np.median(f_m[:, 0])), "dcr_nonmembers_median": float(np.median(f_n[:, 0])),
        "dcr_members_mean": float(f_m[:, 0].mean()), "dcr_nonmembers_mean": float(f_n[:, 0].mean()),
        "exact_copy_rate": privacy.exact_copy_rate(m_csr, s_csr),
        "cooccurrence_corr": co["correlation"],
        **tstr, "marginals": marg,
        "curves": {"cooc_real": co["real"], "cooc_synth": co["synth"], "mia_fpr": mia["fpr"], "mia_tpr": mia["tpr"],
                   "pop_real": np.sort(ctx.members.item_counts())[::-1] / ctx.members.n_users,
                   "pop_synth": np.sort(synth.item_counts())[::-1] / synth.n_users,
                   "act_real": np.sort(ctx.members.user_counts())[::-1],
                   "act_synth": np.sort(synth.user_counts())[::-1]},
    }
    if shadow:
        with step(f"shadow attacker against {name!r}", logger):
            sh = privacy.shadow_attack(
                lambda: create_generator(name, params, random_state=seed + 7), ctx.holdout,
                n / ctx.members.n_users, m_csr, n_csr, s_csr, np.random.default_rng(seed + 11),
            )
        result["mia_auc_shadow"] = sh["auc"]
        result["mia_auc_worst"] = max(mia["auc"], sh["auc"])  # the stronger attacker
        result["curves"].update(shadow_fpr=sh["fpr"], shadow_tpr=sh["tpr"])
    attr = privacy.attribute_inference(synth, ctx.members)
    if attr is not None:  # members (the generator saw them) and non-members (it did not), same classifier
        result["attribute_inference"] = {"members": attr, "nonmembers": privacy.attribute_inference(synth, ctx.nonmembers)}
    return synth, result


#: The generators ``--compare`` runs: (label, registry name, params). Randomized response at three budgets.
COMPARE_GENERATORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("gan", "gan", {}),
    ("bernoulli", "bernoulli", {}),
    ("lowrank", "lowrank", {}),
    ("rr-eps1", "randomized_response", {"epsilon": 1.0}),
    ("rr-eps3", "randomized_response", {"epsilon": 3.0}),
    ("rr-eps5", "randomized_response", {"epsilon": 5.0}),
    ("real", "real", {}),
)


def scalars(result: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a result (nested keys joined by dots), without curves."""
    out: dict[str, float] = {}
    for k, v in result.items():
        if k in ("curves", "generator", "seed", "n_users", "label"):
            continue
        if isinstance(v, Mapping):
            out.update(scalars(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, np.floating)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per label, every scalar's mean, sample std (ddof=1) and values over the runs (seeds)."""
    by: dict[str, list[dict[str, float]]] = {}
    for r in runs:
        by.setdefault(str(r["label"]), []).append(scalars(r))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label, rows in by.items():
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        out[label] = {}
        for k in keys:
            v = np.array([r[k] for r in rows])
            out[label][k] = {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                             "values": v.tolist()}
    return out


def target_test(
    runs: Sequence[Mapping[str, Any]], gan: str = "gan", max_auc: float = 0.55, auc_key: str = "mia_auc",
) -> dict[str, Any]:
    """The issue's target: GAN's EASE TSTR ratio vs each non-GAN generator at MIA AUC <= ``max_auc``.

    ``auc_key`` picks the attacker: ``"mia_auc"`` (DCR) or ``"mia_auc_worst"`` (the stronger of DCR and
    shadow, present when the shadow attacker ran).

    Paired over seeds (same split per seed): a one-sided paired t-test that the GAN's ratio is higher.
    Generators whose mean AUC is above ``max_auc`` (and the GAN, if above) are reported, not tested.
    """
    from scipy.stats import ttest_rel

    summ = summarize(runs)
    per = {lab: {int(r["seed"]): r for r in runs if r["label"] == lab} for lab in summ}
    out: dict[str, Any] = {"max_auc": max_auc, "auc": auc_key,
                           "gan_mia_auc": summ.get(gan, {}).get(auc_key, {}).get("mean"), "versus": {}}
    if gan not in per:
        return out
    out["gan_within"] = bool(out["gan_mia_auc"] <= max_auc)  # the target needs the GAN itself there too
    for lab, rs in per.items():
        if lab == gan:
            continue
        auc = summ[lab][auc_key]["mean"]
        seeds = sorted(set(rs) & set(per[gan]))
        a = [per[gan][s]["tstr_ratio"] for s in seeds]
        b = [rs[s]["tstr_ratio"] for s in seeds]
        entry: dict[str, Any] = {"mia_auc": auc, "matched_privacy": auc <= max_auc,
                                 "gan_minus_other": float(np.mean(np.subtract(a, b))) if seeds else None}
        if len(seeds) > 1 and auc <= max_auc and out["gan_within"]:
            entry["p_one_sided"] = float(ttest_rel(a, b, alternative="greater").pvalue)
        out["versus"][lab] = entry
    return out


def compare(
    data: Interactions, seeds: Sequence[int], *, n_users: int | None = None,
    generators: Sequence[tuple[str, str, dict[str, Any]]] = COMPARE_GENERATORS, shadow: bool = True,
) -> dict[str, Any]:
    """Every generator on the same split per seed; the runs, their summary and the target test."""
    from gan4rec._progress import progress

    runs, splits = [], []
    jobs = [(s, g) for s in seeds for g in generators]
    ctx: Context | None = None
    for seed, (label, name, params) in progress(jobs, desc="synthesize --compare", unit="run", logger=logger):
        if ctx is None or ctx.seed != seed:
            ctx = prepare(data, int(seed))
            splits.append(ctx.describe())
        _, r = evaluate_generator(ctx, name, params, n_users=n_users, shadow=shadow, label=label)
        logger.info("seed %d %s: TSTR ratio %.3f, MIA AUC %.3f", seed, label, r["tstr_ratio"], r["mia_auc"])
        runs.append(r)
    out = {"seeds": list(seeds), "splits": splits, "runs": runs, "summary": summarize(runs), "target": target_test(runs)}
    if shadow:
        out["target_worst"] = target_test(runs, auc_key="mia_auc_worst")
    return out
