"""A character-level transformer on the fortunes corpus, retrained at 4 and 3 bits, then run
with packed kernels: bits per character, size and generation speed against float.

    .venv/bin/python examples/char_transformer.py                 # about 5 minutes on 2 cores
    .venv/bin/python examples/char_transformer.py --steps 60 --retrain-steps 20 --tokens 16

Every step is the public API a user's own script would call:
1. train a float CharTransformer (lb.models.train_char_model);
2. for each width: lb.attach (straight-through fake quantization on every Linear, attention
   projection and embedding, the output layer float), retrain, lb.freeze;
3. lb.inference.convert: packed attention, feed-forward and embedding modules; generate text
   token by token at batch 1 with them (lb.models.generate), timed against the float model.
"""
import argparse
import copy

import torch

import lowbit as lb
from lowbit.data.text import bits_per_character, load_text_corpus
from lowbit.timing import paired_times, torch_threads_as_lowbit


def speed_against_float(packed, float_model, prompt, tokens: int):
    """(packed tokens/s, float tokens/s, median packed / float speed ratio): greedy generation
    of `tokens` tokens at batch 1, the two models timed alternately on the same threads."""
    def run(m):
        return lambda: lb.models.generate(m, prompt, tokens, temperature=0)
    with torch.no_grad(), torch_threads_as_lowbit():
        t_packed, t_float, ratio = paired_times(run(packed), run(float_model), repeat=5, warmup=1)
    return tokens / t_packed, tokens / t_float, ratio


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=800, help="float training steps (default 800)")
    p.add_argument("--retrain-steps", type=int, default=200, help="retraining steps per width (default 200)")
    p.add_argument("--bits", default="4,3", help="widths to retrain at (default 4,3)")
    p.add_argument("--tokens", type=int, default=200, help="tokens generated for the speed test (default 200)")
    p.add_argument("--max-chars", type=int, default=None, help="use only this many corpus characters")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    widths = [int(b) for b in args.bits.split(",")]

    corpus = load_text_corpus(max_chars=args.max_chars)
    torch.manual_seed(args.seed)
    float_model = lb.models.CharTransformer(corpus.vocab_size)
    lb.models.train_char_model(float_model, corpus, steps=args.steps, seed=args.seed, valid=False)
    prompt = corpus.encode("The ")
    rows = [("float", bits_per_character(float_model, corpus), lb.inference.model_size(float_model),
             None, None, corpus.decode(lb.models.generate(float_model, prompt, 60, temperature=0.8,
                                                          seed=args.seed)))]
    print(lb.coverage(float_model))                   # what attach will quantize, and why not the rest

    for bits in widths:
        model = copy.deepcopy(float_model)
        lb.attach(model, lb.QuantConfig(bits=bits, granularity="channel"))   # L2-optimal step per row
        lb.models.train_char_model(model, corpus, steps=args.retrain_steps, lr=1e-3, seed=args.seed,
                                   valid=False)
        lb.freeze(model)
        packed = lb.inference.convert(model, strict=True)
        text = corpus.decode(lb.models.generate(packed, prompt, 60, temperature=0.8, seed=args.seed))
        packed_tps, float_tps, ratio = speed_against_float(packed, float_model, prompt, args.tokens)
        rows.append((f"{bits} bits", bits_per_character(packed, corpus), lb.inference.model_size(packed),
                     (packed_tps, float_tps), ratio, text))

    print(f"\n{'model':<8} {'test bpc':>8} {'KiB':>8} {'tokens/s (float)':>17} {'vs float':>8}  sample")
    for name, bpc, size, tps, ratio, text in rows:
        speed = f"{tps[0]:.0f} ({tps[1]:.0f})" if tps else ""
        vs = f"{ratio:.2f}x" if ratio else ""
        print(f"{name:<8} {bpc:>8.3f} {size / 1024:>8.1f} {speed:>17} {vs:>8}  {text!r}")
    print(f"({lb.get_num_threads()} lowbit threads, torch {torch.get_num_threads()} threads, "
          f"ISA {lb.kernel_isa()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
