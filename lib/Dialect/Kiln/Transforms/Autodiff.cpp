//===- Autodiff.cpp - Reverse-mode differentiation of kiln functions ------===//
//
// -kiln-autodiff: for `@f(args) -> results` derives `@f_vjp(args,
// cotangents) -> gradients` (tools.md's VJP contract). The forward graph is
// copied into the new function; a reverse sweep then asks every op on a
// path from a floating-point argument to a floating-point result for its
// rule (DifferentiableOpInterface, KilnGradients.cpp) and adds up the
// cotangents of values used more than once. Canonicalization and CSE then
// drop the forward ops no gradient needs.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/CSE.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_KILNAUTODIFF
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

bool hasFloatArgumentAndResult(func::FuncOp function) {
  FunctionType type = function.getFunctionType();
  return llvm::any_of(type.getInputs(), isFloatTensor) &&
         llvm::any_of(type.getResults(), isFloatTensor);
}

/// Which values depend on the floating-point arguments at all, and which
/// depend on them differentiably (through ops that pass gradients on).
struct Dependence {
  llvm::DenseSet<Value> any, differentiable;

  static bool passesGradient(Operation *op, unsigned operand) {
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    // An op without a rule counts as passing: if a cotangent reaches it the
    // sweep reports the missing rule.
    return !rule || rule.isDifferentiableOperand(operand);
  }

  Dependence(Block &body, ArrayRef<Operation *> ops) {
    for (BlockArgument arg : body.getArguments())
      if (isFloatTensor(arg.getType())) {
        any.insert(arg);
        differentiable.insert(arg);
      }
    for (Operation *op : ops) {
      bool anyDep = false, differentiableDep = false;
      for (OpOperand &operand : op->getOpOperands()) {
        anyDep |= any.contains(operand.get());
        differentiableDep |= differentiable.contains(operand.get()) &&
                             passesGradient(op, operand.getOperandNumber());
      }
      // Values an op's regions use from above (the branches of an scf.if)
      // are inputs too; no such op has a rule, so the sweep reports it.
      llvm::SetVector<Value> captured;
      getUsedValuesDefinedAbove(op->getRegions(), captured);
      for (Value value : captured) {
        anyDep |= any.contains(value);
        differentiableDep |= differentiable.contains(value);
      }
      for (Value result : op->getResults()) {
        if (anyDep)
          any.insert(result);
        if (differentiableDep && isFloatTensor(result.getType()))
          differentiable.insert(result);
      }
    }
  }

  /// For a float value that depends on the arguments but not
  /// differentiably: the op where the gradient path breaks, and the operand
  /// through which it depends.
  std::pair<Operation *, unsigned> findBreak(Value value) const {
    Operation *op = value.getDefiningOp();
    while (true) {
      Operation *next = nullptr;
      for (Value operand : op->getOperands())
        if (isFloatTensor(operand.getType()) && any.contains(operand) &&
            !differentiable.contains(operand) && operand.getDefiningOp()) {
          next = operand.getDefiningOp();
          break;
        }
      if (!next)
        break;
      op = next;
    }
    unsigned operand = 0;
    for (OpOperand &use : op->getOpOperands())
      if (any.contains(use.get())) {
        operand = use.getOperandNumber();
        break;
      }
    return {op, operand};
  }
};

/// Canonicalizes and CSEs `function` with the kiln ops' patterns.
void simplify(func::FuncOp function) {
  MLIRContext *context = function.getContext();
  RewritePatternSet patterns(context);
  Dialect *kilnDialect = context->getLoadedDialect<KilnDialect>();
  kilnDialect->getCanonicalizationPatterns(patterns);
  for (RegisteredOperationName name : context->getRegisteredOperations())
    if (&name.getDialect() == kilnDialect)
      name.getCanonicalizationPatterns(patterns, context);
  (void)applyPatternsGreedily(function, std::move(patterns));
  IRRewriter rewriter(context);
  DominanceInfo dominance(function);
  eliminateCommonSubExpressions(rewriter, dominance, function);
}

} // namespace

