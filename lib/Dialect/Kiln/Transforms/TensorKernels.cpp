//===- TensorKernels.cpp - Bufferize each distinct kernel once ------------===//
//
// kiln-outline-tensor-kernels moves each kernel on tensors whose operands
// are whole buffers into a private function, one per distinct kernel, so
// that the passes up to bufferization work on each once (a deep network's
// layers repeat the same kernels); kiln-inline-tensor-kernels puts the
// bufferized bodies back at their calls.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_KILNOUTLINETENSORKERNELS
#define GEN_PASS_DEF_KILNINLINETENSORKERNELS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kTensorKernelAttr = "kiln.tensor_kernel";

bool isKernel(Operation *op) {
  return isa<linalg::LinalgOp, scf::ForallOp, scf::ForOp>(op) &&
         op->getNumResults() > 0 &&
         llvm::all_of(op->getResultTypes(), llvm::IsaPred<RankedTensorType>);
}

bool isTensorKernelCall(Operation *op) {
  auto call = dyn_cast<func::CallOp>(op);
  if (!call)
    return false;
  auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
      call, call.getCalleeAttr());
  return callee && callee->hasAttr(kTensorKernelAttr);
}

/// The tensors `op` writes: a linalg op's inits, an scf.forall's shared
/// outputs, an scf.for's tensor iter_args.
SmallVector<Value> writtenTensors(Operation *op) {
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return SmallVector<Value>(linalgOp.getDpsInits());
  if (auto forall = dyn_cast<scf::ForallOp>(op))
    return SmallVector<Value>(forall.getOutputs());
  SmallVector<Value> written;
  for (Value init : cast<scf::ForOp>(op).getInitArgs())
    if (isa<RankedTensorType>(init.getType()))
      written.push_back(init);
  return written;
}

/// The whole tensor `value` reads through reshapes (collapse_shape,
/// expand_shape), collected in `views` from the root out: an argument of
/// `function`, a tensor.empty, an outlined kernel's result, or the result
/// of a kernel left in place that writes such tensors -- each a buffer of
/// the identity layout, as is any reshape of one. Null for anything else
/// (a slice: a strided buffer).
Value wholeRoot(Value value, func::FuncOp function,
                SmallVectorImpl<Operation *> &views) {
  SmallVector<Operation *> chain;
  while (true) {
    if (auto argument = dyn_cast<BlockArgument>(value)) {
      if (argument.getOwner() != &function.getBody().front())
        return nullptr;
      break;
    }
    Operation *def = value.getDefiningOp();
    if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(def)) {
      chain.push_back(def);
      value = def->getOperand(0);
      continue;
    }
    if (isa<tensor::EmptyOp>(def) || isTensorKernelCall(def))
      break;
    // A kernel left in place: its results are the buffers it writes.
    if (!isKernel(def))
      return nullptr;
    SmallVector<Operation *> ignored;
    if (!llvm::all_of(writtenTensors(def), [&](Value written) {
          return wholeRoot(written, function, ignored) != nullptr;
        }))
      return nullptr;
    break;
  }
  views.append(chain.rbegin(), chain.rend());
  return value;
}

