#!/usr/bin/env python3
"""Independent eager-PyTorch reference implementation of Variance-Based Pruning.

The Node/LibTorch implementation follows exactly these conventions; tests
compare its statistics, plans and pruned outputs with the files written here.

Conventions
-----------
* MLP blocks are (fc1 path, fc2 path) pairs, ordered by the position of fc1 in
  ``model.named_modules()``.
* Statistics are taken on the input of fc2 (post-activation), captured with a
  forward pre-hook and reshaped to ``[-1, H]`` (every token of every image is a
  sample). All samples are kept in float64; count n, mean and the POPULATION
  variance (divide by n) are computed in two passes. Calibration: ``calib.npy``
  in order, batches of 16, eval mode, no_grad.
* Scores (float64): 'variance' = var_j; 'magnitude' =
  ||W1[j,:]||^2 + b1[j]^2 + ||W2[:,j]||^2; 'wifv' = var_j * ||W2[:,j]||^2.
* Global scope: all neurons sorted ascending by (score, mlp index, neuron
  index); k = floor(ratio * total); walk the list and prune each neuron unless
  it is the last remaining one of its layer, until k are pruned.
  Per-layer scope: k_l = floor(ratio * H_l) lowest of each layer, same order,
  at least one neuron kept.
* Covariance: the population covariance of the same samples,
  C = (X - mean)^T (X - mean) / n in float64.
* Pruning: with 'mean' compensation, fc2.bias <- fc2.bias + W2[:, P] @ mean[P]
  in float64, cast to float32 (a zero bias is created if fc2 has none); layers
  with nothing pruned are left untouched. With 'lsq' (least squares, ridge r):
  lambda = r * mean(diag C[K,K]); A = C[P,K] (C[K,K] + lambda I)^-1 (solved with
  torch.linalg.solve, not Cholesky, to be independent of the Node code);
  W2[:, K] <- W2[:, K] + W2[:, P] A and fc2.bias <- fc2.bias + W2[:, P] (mean[P]
  - A mean[K]), in float64, cast to float32. Then rows K of fc1.weight/fc1.bias
  and columns K of fc2.weight are kept (K ascending). 'none' only slices.

CLI: ``vbp_reference.py --fixtures DIR --out DIR2`` (see README.md).
"""

from __future__ import annotations

import os

# Single-threaded BLAS/OpenMP for reproducible numbers; must precede the imports.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402  (path set up above)

torch.set_num_threads(1)

CALIB_BATCH = 16
CRITERIA = ("variance", "magnitude", "wifv")
COMPENSATIONS = ("mean", "none")
# Ridge of the least-squares reference outputs (relative to the mean variance of the kept neurons).
REFERENCE_RIDGE = 1e-3

MlpPair = Tuple[str, str]
Plan = List[List[int]]  # per MLP (in MLP order): sorted pruned neuron indices


# ---------------------------------------------------------------------------
# MLP blocks
# ---------------------------------------------------------------------------


def order_mlps(model: nn.Module, pairs: Iterable[MlpPair]) -> List[MlpPair]:
    """Sort (fc1, fc2) pairs by the position of fc1 in ``named_modules()``."""
    position = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(pairs, key=lambda pair: position[pair[0]])


def _parent_and_name(model: nn.Module, path: str) -> Tuple[nn.Module, str]:
    parent_path, _, name = path.rpartition(".")
    parent = models.get_submodule(model, parent_path) if parent_path else model
    return parent, name


def _linear(model: nn.Module, path: str) -> nn.Linear:
    module = models.get_submodule(model, path)
    if not isinstance(module, nn.Linear):
        raise TypeError(f"{path} is {type(module).__name__}, expected nn.Linear")
    return module


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


@dataclass
class MlpStats:
    fc1: str
    fc2: str
    hidden: int
    count: int
    mean: np.ndarray  # float64 [H]
    var: np.ndarray  # float64 [H], population variance
    cov: Optional[np.ndarray] = None  # float64 [H, H], population covariance

    def to_json(self) -> Dict[str, object]:
        return {
            "fc1": self.fc1,
            "fc2": self.fc2,
            "hidden": self.hidden,
            "count": self.count,
            "mean": [float(v) for v in self.mean],
            "var": [float(v) for v in self.var],
        }


