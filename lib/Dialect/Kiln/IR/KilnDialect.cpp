//===- KilnDialect.cpp - Kiln dialect registration ------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Transforms/InliningUtils.h"

using namespace mlir;
using namespace kiln;

#include "kiln/Dialect/Kiln/IR/KilnOpsDialect.cpp.inc"

namespace {
/// Every kiln op is pure and value-semantic: a function of kiln ops can be
/// inlined into its caller (graphs from the C++ API call functions loaded
/// from IR files; the pipelines inline them so that they fuse and
/// differentiate like the rest).
struct KilnInlinerInterface : DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final {
    return true;
  }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final {
    return true;
  }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void KilnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kiln/Dialect/Kiln/IR/KilnOps.cpp.inc"
      >();
  addInterfaces<KilnInlinerInterface>();
}

Operation *KilnDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                            Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, elements);
}

std::optional<std::string> kiln::filePosition(Location loc) {
  auto file = LocationAttr(loc).findInstanceOf<FileLineColLoc>();
  if (!file)
    return std::nullopt;
  return (file.getFilename().getValue() + ":" + Twine(file.getLine()) + ":" +
          Twine(file.getColumn()))
      .str();
}

std::string kiln::describeOp(Operation *op) {
  std::string text = "'" + op->getName().getStringRef().str() + "'";
  if (std::optional<std::string> where = filePosition(op->getLoc()))
    text += " (" + *where + ")";
  return text;
}
