//===- AliasScopes.cpp - Scoped-noalias metadata for kernel buffers -------===//
//
// kiln-outline-kernels groups the memref arguments of a kernel by the
// allocation they view (`kiln.buffer_groups`; different groups never
// overlap). Here, after the memref and vector ops became LLVM loads and
// stores but while the kernel is still a func.func with memref arguments,
// every load and store whose address derives from an argument of a group
// gets the group's alias scope and the other groups' scopes as noalias.
// Buffers the kernel allocates itself (malloc, or alloca since
// kiln-iteration-scratch: accumulators, scratch rows) overlap no argument:
// their accesses share one more scope, noalias with every group's.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Support/Buffers.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"

namespace kiln {
#define GEN_PASS_DEF_KILNALIASSCOPES
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// The function argument, the malloc call or the alloca a pointer is
/// derived from --
/// through GEPs, the allocated or aligned pointer of a descriptor,
/// descriptors built by insertvalue (views), the cast of a memref argument
/// to its descriptor and the integer arithmetic that aligns an allocation
/// -- or null when the chain leaves those ops.
Value rootOf(Value value, func::FuncOp function) {
  // A descriptor's pointer field: position 0 (allocated) or 1 (aligned).
  std::optional<int64_t> field;
  for (int steps = 0; steps < 256 && value; ++steps) {
    if (auto argument = dyn_cast<BlockArgument>(value)) {
      // Only the function's own arguments (not loop-carried values).
      if (argument.getOwner() != &function.getBody().front())
        return nullptr;
      return argument;
    }
    Operation *def = value.getDefiningOp();
    if (auto gep = dyn_cast<LLVM::GEPOp>(def)) {
      if (field)
        return nullptr;
      value = gep.getBase();
    } else if (auto extract = dyn_cast<LLVM::ExtractValueOp>(def)) {
      ArrayRef<int64_t> position = extract.getPosition();
      if (field || position.size() != 1 || position[0] > 1)
        return nullptr;
      field = position[0];
      value = extract.getContainer();
    } else if (auto insert = dyn_cast<LLVM::InsertValueOp>(def)) {
      if (!field)
        return nullptr;
      ArrayRef<int64_t> position = insert.getPosition();
      if (position.size() == 1 && position[0] == *field) {
        value = insert.getValue();
        field.reset();
      } else {
        value = insert.getContainer();
      }
    } else if (auto call = dyn_cast<LLVM::CallOp>(def)) {
      std::optional<StringRef> callee = call.getCallee();
      if (field || !callee || *callee != "malloc")
        return nullptr;
      return call.getResult();
    } else if (auto alloca = dyn_cast<LLVM::AllocaOp>(def)) {
      // A buffer of kiln-iteration-scratch.
      if (field)
        return nullptr;
      return alloca.getResult();
    } else if (isa<LLVM::IntToPtrOp, LLVM::PtrToIntOp>(def)) {
      // An aligned allocation: inttoptr(sub(add(ptrtoint(p), a - 1), rem)).
      if (field)
        return nullptr;
      value = def->getOperand(0);
    } else if (isa<LLVM::AddOp, LLVM::SubOp>(def)) {
      if (field)
        return nullptr;
      value = def->getOperand(0);
    } else if (auto cast = dyn_cast<UnrealizedConversionCastOp>(def)) {
      // memref -> descriptor, as the conversions leave it.
      if (!field || cast->getNumOperands() != 1 ||
          !isa<BaseMemRefType>(cast->getOperand(0).getType()))
        return nullptr;
      value = cast->getOperand(0);
      field.reset();
    } else {
      return nullptr;
    }
  }
  return nullptr;
}

struct KilnAliasScopesPass
    : kiln::impl::KilnAliasScopesBase<KilnAliasScopesPass> {
  void runOnOperation() override {
    getOperation().walk([&](func::FuncOp function) {
      auto groups =
          function->getAttrOfType<DenseI64ArrayAttr>(kiln::kBufferGroupsAttr);
      if (!groups)
        return;
      // A group is an allocation some argument views (kiln-outline-kernels
      // numbers them from 0): one per argument at most. A hand-written
      // number beyond would make that many scopes.
      int64_t arguments = function.getNumArguments();
      for (int64_t group : groups.asArrayRef())
        if (group >= arguments) {
          function.emitError("'")
              << kiln::kBufferGroupsAttr << "' names buffer group " << group
              << ", but a function of " << arguments
              << " argument(s) has groups 0 to " << arguments - 1
              << " (-1: unknown)";
          signalPassFailure();
          return;
        }
      function->removeAttr(kiln::kBufferGroupsAttr);
      // Groups kiln-streaming-stores found only written, and large: their
      // scopes' names say so, for the CPU compiler's non-temporal stores.
      SmallVector<int64_t> streaming;
      if (auto attr = function->getAttrOfType<DenseI64ArrayAttr>(
              kiln::kStreamingGroupsAttr))
        llvm::append_range(streaming, attr.asArrayRef());
      function->removeAttr(kiln::kStreamingGroupsAttr);
      int64_t count = 0;
      for (int64_t group : groups.asArrayRef())
        count = std::max(count, group + 1);
      if (count == 0 || function.getBody().empty())
        return; // no argument buffers
      // The scope of each access: its argument's group, or `count` (the
      // kernel's own allocations).
      SmallVector<std::pair<LLVM::AliasAnalysisOpInterface, int64_t>> accesses;
      bool local = false;
      function.walk([&](LLVM::AliasAnalysisOpInterface access) {
        SmallVector<Value> addresses = access.getAccessedOperands();
        if (addresses.size() != 1)
          return;
        Value root = rootOf(addresses[0], function);
        if (!root)
          return;
        int64_t group = count;
        if (auto argument = dyn_cast<BlockArgument>(root)) {
          if (argument.getArgNumber() >= groups.size())
            return;
          group = groups[argument.getArgNumber()];
          if (group < 0)
            return;
        } else {
          local = true;
        }
        accesses.emplace_back(access, group);
      });
      if (count + local < 2 && streaming.empty())
        return; // nothing to tell apart, nothing to mark
      MLIRContext *context = function.getContext();
      auto domain = LLVM::AliasScopeDomainAttr::get(
          context, StringAttr::get(context, function.getSymName()));
      SmallVector<Attribute> scopes;
      for (int64_t group = 0; group < count; ++group)
        scopes.push_back(LLVM::AliasScopeAttr::get(
            domain,
            StringAttr::get(context, "buffer" + Twine(group) +
                                         (llvm::is_contained(streaming, group)
                                              ? kiln::kStreamingScopeSuffix
                                              : ""))));
      if (local)
        scopes.push_back(LLVM::AliasScopeAttr::get(
            domain, StringAttr::get(context, "local")));
      for (auto [access, group] : accesses) {
        SmallVector<Attribute> others(scopes);
        others.erase(others.begin() + group);
        access.setAliasScopes(ArrayAttr::get(context, {scopes[group]}));
        access.setNoAliasScopes(ArrayAttr::get(context, others));
      }
    });
  }
};

} // namespace
