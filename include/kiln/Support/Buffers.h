//===- Buffers.h - The buffer a memref value views ---------------*- C++
//-*-===//
//
// One rule, shared by the passes that reason about which buffer a load or a
// store touches (kiln-outline-kernels' buffer groups, kiln-streaming-stores,
// kiln-map-to-gpu's hoisting), for following a memref back to the buffer it
// is a view of.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_SUPPORT_BUFFERS_H
#define KILN_SUPPORT_BUFFERS_H

#include "mlir/IR/Value.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/StringRef.h"

namespace kiln {

/// The attribute kiln-outline-kernels gives each kernel: per memref
/// argument, the buffer group (the allocation it views; -1 when unknown).
/// Arguments of different groups never overlap. kiln-alias-scopes turns
/// the groups into LLVM alias scopes and removes the attribute.
constexpr llvm::StringLiteral kBufferGroupsAttr = "kiln.buffer_groups";

/// The memref `value` is a view of: its source through every op with
/// ViewLikeOpInterface (subview, reinterpret_cast, expand/collapse_shape,
/// cast, ...), or `value` itself when it is not defined by one. What the
/// result is -- an allocation, a global, a function argument, a
/// loop-carried value -- is the caller's question.
inline mlir::Value viewedBuffer(mlir::Value value) {
  while (auto view = value.getDefiningOp<mlir::ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

} // namespace kiln

#endif // KILN_SUPPORT_BUFFERS_H
