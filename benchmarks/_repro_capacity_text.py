"""The page's protocol and 'what differs from the paper' sections, written from the plan."""
from typing import Callable, Dict, List

import lowbit.capacity as cap
from _repro_capacity_plan import DROP_TOLERANCE, PAPER_LSTM, RISING, TOLERANCE, Plan


def _names(models) -> str:
    return ", ".join(cap.spec_name(m.spec) for m in models)


def _per_family(fams: Dict, text: Callable) -> str:
    """'FCDNN a; CNN b' for the families given, or just 'a' when all say the same."""
    texts = {k: text(v) for k, v in fams.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{k.upper()} {t}" for k, t in texts.items())


def protocol(plan: Plan) -> List[str]:
    f = plan.families
    tuned = [m for m in plan.models if m.role == "search"]
    scans = [m for m in plan.models if m.role == "scan"]
    points = [m for m in plan.models if m.role == "points"]
    multi = [m for m in plan.models if m.seeds > 1]
    longs = [m for m in plan.models if m.long]
    caps = ", ".join(f"{k.upper()} {v.max_epochs}" for k, v in f.items())
    evals = ", ".join(f"{k.upper()} every {v.eval_every}" for k, v in f.items())
    starts = "; ".join(f"{k.upper()} lr {v.defaults['lr']:g}, momentum {v.defaults['momentum']:g}, "
                       f"decay {v.defaults['decay']:g}, batch {int(v.defaults['batch_size'])}" for k, v in f.items())
    search = "; ".join(f"{k.upper()}: {v.fine_points} fine N points, "
                       + (f"a {v.grid_points}-point grid per hyper-parameter, " if v.grid_points else "no grid, ")
                       + f"{v.trials} TPE trials" for k, v in f.items())
    lines = [
        "- **Task** (papers 000/001, section 3.1): N distinct random binary inputs with uniformly "
        "random labels 0/1 (FCDNN: n_in = width bits; CNN: 32 x 32 x 1; LSTM: 5 steps of n_in = "
        "hidden bits, the label read at the last step). Stored information I = N (1 - H(p)) with p "
        "the training accuracy; capacity = max over N and hyper-parameters; bits per parameter = "
        "capacity / trainable parameters. For CNNs also per convolution parameter, paper 001's rule: "
        "2.3 bits credited to each fully connected parameter, the rest divided by the convolution "
        "parameters.",
        "- **Accuracy of a training**: the best training accuracy over its epochs (the paper's \"best "
        f"accuracy obtained\"), evaluated {evals} epoch(s) and after the last; the network is kept in "
        "that state (the quantization step starts from it). The last epoch's accuracy is recorded "
        "beside it: the capacity table's last-epoch column scores the same trainings with it.",
        "- **Training**: SGD with momentum, He initialization (FCDNN, CNN), the learning rate "
        "multiplied by the decay factor after 20 epochs without a 0.1 % drop of the training loss; "
        "a training stops when every sample is stored, at the 4th such plateau (3 cuts), or at its "
        f"epoch cap: {caps}. A training that the cap stopped is counted as hitting the cap. "
        f"Starting hyper-parameters: {starts}.",
        f"- **Searched networks** ({_names(tuned)}): lowbit's `capacity_search` (coarse doubling "
        "of N until the accuracy drops below 0.99, a fine N grid, the hyper-parameter stages, a "
        f"last N refinement; the metric is always I), seed 0. {search}; the paper's ranges: lr "
        "0.001-0.05 (log), momentum 0.6-0.99, decay 0.1-0.5. Their best hyper-parameters become "
        "their family's.",
    ]
    if scans:
        fams = {m.spec["model"]: f[m.spec["model"]] for m in scans}
        lines.append(f"- **Scanned networks** ({_names(scans)}): seed 0 at the family's searched "
                     "hyper-parameters, N = factor x (the searched network's best N per parameter) x "
                     "parameters for the factors " + _per_family(fams, lambda v: ", ".join(f"{x:g}" for x in v.scan))
                     + ". A scan whose best N lies at its edge grows one point that way, up to "
                     + _per_family(fams, lambda v: str(v.max_extend)) + " times.")
    if points:
        lines.append("- **Fixed points**: " + "; ".join(
            f"{cap.spec_name(m.spec)} at N = {', '.join(str(n) for n in m.points)}"
            + (" (the paper's 32K)" if PAPER_LSTM["n"] in m.points else "") + ", seed 0, "
            "the family's searched hyper-parameters" for m in points) + ".")
    lines += [
        f"- **Seeds** (data set, initialization and batch order): {_names(multi)} run "
        + ", ".join(sorted({str(m.seeds) for m in multi})) + " seeds; seeds after 0 train at seed 0's "
        "hyper-parameters and at seed 0's best N times "
        + _per_family({m.spec["model"]: f[m.spec["model"]] for m in multi},
                      lambda v: ", ".join(f"{x:g}" for x in v.seed_scan))
        + ". Bits per parameter: mean ± standard deviation over seeds; every other network has one seed.",
        f"- **Long budget** ({_names(longs)}): seed 0's best N and hyper-parameters trained again with "
        + ", ".join(f"{k.upper()} {v.long_factor}x" for k, v in f.items())
        + " the epoch cap and the plateau stop off (the rate is still cut, down to the same lowest "
        "rate, and training goes on there). The best accuracy so far is read at every multiple of "
        f"the cap; a run 'still rises' when its best accuracy gains at least {100 * RISING:g} points "
        "over the last half of the run.",
        "- **Quantization under capacity** (section 3.2): "
        + ", ".join(f"{cap.spec_name(q.spec)}" + ("" if q.n_from is None else
                    f" (N: {q.n_from}'s best N scaled by the capacity this network should have, its "
                    "parameters times the mean bits per parameter of its family's measured networks)")
                    for q in plan.quant)
        + "; full capacity = the network's best N (seed 0), half = N / 2, trained as in the capacity "
        "step. Uniform symmetric fixed point (2^b - 1 levels) with the L2-optimal step per layer "
        "(FCDNN), per kernel (CNN), per weight matrix (LSTM); biases and the output layer float; "
        f"{' -> '.join(str(b) for b in plan.bits)} bits in sequence, {plan.retrain_epochs} STE "
        "retraining epochs after each (the best epoch kept, the directly quantized weights kept when "
        "retraining does not reach them). Threshold: the lowest precision whose accuracy, and that "
        f"of every higher one, stays within {100 * DROP_TOLERANCE:g} point of float.",
        f"- **Loss surfaces** (section 3.3): LeNet-5 trained on Fashion-MNIST "
        f"({plan.surface['lenet_epochs']} epoch(s)), float and retrained at 8, 6, 4, 2 bits (per "
        f"channel, L2 step, one epoch on {plan.surface['retrain']:,} images); L(theta + alpha d) for "
        f"{plan.surface['alphas']} alphas in [-1, 1], {plan.surface['draws']} filter-normalized "
        f"Gaussian directions, on {plan.surface['train']} training and test images.",
        f"- **Verdicts**: a single number reproduces the paper's within {100 * TOLERANCE:g} %; a "
        "threshold must match; an order must hold. Below the paper, the family's long retraining "
        "decides: still rising -> not testable here (the value is a lower bound), flat -> not "
        "reproduced.",
    ]
    return lines


def differences(plan: Plan) -> List[str]:
    fc = [m.spec for m in plan.models if m.spec["model"] == "fcdnn"]
    cnns = [m for m in plan.models if m.spec["model"] == "cnn"]
    lstms = [m for m in plan.models if m.spec["model"] == "lstm"]
    widths = sorted({s["width"] for s in fc})
    depths = sorted({s["depth"] for s in fc})
    size = cnns[0].spec["input_size"] if cnns else 32
    quant = [q for q in plan.quant]
    one_seed = [m for m in plan.models if m.seeds == 1]
    no_long = [m for m in plan.models if not m.long]
    return [
        f"- **FCDNN sizes**: widths {', '.join(map(str, widths))} at depths "
        f"{', '.join(map(str, depths))} (the paper: widths 32, 64, 128, 256 at depths 1-4). N grows "
        "with the parameters (about 4 samples per parameter at capacity) and so does an epoch's "
        "cost: FCDNN(64)x3 and x4 would add about 3 CPU hours (scans of trainings of 1,000-1,700 "
        "CPU s each), and one FCDNN(128)x2 training at its N (about 130k) about 3 CPU hours.",
        f"- **CNNs**: {', '.join(cap.spec_name(m.spec) for m in cnns)} of Table 1 at {size} x {size} "
        "(the paper: models A-F at 32 x 32). The others are left out (an epoch of model C costs 2.6x "
        "one of B). "
        "The quantization step uses "
        + ", ".join(cap.spec_name(q.spec) for q in quant if q.spec["model"] == "cnn")
        + " (Table 1's model D: 3 x 3 kernels, 6 convolutions, paper 000's 3 x 3 model) without a "
        "capacity search of its own (it would cost about 3 CPU hours); its N is scaled from the "
        "measured CNNs' (see the protocol).",
        f"- **LSTMs**: {', '.join(cap.spec_name(m.spec) for m in lstms if m.role != 'points')} searched; "
        + "; ".join(f"{cap.spec_name(m.spec)} one training at N = {', '.join(map(str, m.points))}"
                    for m in lstms if m.role == "points")
        + " (one LSTM(32) training there costs 0.5-1.3 CPU hours, a search more than 6). LSTM(64) "
        "(paper 000, Fig. 2) is not "
        "run; quantization uses " + ", ".join(cap.spec_name(q.spec) for q in quant if q.spec["model"] == "lstm")
        + " (the paper: LSTM(32) and LSTM(64)).",
        "- **Hyper-parameters** are searched on one network per family and reused for the others "
        "(the paper tunes each network)"
        + "; the grid stage runs for " + (", ".join(k.upper() for k, v in plan.families.items() if v.grid_points)
                                           or "no family") + " only.",
        "- **Seeds and long runs**: one seed for " + (_names(one_seed) or "none") + "; no long retraining for "
        + (_names(no_long) or "none") + ".",
        "- **Quantization**: lowbit's fixed-point quantizers go up to 8 bits, so the RNN's 10-bit "
        "threshold is tested as \"8 bits already drops\". Half capacity is shown for "
        + ", ".join(cap.spec_name(q.spec) for q in quant if q.spec["model"] == "fcdnn")
        + " where the paper's number is for FCDNN(128)x3.",
        "- **Loss surfaces** use LeNet-5 on Fashion-MNIST instead of the paper's CIFAR-10 CNNs and "
        "PTB language models (neither data set is on this machine).",
    ]
