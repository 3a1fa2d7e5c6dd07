// CPU adapters for bit packing. Signed codes (int8) are stored offset by 2^(bits-1).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "lowbit/kernels.h"
#include "ops/check.h"
#include "ops/define.h"

namespace lowbit::ops {
namespace {

constexpr int64_t kMinBits = 1, kMaxBits = 8;

at::Tensor pack_cpu(const at::Tensor& codes_in, int64_t bits) {
  check_bits(bits, kMinBits, kMaxBits, "pack");
  const auto dt = codes_in.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kByte || dt == at::kChar,
                   "codes must be uint8 (unsigned codes) or int8 (signed codes), got ", dt);
  const at::Tensor codes = codes_in.contiguous();
  const int64_t n = codes.numel();
  const uint8_t offset = dt == at::kChar ? uint8_t(1u << (bits - 1)) : 0;
  at::Tensor out = at::empty({(n * bits + 7) / 8}, codes.options().dtype(at::kByte));
  const bool ok = lowbit::kernels::pack_bits(static_cast<const uint8_t*>(codes.data_ptr()), n,
                                             int(bits), offset, out.data_ptr<uint8_t>());
  TORCH_CHECK_VALUE(ok, "codes do not fit in ", bits, " bits (", dt == at::kChar ? "signed: [" : "unsigned: [",
                    dt == at::kChar ? -(int64_t(1) << (bits - 1)) : 0, ", ",
                    dt == at::kChar ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1,
                    "])");
  return out;
}

at::Tensor unpack_cpu(const at::Tensor& packed_in, int64_t bits, int64_t count, bool is_signed) {
  check_bits(bits, kMinBits, kMaxBits, "unpack");
  TORCH_CHECK_TYPE(packed_in.scalar_type() == at::kByte, "packed must be uint8, got ",
                   packed_in.scalar_type());
  TORCH_CHECK_VALUE(count >= 0, "count must be >= 0, got ", count);
  const at::Tensor packed = packed_in.contiguous();
  const int64_t need = (count * bits + 7) / 8;
  TORCH_CHECK_VALUE(packed.numel() == need, "packed holds ", packed.numel(), " bytes but ", count,
                    " codes of ", bits, " bits need ", need);
  at::Tensor out = at::empty({count}, packed.options().dtype(is_signed ? at::kChar : at::kByte));
  const uint8_t offset = is_signed ? uint8_t(1u << (bits - 1)) : 0;
  lowbit::kernels::unpack_bits(packed.data_ptr<uint8_t>(), count, int(bits), offset,
                               static_cast<uint8_t*>(out.data_ptr()));
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  define(m, "pack(Tensor codes, int bits) -> Tensor", pack_cpu);
  define(m, "unpack(Tensor packed, int bits, int count, bool is_signed) -> Tensor", unpack_cpu);
}

}  // namespace lowbit::ops
