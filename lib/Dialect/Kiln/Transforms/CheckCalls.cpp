//===- CheckCalls.cpp - Reject calls that cannot be compiled --------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKCALLS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
struct KilnCheckCallsPass : kiln::impl::KilnCheckCallsBase<KilnCheckCallsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);

    // The calls of defined functions, and the call graph they make.
    struct Call {
      func::CallOp op;
      func::FuncOp caller, callee;
    };
    SmallVector<Call> calls;
    llvm::DenseMap<func::FuncOp, llvm::SetVector<func::FuncOp>> callees;
    bool failed = false;
    module.walk([&](func::CallOp call) {
      auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
      if (!callee)
        return; // The verifier reports unknown callees.
      if (callee.isExternal()) {
        call.emitError() << "calls @" << call.getCallee()
                         << ", which has no body: every function a graph "
                            "calls must be defined in the module";
        failed = true;
        return;
      }
      if (auto caller = call->getParentOfType<func::FuncOp>()) {
        calls.push_back({call, caller, callee});
        callees[caller].insert(callee);
      }
    });

    // A call is recursive when its callee reaches its caller.
    auto reaches = [&](func::FuncOp from, func::FuncOp to) {
      llvm::SmallVector<func::FuncOp> stack{from};
      llvm::DenseSet<func::FuncOp> seen{from};
      while (!stack.empty()) {
        func::FuncOp f = stack.pop_back_val();
        if (f == to)
          return true;
        for (func::FuncOp next : callees.lookup(f))
          if (seen.insert(next).second)
            stack.push_back(next);
      }
      return false;
    };
    for (Call &call : calls)
      if (reaches(call.callee, call.caller)) {
        call.op.emitError() << "calls @" << call.op.getCallee()
                            << " recursively: a kiln graph cannot recurse";
        failed = true;
      }
    if (failed)
      signalPassFailure();
  }
};
} // namespace
