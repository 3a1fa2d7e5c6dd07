"""Data-free post-training quantization of a trained checkpoint, in a few lines.

    python examples/ptq_checkpoint.py mymodels:build float.pt 4 model-4bit.lbq
"""
import sys

import torch

import lowbit as lb
from lowbit.entry import load_entry_point

spec, checkpoint, bits, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = load_entry_point(spec, "model")()
model.load_state_dict(torch.load(checkpoint, weights_only=True))
quantized = lb.ptq(model, "asymmetric", bits)          # every layer, per channel, no data (paper 004)
print(lb.coverage(quantized))
print(f"wrote {out}: {lb.save_quantized(quantized, out)} bytes")
