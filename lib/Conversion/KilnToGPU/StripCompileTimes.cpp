//===- StripCompileTimes.cpp - Deterministic gpu.binary properties --------===//
//
// gpu-module-to-binary stores each kernel's compile time in its object's
// properties; the GPU pipeline's printed IR must not vary between runs.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSTRIPCOMPILETIMES
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

struct KilnStripCompileTimesPass
    : kiln::impl::KilnStripCompileTimesBase<KilnStripCompileTimesPass> {
  void runOnOperation() override {
    getOperation().walk([](gpu::BinaryOp binary) {
      SmallVector<Attribute> objects;
      for (Attribute attr : binary.getObjects()) {
        auto object = cast<gpu::ObjectAttr>(attr);
        DictionaryAttr properties = object.getProperties();
        if (properties) {
          SmallVector<NamedAttribute> kept;
          for (NamedAttribute entry : properties)
            if (!entry.getName().strref().ends_with("TimeInMs"))
              kept.push_back(entry);
          properties = DictionaryAttr::get(binary.getContext(), kept);
        }
        objects.push_back(gpu::ObjectAttr::get(
            binary.getContext(), object.getTarget(), object.getFormat(),
            object.getObject(), properties, object.getKernels()));
      }
      binary.setObjectsAttr(ArrayAttr::get(binary.getContext(), objects));
    });
  }
};

} // namespace