struct KilnOutlineTensorKernelsPass
    : kiln::impl::KilnOutlineTensorKernelsBase<KilnOutlineTensorKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    kiln::KernelTable kernels;
    SmallVector<func::FuncOp> functions;
    for (func::FuncOp function : module.getOps<func::FuncOp>())
      if (function.isPublic() && !function.isExternal() &&
          function.getBody().hasOneBlock())
        functions.push_back(function);
    for (func::FuncOp function : functions)
      for (Operation *op = &function.getBody().front().front(); op;)
        op = (isKernel(op) ? outline(op, function, symbols, kernels) : op)
                 ->getNextNode();
  }

  /// Outlines kernel `op` of `function`; returns the call that replaces it,
  /// or `op` when it stays. The kernel function only reads its arguments:
  /// the tensors `op` writes must be tensor.empty results only it uses,
  /// created inside (bufferized, the function returns its allocation,
  /// which becomes the caller's again when inlined). Constants and the
  /// reshapes of what it reads are cloned in, as in the caller, so that
  /// canonicalization sees them together as it did there.
  Operation *outline(Operation *op, func::FuncOp function, SymbolTable &symbols,
                     kiln::KernelTable &kernels) {
    llvm::SetVector<Operation *> cloned; // in the order they are cloned
    for (Value written : writtenTensors(op)) {
      auto empty = written.getDefiningOp<tensor::EmptyOp>();
      if (!empty || !empty->hasOneUse() || empty->getNumOperands() != 0)
        return op;
      cloned.insert(empty);
    }
    llvm::SetVector<Value> used(op->operand_begin(), op->operand_end());
    getUsedValuesDefinedAbove(op->getRegions(), used);
    llvm::SetVector<Value> arguments;
    for (Value value : used) {
      Operation *def = value.getDefiningOp();
      if (def && cloned.contains(def))
        continue;
      if (def && def->hasTrait<OpTrait::ConstantLike>() &&
          def->getNumOperands() == 0 && def->getNumRegions() == 0) {
        cloned.insert(def);
        continue;
      }
      Type type = value.getType();
      if (isa<RankedTensorType>(type)) {
        SmallVector<Operation *> views;
        Value root = wholeRoot(value, function, views);
        if (!root)
          return op;
        arguments.insert(root);
        cloned.insert(views.begin(), views.end());
        continue;
      }
      if (!type.isIntOrIndexOrFloat())
        return op; // vectors, memrefs, unranked tensors: stays
      arguments.insert(value);
    }
    // Reshapes with dynamic sizes take operands: not cloned, not outlined.
    for (Operation *clone : cloned)
      for (Value operand : clone->getOperands())
        if (!arguments.contains(operand) &&
            !(operand.getDefiningOp() &&
              cloned.contains(operand.getDefiningOp())))
          return op;

    OpBuilder detached(op->getContext());
    auto kernel = func::FuncOp::create(
        detached, op->getLoc(), "kiln_tensor_kernel",
        detached.getFunctionType(ValueRange(arguments.getArrayRef()).getTypes(),
                                 op->getResultTypes()));
    kernel.setPrivate();
    kernel->setAttr(kTensorKernelAttr, detached.getUnitAttr());
    Block *entry = kernel.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    IRMapping mapping;
    mapping.map(arguments.getArrayRef(), entry->getArguments());
    for (Operation *member : cloned)
      b.clone(*member, mapping);
    Operation *clone = b.clone(*op, mapping);
    func::ReturnOp::create(b, op->getLoc(), clone->getResults());

    kernel = kiln::shareIdenticalKernel(kernel, kernels, symbols).first;
    OpBuilder at(op);
    auto call =
        func::CallOp::create(at, op->getLoc(), kernel, arguments.getArrayRef());
    op->replaceAllUsesWith(call.getResults());
    op->erase();
    // The inits only `op` used; the views and constants stay for others.
    for (Operation *member : llvm::reverse(cloned))
      if (member->use_empty())
        member->erase();
    return call;
  }
};

struct KilnInlineTensorKernelsPass
    : kiln::impl::KilnInlineTensorKernelsBase<KilnInlineTensorKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::DenseMap<StringAttr, func::FuncOp> kernels;
    for (func::FuncOp function : module.getOps<func::FuncOp>())
      if (function->hasAttr(kTensorKernelAttr))
        kernels[function.getSymNameAttr()] = function;
    if (kernels.empty())
      return;
    SmallVector<std::pair<func::CallOp, func::FuncOp>> calls;
    module.walk([&](func::CallOp call) {
      auto found = kernels.find(call.getCalleeAttr().getAttr());
      if (found != kernels.end())
        calls.emplace_back(call, found->second);
    });
    for (auto [call, callee] : calls) {
      Block &body = callee.getBody().front();
      IRMapping mapping;
      mapping.map(body.getArguments(), call.getOperands());
      OpBuilder b(call);
      for (Operation &op : body.without_terminator())
        b.clone(op, mapping);
      for (auto [result, returned] :
           llvm::zip(call.getResults(), body.getTerminator()->getOperands()))
        result.replaceAllUsesWith(mapping.lookupOrDefault(returned));
      call.erase();
    }
    for (auto &entry : kernels)
      entry.second.erase();
  }
};

} // namespace
