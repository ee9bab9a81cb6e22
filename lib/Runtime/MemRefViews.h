//===- MemRefViews.h - Runtime kernels' view of memrefs ---------*- C++ -*-===//
//
// Shared by the CPU kernels (Selection.cpp, ArgReduce.cpp) and the GPU
// launchers (Cuda.cpp): both receive unranked memrefs of contiguous tensors
// and work on rows along one dim.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_MEMREFVIEWS_H
#define KILN_LIB_RUNTIME_MEMREFVIEWS_H

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <cstdint>
#include <vector>

namespace kiln::runtime::detail {

/// A contiguous row-major view of an unranked memref argument.
template <typename T> struct View {
  T *data;
  std::vector<int64_t> shape;
};

/// The number of elements of a tensor of `shape` (1 for rank 0).
inline int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t extent : shape)
    count *= extent;
  return count;
}

template <typename T> View<T> view(UnrankedMemRefType<T> *memref) {
  auto *desc = static_cast<StridedMemRefType<T, 1> *>(memref->descriptor);
  View<T> result;
  result.data = desc->data + desc->offset;
  // Sizes follow the offset in every ranked descriptor layout.
  const int64_t *sizes = &desc->offset + 1;
  result.shape.assign(sizes, sizes + memref->rank);
  return result;
}

/// Outer size, dim size and inner size of `shape` split at `dim` (a rank-0
/// tensor is one row of one element).
struct Split {
  int64_t outer = 1, size = 1, inner = 1;
};

inline Split split(const std::vector<int64_t> &shape, int64_t dim) {
  Split s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim)
      s.outer *= shape[d];
    else if (d == dim)
      s.size = shape[d];
    else
      s.inner *= shape[d];
  }
  return s;
}

/// The rows of an arg-reduction: along `dim`, or with `flatten` (argmax
/// without a dim) the whole tensor as one row.
inline Split splitForReduction(const std::vector<int64_t> &shape, int64_t dim,
                               bool flatten) {
  if (!flatten)
    return split(shape, dim);
  Split s;
  s.size = numElements(shape);
  return s;
}

} // namespace kiln::runtime::detail

#endif // KILN_LIB_RUNTIME_MEMREFVIEWS_H