def batches_of(images: np.ndarray, batch_size: int = CALIB_BATCH) -> List[torch.Tensor]:
    """Split calibration images, in order, into consecutive batches."""
    return [torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]


def _run_with_fc2_inputs(
    model: nn.Module, mlps: Sequence[MlpPair], batches: Iterable[torch.Tensor], on_input: Callable[[int, torch.Tensor], None]
) -> None:
    """Runs the batches with a forward pre-hook on every fc2, calling on_input(block index, [-1, H] float64)."""
    model.eval()
    handles = []
    for i, (_, fc2_path) in enumerate(mlps):
        hidden = _linear(model, fc2_path).in_features

        def pre_hook(module: nn.Module, inputs: Tuple[torch.Tensor, ...], i: int = i, hidden: int = hidden) -> None:
            on_input(i, inputs[0].detach().reshape(-1, hidden).to(torch.float64))

        handles.append(_linear(model, fc2_path).register_forward_pre_hook(pre_hook))
    try:
        for batch in batches:
            model(batch)
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def compute_statistics(model: nn.Module, mlps: Sequence[MlpPair], batches: Iterable[torch.Tensor]) -> List[MlpStats]:
    """Per-neuron count/mean/population variance of every fc2 input."""
    samples: List[List[torch.Tensor]] = [[] for _ in mlps]
    _run_with_fc2_inputs(model, mlps, batches, lambda i, x: samples[i].append(x))
    stats = []
    for (fc1_path, fc2_path), chunks in zip(mlps, samples):
        x = torch.cat(chunks, dim=0)
        n = x.shape[0]
        mean = x.sum(dim=0) / n  # pass 1
        centred = x - mean
        var = (centred**2).sum(dim=0) / n  # pass 2
        cov = centred.t() @ centred / n
        stats.append(MlpStats(fc1_path, fc2_path, x.shape[1], n, mean.numpy(), var.numpy(), cov.numpy()))
    return stats


@torch.no_grad()
def compute_statistics_streaming(model: nn.Module, mlps: Sequence[MlpPair], batches: Iterable[torch.Tensor]) -> List[MlpStats]:
    """Like compute_statistics, but in O(hidden) memory, as a Python pipeline over a large calibration set
    would do it: per batch a two-pass float64 mean and M2, merged across batches with Chan's formula."""
    totals: List[Optional[Tuple[int, torch.Tensor, torch.Tensor]]] = [None for _ in mlps]

    def add(i: int, x: torch.Tensor) -> None:
        n_b = x.shape[0]
        mean_b = x.mean(dim=0)
        m2_b = ((x - mean_b) ** 2).sum(dim=0)
        if totals[i] is None:
            totals[i] = (n_b, mean_b, m2_b)
            return
        n_a, mean_a, m2_a = totals[i]
        n = n_a + n_b
        delta = mean_b - mean_a
        totals[i] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n))

    _run_with_fc2_inputs(model, mlps, batches, add)
    stats = []
    for (fc1_path, fc2_path), total in zip(mlps, totals):
        n, mean, m2 = total
        stats.append(MlpStats(fc1_path, fc2_path, mean.shape[0], n, mean.numpy(), (m2 / n).numpy()))
    return stats


def merge_statistics(a: MlpStats, b: MlpStats) -> MlpStats:
    """Chan's parallel merge of two disjoint sample sets (for shard tests)."""
    if (a.fc1, a.fc2, a.hidden) != (b.fc1, b.fc2, b.hidden):
        raise ValueError("statistics of different MLP blocks")
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / n)
    m2 = a.var * a.count + b.var * b.count + delta**2 * (a.count * b.count / n)
    return MlpStats(a.fc1, a.fc2, a.hidden, n, mean, m2 / n)


