//===- ProfileKernels.cpp - Time each kernel of the entry points ----------===//
//
// -kiln-profile-kernels (kiln-run --profile): brackets every kernel the
// public functions run with calls that time it in the runtime
// (kiln_rt_profile_enter/exit, Runtime/Kernels.cpp), and lists the sites
// in the module attribute kiln.profile_sites.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace kiln {
#define GEN_PASS_DEF_KILNPROFILEKERNELS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kEnter = "kiln_rt_profile_enter";
constexpr llvm::StringLiteral kExit = "kiln_rt_profile_exit";

/// What `op`, at the top level of an entry point, runs -- or nothing when
/// it is no kernel (allocation, views, constants, the runtime's helpers).
std::optional<std::string> kernelKind(Operation *op) {
  if (auto call = dyn_cast<func::CallOp>(op)) {
    StringRef callee = call.getCallee();
    if (callee == kEnter || callee == kExit || callee == "kiln_rt_num_threads")
      return std::nullopt;
    return callee.str();
  }
  if (isa<memref::CopyOp>(op))
    return std::string("copy");
  if (isa<linalg::LinalgOp, scf::ForallOp, scf::ParallelOp, scf::ForOp>(op))
    return "kernel in place (" + op->getName().getStringRef().str() + ")";
  return std::nullopt;
}

struct KilnProfileKernelsPass
    : kiln::impl::KilnProfileKernelsBase<KilnProfileKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    OpBuilder b(module.getBodyRegion());
    auto declare = [&](StringRef name) {
      if (auto existing = module.lookupSymbol<func::FuncOp>(name))
        return existing;
      auto callee = func::FuncOp::create(
          b, module.getLoc(), name, b.getFunctionType({b.getI64Type()}, {}));
      callee.setPrivate();
      return callee;
    };
    func::FuncOp enter = declare(kEnter), exit = declare(kExit);
    SmallVector<Attribute> sites;
    for (func::FuncOp function : module.getOps<func::FuncOp>()) {
      if (!function.isPublic() || function.isExternal())
        continue;
      for (Block &block : function.getBody())
        for (Operation &op : llvm::make_early_inc_range(block)) {
          std::optional<std::string> kind = kernelKind(&op);
          if (!kind)
            continue;
          int64_t site = sites.size();
          sites.push_back(b.getStringAttr(
              kiln::filePosition(op.getLoc()).value_or("unknown") + "\t" +
              *kind));
          b.setInsertionPoint(&op);
          Value id = arith::ConstantIntOp::create(b, op.getLoc(), site, 64);
          func::CallOp::create(b, op.getLoc(), enter, id);
          b.setInsertionPointAfter(&op);
          func::CallOp::create(b, op.getLoc(), exit, id);
        }
    }
    module->setAttr(kiln::kProfileSitesAttrName, b.getArrayAttr(sites));
  }
};

} // namespace
