"""The numbers of paper 004 (Nayak, Zhang, Chai, "Bit efficient quantization for deep
neural networks"), copied by hand from /work/shared/papers/004_e1fd59702df525fd.txt.
ResNet-18 on CIFAR-10 (Tables 1-2) and ImageNet models (Tables 3a-3c, 5)."""

# Table 1: ResNet-18 / CIFAR-10, accuracy % (size in "Mb" as printed) per bit width.
T1_FLOAT = 90.87
T1_FLOAT_SIZE = 2.0
T1_BITS = (8, 7, 6, 5, 4, 3, 2)
T1 = {
    "asymmetric": {8: (90.83, 1.4), 7: (90.80, 1.35), 6: (90.90, 1.30), 5: (90.61, 1.25),
                   4: (90.04, 1.20), 3: (85.93, 1.16), 2: (22.46, 1.11)},
    "symmetric": {8: (90.51, 0.76), 7: (90.46, 0.65), 6: (90.48, 0.55), 5: (90.41, 0.45),
                  4: (89.54, 0.366), 3: (88.93, 0.291), 2: (77.24, 0.223)},
}
T1_POW2 = (86.9, 4)   # accuracy %, average bit-levels (one entry: unbounded power of two)

# Table 2: ResNet-18 / CIFAR-10 at 3 bits, before / after grouping cat + dog.
T2 = {"asymmetric": (90.87, 85.93, 88.2), "pow2": (90.87, 86.9, 87.7)}   # float, before, after

# Table 3(c): ImageNet, power of two: float, post-quantization accuracy, average bit-levels.
T3C = {"VGG-16": (71.19, 64.17, 5.23), "ResnetV1-50": (74.08, 69.82, 5.87),
       "ResnetV2-50": (74.25, 70.02, 6.12), "InceptionV2": (74.43, None, 5.32),
       "InceptionV3": (76.71, None, 6.15), "InceptionV4": (76.59, 74.34, 6.15)}
KNEE_BITS = 6   # Fig. 4: "knee of the curve at 6-bits" for every ImageNet model (ASYMM)

# Table 5: MB at 6 bits, stored as float and compressed: (baseline, gzip, 7-zip).
T5 = {("VGG-16", "uniform"): (513.72, 95.78, 69.65), ("VGG-16", "pow2"): (513.72, 95.56, 68.14),
      ("ResnetV2-50", "uniform"): (95.4, 14.05, 10.12), ("ResnetV2-50", "pow2"): (95.4, 17.84, 11.18),
      ("InceptionV4", "uniform"): (171.26, 26.6, 19.4), ("InceptionV4", "pow2"): (171.26, 28.6, 21.6)}
