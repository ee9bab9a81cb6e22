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
#include <optional>
#include <string>

namespace kiln {

/// The largest element count a kiln tensor may have (2^59): its elements
/// are at most 8 bytes, so its byte size is at most 2^62 and fits in int64
/// and size_t with room to spare (2^62 elements of f64 made 2^65 bytes,
/// which wrapped to 0: a one-byte buffer the kernel wrote 2^65 bytes to).
constexpr int64_t kMaxElements = int64_t(1) << 59;
/// kMaxElements in messages.
constexpr const char *kMaxElementsText = "2^59";

/// The element count of a static shape if it is addressable (0 when it has
/// a zero size), none if not: a size is negative, or the product of its
/// nonzero sizes exceeds kMaxElements. Every partial product of the sizes of
/// an addressable shape (element counts, strides, row counts, byte offsets
/// and byte sizes of elements of up to 8 bytes) fits in int64, whatever the
/// order of the dimensions and whether or not the shape has a zero size. A
/// shape with a zero size has no elements but still has strides, so its
/// nonzero sizes are bounded too.
inline std::optional<int64_t>
getAddressableElementCount(llvm::ArrayRef<int64_t> shape) {
  int64_t product = 1;
  bool empty = false;
  for (int64_t size : shape) {
    if (size < 0)
      return std::nullopt;
    if (size == 0) {
      empty = true;
      continue;
    }
    if (product > kMaxElements / size)
      return std::nullopt;
    product *= size;
  }
  return empty ? 0 : product;
}

/// Whether a static shape is addressable (getAddressableElementCount).
inline bool isAddressableShape(llvm::ArrayRef<int64_t> shape) {
  return getAddressableElementCount(shape).has_value();
}

/// Why an unaddressable shape with non-negative sizes is rejected, as a
/// phrase completing "<type> ...": "has more than 2^59 elements", or for a
/// shape with a zero size, that its nonzero sizes multiply past the limit.
inline std::string unaddressableShapeReason(llvm::ArrayRef<int64_t> shape) {
  for (int64_t size : shape)
    if (size == 0)
      return std::string("has nonzero sizes whose product exceeds ") +
             kMaxElementsText;
  return std::string("has more than ") + kMaxElementsText + " elements";
}

} // namespace kiln

#endif // KILN_SUPPORT_SHAPELIMITS_H