def stats_to_json(stats: Sequence[MlpStats]) -> Dict[str, object]:
    return {"mlps": [s.to_json() for s in stats]}


def stats_from_json(obj: Dict[str, object]) -> List[MlpStats]:
    return [
        MlpStats(m["fc1"], m["fc2"], int(m["hidden"]), int(m["count"]), np.array(m["mean"]), np.array(m["var"]))
        for m in obj["mlps"]  # type: ignore[union-attr]
    ]


# ---------------------------------------------------------------------------
# Scores and selection
# ---------------------------------------------------------------------------


def neuron_scores(model: nn.Module, stats: Sequence[MlpStats], criterion: str) -> List[np.ndarray]:
    """Per-MLP float64 score vectors; low score = pruned first."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}")
    scores = []
    for s in stats:
        fc1, fc2 = _linear(model, s.fc1), _linear(model, s.fc2)
        w1 = fc1.weight.detach().double()
        w2 = fc2.weight.detach().double()
        w2_col_sq = (w2**2).sum(dim=0).numpy()  # ||W2[:, j]||^2
        if criterion == "variance":
            score = s.var.copy()
        elif criterion == "wifv":
            score = s.var * w2_col_sq
        else:  # magnitude
            b1_sq = (fc1.bias.detach().double() ** 2).numpy() if fc1.bias is not None else 0.0
            score = (w1**2).sum(dim=1).numpy() + b1_sq + w2_col_sq
        scores.append(np.asarray(score, dtype=np.float64))
    return scores


def select_global(scores: Sequence[np.ndarray], ratio: float) -> Plan:
    """Lowest-scoring floor(ratio * total) neurons over all MLPs, >= 1 kept per layer."""
    order = sorted((float(score[j]), layer, j) for layer, score in enumerate(scores) for j in range(len(score)))
    k = math.floor(ratio * len(order))
    remaining = [len(score) for score in scores]
    plan: Plan = [[] for _ in scores]
    pruned = 0
    for _, layer, j in order:
        if pruned == k:
            break
        if remaining[layer] == 1:
            continue  # never remove the last neuron of a layer
        plan[layer].append(j)
        remaining[layer] -= 1
        pruned += 1
    return [sorted(p) for p in plan]


def select_per_layer(scores: Sequence[np.ndarray], ratio: float) -> Plan:
    """Lowest-scoring floor(ratio * H_l) neurons of each layer, >= 1 kept."""
    plan: Plan = []
    for score in scores:
        hidden = len(score)
        k = min(math.floor(ratio * hidden), hidden - 1)
        order = sorted((float(score[j]), j) for j in range(hidden))
        plan.append(sorted(j for _, j in order[:k]))
    return plan


@torch.no_grad()
def select_compensated(model: nn.Module, stats: Sequence[MlpStats], count: int, ridge: float) -> Plan:
    """Greedy selection for least-squares compensation, recomputed from scratch at every step: remove the
    neuron j (globally, >= 1 kept per layer) with the least ||W2'[:, j]||^2 / Theta_jj, where for the kept set
    K of its block Theta = (C_KK + lambda I)^-1, lambda = ridge * mean(diag C), and W2' = W2[:, K] + W2[:, P] A
    with A = C_PK (C_KK + lambda I)^-1. Ties by (block, neuron)."""
    state = []
    for s in stats:
        c = torch.from_numpy(np.asarray(s.cov, dtype=np.float64))
        lam = ridge * float(c.diagonal().mean())
        w2 = _linear(model, s.fc2).weight.detach().double()
        state.append({"c": c, "lam": lam, "w2": w2, "kept": list(range(s.hidden)), "pruned": []})
    for _ in range(count):
        best = None
        for b, st in enumerate(state):
            kept, pruned = st["kept"], st["pruned"]
            if len(kept) <= 1:
                continue
            k = torch.tensor(kept)
            ckk = st["c"][k][:, k] + st["lam"] * torch.eye(len(kept), dtype=torch.float64)
            theta = torch.linalg.inv(ckk)
            w2k = st["w2"][:, k]
            if pruned:
                p = torch.tensor(pruned)
                w2k = w2k + st["w2"][:, p] @ torch.linalg.solve(ckk, st["c"][k][:, p]).t()
            cost = (w2k**2).sum(dim=0) / theta.diagonal()
            for pos in range(len(kept)):
                key = (float(cost[pos]), b, kept[pos])
                if best is None or key < best:
                    best = key
        if best is None:
            break
        _, b, j = best
        state[b]["kept"].remove(j)
        state[b]["pruned"].append(j)
    return [sorted(st["pruned"]) for st in state]


def make_plan(
    model: nn.Module, stats: Sequence[MlpStats], ratio: float, criterion: str = "variance", scope: str = "global"
) -> Plan:
    scores = neuron_scores(model, stats, criterion)
    if scope == "global":
        return select_global(scores, ratio)
    if scope == "per_layer":
        return select_per_layer(scores, ratio)
    raise ValueError(f"unknown scope {scope!r}")


def plan_to_json(stats: Sequence[MlpStats], plan: Plan, ratio: float, criterion: str) -> Dict[str, object]:
    return {"ratio": ratio, "criterion": criterion, "pruned": {s.fc1: p for s, p in zip(stats, plan)}}


def cut_margin(scores: Sequence[np.ndarray], plan: Plan) -> Optional[float]:
    """Gap between the highest pruned and the lowest kept score (ranking robustness).

    Neurons kept only because they were the last of their layer are ignored.
    None when nothing was pruned or nothing comparable was kept.
    """
    pruned = [float(s[j]) for s, p in zip(scores, plan) for j in p]
    kept = [float(s[j]) for s, p in zip(scores, plan) for j in set(range(len(s))) - set(p) if len(p) < len(s) - 1]
    if not pruned or not kept:
        return None
    return min(kept) - max(pruned)


# ---------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------


def ridge_predictor(cov: np.ndarray, keep: Sequence[int], pruned: Sequence[int], ridge: float) -> torch.Tensor:
    """A = C[P,K] (C[K,K] + lambda I)^-1, lambda = ridge * mean(diag C[K,K]), float64 [|P|, |K|]."""
    c = torch.from_numpy(np.asarray(cov, dtype=np.float64))
    k = torch.tensor(list(keep), dtype=torch.long)
    p = torch.tensor(list(pruned), dtype=torch.long)
    ckk = c[k][:, k].clone()
    scale = float(ckk.diagonal().mean())
    if scale <= 0:
        return torch.zeros(len(pruned), len(keep), dtype=torch.float64)
    ckk += ridge * scale * torch.eye(len(keep), dtype=torch.float64)
    return torch.linalg.solve(ckk, c[k][:, p]).t()


@torch.no_grad()
def prune_mlp(model: nn.Module, stats: MlpStats, pruned: Sequence[int], compensation: str = "mean", ridge: float = REFERENCE_RIDGE) -> None:
    """Physically remove hidden neurons ``pruned`` of one MLP block in place."""
    if compensation not in COMPENSATIONS + ("lsq",):
        raise ValueError(f"unknown compensation {compensation!r}")
    pruned = sorted(set(int(j) for j in pruned))
    if not pruned:
        return
    fc1, fc2 = _linear(model, stats.fc1), _linear(model, stats.fc2)
    hidden = fc1.out_features
    keep = [j for j in range(hidden) if j not in set(pruned)]
    if not keep:
        raise ValueError(f"{stats.fc1}: cannot prune every neuron")
    keep_idx = torch.tensor(keep, dtype=torch.long)

    new_fc1 = nn.Linear(fc1.in_features, len(keep), bias=fc1.bias is not None)
    new_fc1.weight.copy_(fc1.weight[keep_idx])
    if fc1.bias is not None:
        new_fc1.bias.copy_(fc1.bias[keep_idx])

    bias: Optional[torch.Tensor] = fc2.bias.detach().clone() if fc2.bias is not None else None
    w2_kept = fc2.weight.detach()[:, keep_idx]
    if compensation in ("mean", "lsq"):
        w2_pruned = fc2.weight.detach().double()[:, pruned]  # [out, |P|]
        mean = torch.from_numpy(np.asarray(stats.mean, dtype=np.float64))
        base = bias.double() if bias is not None else torch.zeros(fc2.out_features, dtype=torch.float64)
        if compensation == "mean":
            bias = (base + w2_pruned @ mean[pruned]).to(torch.float32)
        else:
            if stats.cov is None:
                raise ValueError(f"{stats.fc1}: least squares needs the covariance")
            a = ridge_predictor(stats.cov, keep, pruned, ridge)  # [|P|, |K|]
            w2_kept = (fc2.weight.detach().double()[:, keep_idx] + w2_pruned @ a).to(torch.float32)
            bias = (base + w2_pruned @ (mean[pruned] - a @ mean[keep_idx])).to(torch.float32)
    new_fc2 = nn.Linear(len(keep), fc2.out_features, bias=bias is not None)
    new_fc2.weight.copy_(w2_kept)
    if bias is not None:
        new_fc2.bias.copy_(bias)

    for path, new in ((stats.fc1, new_fc1), (stats.fc2, new_fc2)):
        parent, name = _parent_and_name(model, path)
        setattr(parent, name, new)


def prune_model(model: nn.Module, stats: Sequence[MlpStats], plan: Plan, compensation: str = "mean", ridge: float = REFERENCE_RIDGE) -> nn.Module:
    """A pruned deep copy of ``model`` (the original is left untouched)."""
    pruned_model = copy.deepcopy(model).eval()
    for s, p in zip(stats, plan):
        prune_mlp(pruned_model, s, p, compensation, ridge)
    return pruned_model


# ---------------------------------------------------------------------------
# Fixture models
# ---------------------------------------------------------------------------


def load_deit(fixtures: Path, state_file: str = "deit_eager.pth") -> Tuple[nn.Module, List[MlpPair]]:
    model = models.build_deit_fixture()
    model.load_state_dict(torch.load(fixtures / state_file))
    depth = int(models.DEIT_FIXTURE_CONFIG["depth"])
    return model.eval(), order_mlps(model, models.deit_mlp_pairs(depth))


def load_deit_from_script(path: Path) -> Tuple[nn.Module, List[MlpPair]]:
    """Eager DeiT carrying the weights of a scripted DeiT file (e.g. deit_constant.pt)."""
    model = models.build_deit_fixture()
    model.load_state_dict(torch.jit.load(str(path)).state_dict())
    depth = int(models.DEIT_FIXTURE_CONFIG["depth"])
    return model.eval(), order_mlps(model, models.deit_mlp_pairs(depth))


def load_torchvision_vit(fixtures: Path) -> Tuple[nn.Module, List[MlpPair]]:
    model = models.build_torchvision_vit()
    model.load_state_dict(torch.load(fixtures / "vit_torchvision_eager.pth"))
    layers = models.TV_VIT_CONFIG["num_layers"]
    return model.eval(), order_mlps(model, models.tv_vit_mlp_pairs(layers))


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def _write_json(path: Path, obj: object) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)
        f.write("\n")


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


@torch.no_grad()
def run_cli(fixtures: Path, out: Path) -> Dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    calib = np.load(fixtures / "calib.npy")
    x_b4 = torch.from_numpy(np.load(fixtures / "input_b4.npy"))
    summary: Dict[str, object] = {}

    for name, loader in (("deit", load_deit), ("vit_torchvision", load_torchvision_vit)):
        model, mlps = loader(fixtures)
        stats = compute_statistics(model, mlps, batches_of(calib))
        _write_json(out / f"{name}.stats.json", stats_to_json(stats))
        for i, s in enumerate(stats):
            np.save(out / f"{name}.cov{i}.npy", s.cov)
        y_ref = model(x_b4)
        model_summary: Dict[str, object] = {}

        for ratio in (0.3, 0.5):
            plan = make_plan(model, stats, ratio, "variance", "global")
            _write_json(out / f"{name}.r{ratio}.plan.json", plan_to_json(stats, plan, ratio, "variance"))
            entry: Dict[str, object] = {
                "pruned_per_layer": [len(p) for p in plan],
                "cut_margin": cut_margin(neuron_scores(model, stats, "variance"), plan),
            }
            for compensation in COMPENSATIONS:
                y = prune_model(model, stats, plan, compensation)(x_b4)
                np.save(out / f"{name}.r{ratio}.{compensation}.out_b4.npy", y.numpy().astype(np.float32))
                entry[f"rel_err_{compensation}"] = relative_error(y, y_ref)
            lsq = prune_model(model, stats, plan, "lsq", REFERENCE_RIDGE)
            y = lsq(x_b4)
            np.save(out / f"{name}.r{ratio}.lsq.out_b4.npy", y.numpy().astype(np.float32))
            for i, (_, fc2_path) in enumerate(mlps):
                fc2 = _linear(lsq, fc2_path)
                np.save(out / f"{name}.r{ratio}.lsq.fc2_{i}.weight.npy", fc2.weight.detach().numpy())
                np.save(out / f"{name}.r{ratio}.lsq.fc2_{i}.bias.npy", fc2.bias.detach().numpy())
            entry["rel_err_lsq"] = relative_error(y, y_ref)
            model_summary[f"r{ratio}"] = entry

        if name == "deit":
            for criterion in ("magnitude", "wifv"):
                plan = make_plan(model, stats, 0.5, criterion, "global")
                _write_json(out / f"deit.r0.5.{criterion}.plan.json", plan_to_json(stats, plan, 0.5, criterion))
                model_summary[f"r0.5.{criterion}.cut_margin"] = cut_margin(neuron_scores(model, stats, criterion), plan)
            plan = make_plan(model, stats, 0.5, "variance", "per_layer")
            _write_json(out / "deit.r0.5.perlayer.plan.json", plan_to_json(stats, plan, 0.5, "variance"))
            total = sum(s.hidden for s in stats)
            plan = select_compensated(model, stats, math.floor(0.3 * total), 1e-4)
            _write_json(out / "deit.r0.3.compensated.plan.json", plan_to_json(stats, plan, 0.3, "compensated"))

            # Shards: first and last 32 calibration images.
            half = len(calib) // 2
            shards = []
            for i, part in enumerate((calib[:half], calib[half:])):
                shard = compute_statistics(model, mlps, batches_of(part))
                _write_json(out / f"deit.stats_shard{i}.json", stats_to_json(shard))
                shards.append(shard)
            merged = [merge_statistics(a, b) for a, b in zip(*shards)]
            model_summary["shard_merge_max_abs_diff"] = max(
                max(float(np.abs(m.mean - s.mean).max()), float(np.abs(m.var - s.var).max()))
                for m, s in zip(merged, stats)
            )
        summary[name] = model_summary

    # deit_constant: its constant neurons have variance 0; pruning them with the
    # mean shift must leave the output unchanged.
    constant_path = fixtures / "deit_constant.pt"
    if constant_path.exists():
        model, mlps = load_deit_from_script(constant_path)
        with open(fixtures / "constant_neurons.json") as f:
            constant = json.load(f)
        stats = compute_statistics(model, mlps, batches_of(calib))
        plan = [constant[fc1] for fc1, _ in mlps]
        y_ref = model(x_b4)
        summary["deit_constant"] = {
            "max_var_of_constant_neurons": max(float(s.var[p].max()) for s, p in zip(stats, plan)),
            **{
                f"max_abs_diff_{c}": float((prune_model(model, stats, plan, c)(x_b4) - y_ref).abs().max())
                for c in COMPENSATIONS
            },
        }

    _write_json(out / "summary.json", summary)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", required=True, type=Path, help="directory written by make_fixtures.py")
    parser.add_argument("--out", required=True, type=Path, help="output directory for reference results")
    args = parser.parse_args(argv)
    summary = run_cli(args.fixtures, args.out)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
