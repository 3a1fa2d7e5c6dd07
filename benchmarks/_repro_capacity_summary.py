"""Numbers the page reports, computed from the steps' results: capacity per network (over
seeds), the long-budget gains, the quantization thresholds and the loss-surface widths."""
import statistics
from typing import Dict, List, Optional, Sequence

import lowbit.capacity as cap
from _repro_capacity_phases import conv_bits, seed_summary
from _repro_capacity_plan import DROP_TOLERANCE, RISING


def _mean_std(values: Sequence[float]):
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def capacity_rows(results: Dict[str, Dict]) -> List[Dict]:
    """One row per network: bits per parameter (and per convolution parameter) over its
    seeds, seed 0's best point, the same trainings scored at their last epoch, and how many
    trainings the epoch cap cut off."""
    rows = []
    for r in results.values():
        row = {"model": r["name"], "family": r["family"], "role": r["role"], "params": r["params"],
               "conv_params": r["conv_params"] or None, "status": r["status"]}
        seeds = seed_summary(r)   # an unfinished network: its trainings so far
        per_param = [s["capacity"] / r["params"] for s in seeds.values()]
        per_conv = [conv_bits(r, s["capacity"]) for s in seeds.values()] if r["conv_params"] else []
        last = [s["last_capacity"] / r["params"] for s in seeds.values()]
        m, sd = _mean_std(per_param)
        cm, csd = _mean_std(per_conv)
        s0 = seeds.get(0, {})
        row.update(seeds=len(seeds), n_star=s0.get("n"), accuracy=s0.get("accuracy"),
                   capacity_bits=s0.get("capacity"), bits_per_param=m, bits_std=sd,
                   conv_bits_per_param=cm, conv_bits_std=csd, last_epoch_bits_per_param=_mean_std(last)[0],
                   per_seed=";".join(f"{v:.3f}" for v in (per_conv or per_param)),
                   trainings=len(r["trainings"]), hit_cap=sum(bool(t["hit_cap"]) for t in r["trainings"]),
                   lr=(r["hparams"] or {}).get("lr"), momentum=(r["hparams"] or {}).get("momentum"),
                   decay=(r["hparams"] or {}).get("decay"))
        rows.append(row)
    return rows


def training_rows(results: Dict[str, Dict]) -> List[Dict]:
    """Every training behind the capacity table, best and last-epoch accuracy side by side."""
    rows = []
    for r in results.values():
        for t in r["trainings"]:
            rows.append({"model": r["name"], "seed": t["seed"], "stage": t["stage"], "n": t["n"],
                         "lr": t["hparams"]["lr"], "momentum": t["hparams"]["momentum"],
                         "decay": t["hparams"]["decay"], "batch_size": t["hparams"]["batch_size"],
                         "accuracy": t["accuracy"], "last_accuracy": t["last_accuracy"],
                         "best_epoch": t["best_epoch"], "epochs": t["epochs"], "stop": t["stop"],
                         "mi": t["mi"], "cpu_seconds": t.get("cpu_seconds")})
    return rows


def long_rows(rows: List[Dict]) -> List[Dict]:
    """The long-budget table: best accuracy by the cap, at each multiple of it, and whether
    it still rose over the last half of the run."""
    out = []
    for row in rows:
        o = {"model": row["name"], "family": row["family"], "status": row["status"], "n": row.get("n"),
             "cap": row["cap"], "long_epochs": row["cap"] * row["factor"]}
        if row["status"] == "done":
            rec, search = row["record"], row["search"]
            at = {int(k): v for k, v in rec["best_at"].items()}
            end = at[max(at)]
            half = max(a for e, a in rec["curve"] if e <= o["long_epochs"] // 2)
            o.update(search_accuracy=search["accuracy"], search_epochs=search["epochs"],
                     search_stop=search["stop"], at_cap=at[row["cap"]], at_end=end,
                     best_epoch=rec["best_epoch"], stop=rec["stop"],
                     bits_at_cap=cap.mutual_information(at[row["cap"]], o["n"]) / row["params"],
                     bits_at_end=cap.mutual_information(end, o["n"]) / row["params"],
                     gain_last_half=end - half, rising=end - half >= RISING,
                     cpu_seconds=rec.get("cpu_seconds"))
            o["best_at"] = at
        out.append(o)
    return out


def drop_rows(quant: List[Dict]) -> List[Dict]:
    """One row per (network, regime): float accuracy, the lowest precision with no drop
    (within DROP_TOLERANCE of float), and the points lost at each precision."""
    out = []
    for q in quant:
        o = {"model": q["name"], "family": q["family"], "regime": q["regime"], "n": q.get("n"),
             "status": q["status"], "n_from": q.get("n_from")}
        if q["status"] == "done":
            recs = q["record"]["records"]
            flt = recs[0]["accuracy"]
            o.update(float_accuracy=flt, float_mi_bits_per_param=cap.mutual_information(flt, q["n"]) / q["params"],
                     float_hit_cap=q["record"]["float"]["hit_cap"],
                     threshold=cap.precision_threshold(recs, DROP_TOLERANCE),
                     drops={r["bits"]: 100 * (flt - r["accuracy"]) for r in recs[1:]},
                     accuracies={r["bits"]: r["accuracy"] for r in recs[1:]})
        out.append(o)
    return out


def surface_widths(rows: Optional[List[Dict]]) -> List[Dict]:
    """Per (model, data): loss and accuracy at alpha = 0, and the mean loss rise at the
    grid's alphas nearest +-0.5 and +-1 (a wider surface rises less)."""
    if not rows:
        return []
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["data"]), []).append(r)
    out = []
    for (model, data), rs in by.items():
        def at(target):
            return min(rs, key=lambda r: abs(r["alpha"] - target))

        def rise(target):
            near = sorted(rs, key=lambda r: abs(abs(r["alpha"]) - target))
            d = abs(abs(near[0]["alpha"]) - target)
            pts = [r for r in rs if abs(abs(r["alpha"]) - target) == d]
            return statistics.fmean(r["loss"] for r in pts) - at(0.0)["loss"]
        out.append({"model": model, "data": data, "loss_at_0": at(0.0)["loss"],
                    "accuracy_at_0": at(0.0)["accuracy"], "rise_at_0.5": rise(0.5), "rise_at_1": rise(1.0),
                    "accuracy_at_1": at(1.0)["accuracy"]})
    return out
