"""lowbit vbq: variable bin-size quantization codebooks searched per layer."""
import time

import numpy as np

from .. import vbq as V
from ..analysis import model_sizes
from ..models import accuracy
from ..serialize import save_quantized
from ._common import (add_device, add_model_data, data, device, one_bits, output_file, positive, take,
                      trained_model)

NAME = "vbq"
HELP = "search VBQ codebooks per layer with simulated annealing (sa) or a genetic algorithm (ga)"
DESCRIPTION = ("Search 2^bits representative values per layer (paper 003) with top-1 accuracy on "
               "--calib-size training images as the fitness: 'sa' anneals Eq. 2's (a, b) per layer, "
               "'ga' runs a genetic algorithm on each layer in turn (the others at their current "
               "codebooks, the Lloyd-Max codebook in the first population). Prints test accuracy "
               "against the float model and a Lloyd-Max baseline.")
EPILOG = """examples:
  lowbit vbq --bits 4 --search sa --iterations 40
  lowbit vbq --model ffdnn --bits 3 --search ga --iterations 10 --out ffdnn-vbq3.lbq
  lowbit vbq --bits 3 --device cuda:0       # fitness evaluations on a GPU
"""


def add_arguments(p):
    add_model_data(p)
    p.add_argument("--bits", type=one_bits, default=4, help="2^bits values per layer (default 4)")
    p.add_argument("--search", choices=("sa", "ga"), default="sa", help="default sa")
    p.add_argument("--iterations", type=positive, default=40,
                   help="SA iterations, or GA generations per layer (default 40)")
    p.add_argument("--population", type=positive, default=20, help="GA population (default 20)")
    p.add_argument("--calib-size", type=positive, default=500, help="calibration images (default 500)")
    p.add_argument("--eval-size", type=positive, default=5000, help="test images (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the packed model here (.lbq)")
    add_device(p, "the fitness evaluations of the search")


def _ga_books(ev, bins, generations, population, seed):
    books = [V.lloyd_max(w, bins) for w in ev.float_weights]
    for layer, w in enumerate(ev.float_weights):
        r = V.ga(ev.layer_fitness(layer, books), bins, float(w.min()), float(w.max()), population=population,
                 generations=generations, seed=seed + layer, init=np.asarray(books[layer])[None], progress=True)
        books[layer] = r.best
    return books


def run(args) -> int:
    dev = device(args)
    out = output_file(args.out) if args.out else None
    d = data(args.data)
    calib = take(d.train, args.calib_size, "--calib-size")
    x, y = take(d.test, args.eval_size, "--eval-size")
    model = trained_model(args.model, args.seed)
    ev = V.ModelEvaluator(model, *calib, device=dev)
    bins = 2 ** args.bits
    t0 = time.perf_counter()
    if args.search == "sa":
        _, books = V.sa_layers(ev, bins=bins, max_iterations=args.iterations, seed=args.seed, progress=True)
    else:
        books = _ga_books(ev, bins, args.iterations, args.population, args.seed)
    seconds = time.perf_counter() - t0
    q = V.apply(model, books, ev.names).eval()
    lloyd = V.apply(model, [V.lloyd_max(w, bins) for w in ev.float_weights], ev.names).eval()
    base, acc, acc_lloyd = accuracy(model, x, y), accuracy(q, x, y), accuracy(lloyd, x, y)
    sizes = model_sizes(q, float_model=model)
    print(f"{args.model}: {args.bits}-bit VBQ-{args.search.upper()} ({seconds:.1f} s): {acc:.2f} % on "
          f"{len(y)} test images; Lloyd-Max {acc_lloyd:.2f} %; float32 {base:.2f} %")
    print(f"packed {sizes.packed / 1024:.1f} KiB ({sizes.float32 / sizes.packed:.1f}x smaller than float)")
    if out is not None:
        n = save_quantized(q, out, metadata={"model": args.model, "method": f"vbq-{args.search}",
                                             "bits": args.bits})
        print(f"wrote {out} ({n} bytes)")
    return 0