FailureOr<func::FuncOp> kiln::deriveVJP(func::FuncOp function,
                                        StringRef vjpName) {
  StringRef name = function.getName();
  if (function.isDeclaration())
    return function.emitError("cannot differentiate @")
           << name << ": it has no body";
  if (!function.getBody().hasOneBlock())
    return function.emitError("cannot differentiate @")
           << name << ": only single-block functions are supported";
  auto module = function->getParentOfType<ModuleOp>();
  if (module && SymbolTable::lookupSymbolIn(module, vjpName))
    return function.emitError("cannot add the gradient function '@")
           << vjpName << "': the module already has a symbol of that name";

  MLIRContext *context = function.getContext();
  FunctionType type = function.getFunctionType();
  SmallVector<Type> inputs(type.getInputs());
  SmallVector<Type> outputs;
  SmallVector<unsigned> floatResults, floatArgs;
  for (auto [i, t] : llvm::enumerate(type.getResults()))
    if (isFloatTensor(t)) {
      inputs.push_back(t);
      floatResults.push_back(i);
    }
  for (auto [i, t] : llvm::enumerate(type.getInputs()))
    if (isFloatTensor(t)) {
      outputs.push_back(t);
      floatArgs.push_back(i);
    }

  OpBuilder builder(context);
  builder.setInsertionPointAfter(function);
  auto vjp = func::FuncOp::create(builder, function.getLoc(), vjpName,
                                  FunctionType::get(context, inputs, outputs));
  Block *body = vjp.addEntryBlock();
  Block &forward = function.getBody().front();
  IRMapping mapping;
  for (auto [from, to] :
       llvm::zip(forward.getArguments(),
                 body->getArguments().take_front(forward.getNumArguments())))
    mapping.map(from, to);

  // 1. The forward graph, copied.
  builder.setInsertionPointToEnd(body);
  SmallVector<Operation *> ops;
  // Diagnostics point at the user's op, not its copy.
  llvm::DenseMap<Operation *, Operation *> originals;
  for (Operation &op : forward.without_terminator()) {
    ops.push_back(builder.clone(op, mapping));
    originals[ops.back()] = &op;
  }
  SmallVector<Value> results;
  for (Value v : forward.getTerminator()->getOperands())
    results.push_back(mapping.lookupOrDefault(v));

  auto fail = [&]() -> FailureOr<func::FuncOp> {
    vjp.erase();
    return failure();
  };

  // 2. Every float result must reach the arguments differentiably, if at
  // all (one that depends on no argument has zero gradients).
  Dependence dependence(*body, ops);
  for (auto [ct, resultIndex] : llvm::enumerate(floatResults)) {
    Value result = results[resultIndex];
    if (!dependence.any.contains(result) ||
        dependence.differentiable.contains(result))
      continue;
    auto [op, operand] = dependence.findBreak(result);
    InFlightDiagnostic diag = originals[op]->emitOpError()
                              << "has no gradient, but result #" << resultIndex
                              << " of @" << name
                              << " depends on the floating-point arguments "
                                 "only through it";
    Type operandType = op->getOperand(operand).getType();
    if (!isFloatTensor(operandType))
      diag.attachNote() << "its operand #" << operand << " has type "
                        << operandType << ", which carries no gradient";
    else
      diag.attachNote() << "it uses only the shape of its operand #" << operand;
    return fail();
  }

  // 3. The reverse sweep.
  llvm::DenseMap<Value, Value> cotangents;
  auto accumulate = [&](Value value, Value cotangent) {
    auto [it, inserted] = cotangents.try_emplace(value, cotangent);
    if (!inserted)
      it->second =
          AddOp::create(builder, value.getLoc(), it->second, cotangent);
  };
  for (auto [ct, resultIndex] : llvm::enumerate(floatResults))
    if (dependence.differentiable.contains(results[resultIndex]))
      accumulate(results[resultIndex],
                 body->getArgument(forward.getNumArguments() + ct));

  for (Operation *op : llvm::reverse(ops)) {
    SmallVector<Value> resultCotangents;
    bool any = false;
    for (Value result : op->getResults()) {
      resultCotangents.push_back(cotangents.lookup(result));
      any |= static_cast<bool>(resultCotangents.back());
    }
    if (!any)
      continue;
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    Operation *original = originals[op];
    if (!rule) {
      original->emitOpError() << "has no gradient rule, but @" << name
                              << " needs one to differentiate its results";
      return fail();
    }
    SmallVector<Value> operandCotangents(op->getNumOperands());
    if (failed(rule.buildVJP(builder, resultCotangents, operandCotangents)))
      return fail();
    for (OpOperand &operand : op->getOpOperands()) {
      Value cotangent = operandCotangents[operand.getOperandNumber()];
      if (!cotangent || !dependence.differentiable.contains(operand.get()) ||
          !rule.isDifferentiableOperand(operand.getOperandNumber()))
        continue;
      if (cotangent.getType() != operand.get().getType()) {
        original->emitOpError("internal error: the gradient rule gave type ")
            << cotangent.getType() << " for operand #"
            << operand.getOperandNumber() << " of type "
            << operand.get().getType();
        return fail();
      }
      accumulate(operand.get(), cotangent);
    }
  }

  // 4. The gradients of the float arguments (zeros where nothing flows).
  SmallVector<Value> gradients;
  for (unsigned arg : floatArgs) {
    Value argument = body->getArgument(arg);
    Value gradient = cotangents.lookup(argument);
    if (!gradient)
      gradient = FullOp::create(builder, function.getLoc(), argument.getType(),
                                builder.getF64FloatAttr(0.0));
    gradients.push_back(gradient);
  }
  func::ReturnOp::create(builder, function.getLoc(), gradients);
  simplify(vjp);
  return vjp;
}

namespace {

struct KilnAutodiffPass : kiln::impl::KilnAutodiffBase<KilnAutodiffPass> {
  using KilnAutodiffBase::KilnAutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> targets;
    if (functions.empty()) {
      for (auto function : module.getOps<func::FuncOp>())
        if (function.isPublic() && !function.isDeclaration() &&
            hasFloatArgumentAndResult(function))
          targets.push_back(function);
    }
    for (const std::string &name : functions) {
      auto function = module.lookupSymbol<func::FuncOp>(name);
      if (!function) {
        module.emitError("kiln-autodiff: no function named '@")
            << name << "' to differentiate";
        return signalPassFailure();
      }
      if (!hasFloatArgumentAndResult(function)) {
        function.emitError("cannot differentiate @")
            << name
            << ": it needs a floating-point argument and a floating-point "
               "result";
        return signalPassFailure();
      }
      targets.push_back(function);
    }
    for (func::FuncOp function : targets)
      if (failed(deriveVJP(function, (function.getName() + "_vjp").str())))
        return signalPassFailure();
  }
};

} // namespace
