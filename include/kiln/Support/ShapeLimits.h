//===- ShapeLimits.h - The largest tensor shapes Kiln addresses -*- C++ -*-===//
//
// One rule, shared by the dialect's verifiers, the .npy reader and the C++
// API, for which static shapes a kiln tensor may have.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_SUPPORT_SHAPELIMITS_H
#define KILN_SUPPORT_SHAPELIMITS_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <string>

namespace kiln {

/// The largest element count a kiln tensor may have (2^59): its elements
/// are at most 8 bytes, so its byte size is at most 2^62 and fits in int64
/// and size_t with room to spare (2^62 elements of f64 made 2^65 bytes,
/// which wrapped to 0: a one-byte buffer the kernel wrote 2^65 bytes to).
constexpr int64_t kMaxElements = int64_t(1) << 59;

/// Whether a static shape is addressable: every size is non-negative and the
/// product of its nonzero sizes is at most kMaxElements. Every partial product
/// of the sizes (element counts, strides, row counts, byte offsets and byte
/// sizes of elements of up to 8 bytes) then fits in int64, whatever the order
/// of the dimensions and whether or not the shape has a zero size. A shape with
/// a zero size has no elements but still has strides, so its nonzero sizes are
/// bounded too.
inline bool isAddressableShape(llvm::ArrayRef<int64_t> shape) {
  int64_t product = 1;
  for (int64_t size : shape) {
    if (size < 0)
      return false;
    if (size == 0)
      continue;
    if (product > kMaxElements / size)
      return false;
    product *= size;
  }
  return true;
}

/// Why an unaddressable shape with non-negative sizes is rejected, as a
/// phrase completing "<type> ...": "has more than 2^59 elements", or for a
/// shape with a zero size, that its nonzero sizes multiply past the limit.
inline std::string unaddressableShapeReason(llvm::ArrayRef<int64_t> shape) {
  for (int64_t size : shape)
    if (size == 0)
      return "has nonzero sizes whose product exceeds 2^59";
  return "has more than 2^59 elements";
}

} // namespace kiln

#endif // KILN_SUPPORT_SHAPELIMITS_H
