//===- CheckShapes.cpp - Reject shapes no kiln tensor can have ------------===//
//
// The kiln ops' verifiers bound their own operand and result shapes
// (AddressableTensors); this pass applies the same rule to everything else
// in the module: upstream ops (arith, math, tensor, linalg), block arguments
// and function signatures. Their shapes would otherwise overflow the int64
// sizes and strides of the lowering, or make a constant too large to build.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Support/ShapeLimits.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKSHAPES
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

/// Whether `type` is a shaped type whose static sizes are not addressable;
/// dynamic sizes are left to the code that runs the function.
static bool isUnaddressable(Type type, SmallVectorImpl<int64_t> &sizes) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasRank())
    return false;
  sizes.clear();
  for (int64_t size : shaped.getShape())
    if (!ShapedType::isDynamic(size))
      sizes.push_back(size);
  return !kiln::isAddressableShape(sizes);
}

namespace {
struct KilnCheckShapesPass
    : kiln::impl::KilnCheckShapesBase<KilnCheckShapesPass> {
  void runOnOperation() override {
    bool failed = false;
    SmallVector<int64_t> sizes;
    auto check = [&](Operation *op, Type type, StringRef kind, unsigned index) {
      if (!isUnaddressable(type, sizes))
        return;
      op->emitOpError() << kind << " #" << index << " type " << type << " "
                        << kiln::unaddressableShapeReason(sizes);
      failed = true;
    };
    getOperation()->walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (auto function = dyn_cast<FunctionOpInterface>(op)) {
        for (auto [index, type] : llvm::enumerate(function.getArgumentTypes()))
          check(op, type, "argument", index);
        for (auto [index, type] : llvm::enumerate(function.getResultTypes()))
          check(op, type, "result", index);
      } else {
        for (auto [index, type] : llvm::enumerate(op->getResultTypes()))
          check(op, type, "result", index);
      }
      // Arguments of blocks other than a function's entry block (whose
      // types are the signature's, checked above).
      for (Region &region : op->getRegions())
        for (Block &block : region) {
          if (isa<FunctionOpInterface>(op) && block.isEntryBlock())
            continue;
          for (BlockArgument argument : block.getArguments())
            if (isUnaddressable(argument.getType(), sizes)) {
              emitError(argument.getLoc())
                  << "block argument #" << argument.getArgNumber() << " type "
                  << argument.getType() << " "
                  << kiln::unaddressableShapeReason(sizes);
              failed = true;
            }
        }
    });
    if (failed)
      signalPassFailure();
  }
};
} // namespace
