//===- SplitCodegen.cpp - Machine code of a module on several threads -----===//
//
// Instruction selection, scheduling and register allocation take most of
// LLVM's share of a cold compile, and they work on one function at a time.
// emitObjects splits an optimized module into partitions of whole kernels,
// balanced by their estimated cost, and compiles them concurrently, each
// partition in an LLVMContext and with a TargetMachine of its own (neither
// may be shared by threads); the JIT links the objects together. A kernel
// is compiled from the same optimized IR, its uses in the same order, as
// without the split, so its machine code is the same whichever partition it
// lands in. The entry's glue, which only sequences the kernels and was
// compiled unoptimized already, gets a partition of its own compiled at
// CodeGenOptLevel::None: the fast instruction selector and register
// allocator, where the greedy allocator took 320 ms on the 4600-instruction
// block of a 12-layer transformer's gradient.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/CpuCompiler.h"

#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Threading.h"

#include <atomic>
#include <functional>

#include <pthread.h>

using namespace llvm;

namespace {

/// A local constant whose address nobody compares (unnamed_addr): each
/// partition that reads it gets a private copy (OpenMP's source-location
/// structs, which every parallel kernel references, would otherwise tie all
/// parallel kernels into one partition).
bool isCopied(const GlobalValue &value) {
  auto *variable = dyn_cast<GlobalVariable>(&value);
  return variable && variable->hasLocalLinkage() && variable->isConstant() &&
         variable->hasInitializer() && variable->hasGlobalUnnamedAddr();
}

/// Adds the global values `constant` refers to, through constant
/// expressions and aggregates, to `out`.
void addReferences(const Constant *constant,
                   SmallSetVector<const GlobalValue *, 16> &out,
                   SmallPtrSetImpl<const Constant *> &seen) {
  if (!seen.insert(constant).second)
    return;
  if (auto *value = dyn_cast<GlobalValue>(constant)) {
    out.insert(value);
    return;
  }
  for (const Use &operand : constant->operands())
    if (auto *inner = dyn_cast<Constant>(operand.get()))
      addReferences(inner, out, seen);
}

/// The global values `value`'s definition refers to, in order of first
/// reference, looking through copied constants (whose references become
/// those of every partition that reads them).
SmallSetVector<const GlobalValue *, 16> referencesOf(const GlobalValue &value) {
  SmallSetVector<const GlobalValue *, 16> out;
  SmallPtrSet<const Constant *, 32> seen;
  if (auto *function = dyn_cast<Function>(&value)) {
    if (function->hasPersonalityFn())
      addReferences(function->getPersonalityFn(), out, seen);
    for (const Instruction &inst : instructions(*function))
      for (const Use &operand : inst.operands())
        if (auto *constant = dyn_cast<Constant>(operand.get()))
          addReferences(constant, out, seen);
  } else if (auto *variable = dyn_cast<GlobalVariable>(&value)) {
    if (variable->hasInitializer())
      addReferences(variable->getInitializer(), out, seen);
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (isCopied(*out[i]))
      addReferences(cast<GlobalVariable>(out[i])->getInitializer(), out, seen);
  return out;
}

/// The estimated cost of compiling `function` to machine code, in
/// instructions: the schedulers' work grows with the square of a block's
/// size, and kernels are often one large block (16 rows of a short-row
/// softmax side by side, each row's loops unrolled: 2300 instructions in
/// one block took 270 ms, half of it in the post-RA scheduler, where 6000
/// instructions in blocks of up to 400 took 300 ms).
size_t codegenCost(const Function &function) {
  size_t cost = 0;
  for (const BasicBlock &block : function) {
    size_t size = block.size();
    cost += size + size * size / 2048;
  }
  return cost;
}

/// The partition of the entry's glue, compiled without optimization.
constexpr unsigned kGluePartition = 0;

/// Where each definition goes: `home` for the definitions that exist once,
/// `copies[p]` for the copied constants partition p reads; `cost[p]`, its
/// estimated compile time, orders the work. `references` holds
/// referencesOf(value) of every definition that exists once, in module
/// order.
struct Partitioning {
  unsigned parts = 1;
  DenseMap<const GlobalValue *, unsigned> home;
  std::vector<SmallPtrSet<const GlobalValue *, 8>> copies;
  std::vector<size_t> cost;
  MapVector<const GlobalValue *, SmallSetVector<const GlobalValue *, 16>>
      references;
};

/// Partitions `module` for `threads` threads: the glue (functions compiled
/// unoptimized, optnone: the entry and its C interface, which sequence the
/// kernels) in a partition of its own, compiled by the fast instruction
/// selector and register allocator of CodeGenOptLevel::None, and the rest
/// in at most `threads` partitions of about the same cost. A function and
/// the local definitions it refers to stay together (a kernel and its
/// outlined parallel body, a table and its reader), so that only the glue's
/// calls and references to non-local definitions cross partitions. One
/// partition, as without splitting, for modules under `minCost`.
Partitioning partition(const Module &module, unsigned threads, size_t minCost) {
  Partitioning result;
  if (!module.alias_empty() || !module.ifunc_empty() ||
      !module.getComdatSymbolTable().empty())
    return result;
  std::vector<const GlobalValue *> definitions;
  for (const GlobalVariable &variable : module.globals()) {
    // llvm.used and its kind: appending arrays exist once per module.
    if (variable.hasAppendingLinkage())
      return result;
    if (!variable.isDeclaration() && !isCopied(variable))
      definitions.push_back(&variable);
  }
  for (const Function &function : module)
    if (!function.isDeclaration())
      definitions.push_back(&function);

  EquivalenceClasses<const GlobalValue *> classes;
  for (const GlobalValue *value : definitions) {
    classes.insert(value);
    result.references[value] = referencesOf(*value);
  }
  auto isGlue = [](const GlobalValue *value) {
    auto *function = dyn_cast<Function>(value);
    return function && function->hasOptNone();
  };
  for (const GlobalValue *value : definitions) {
    if (isGlue(value))
      continue; // its calls may cross partitions
    for (const GlobalValue *target : result.references[value])
      if (target->hasLocalLinkage() && !target->isDeclaration() &&
          !isCopied(*target))
        classes.unionSets(value, target);
  }

  // The classes in order of their first definition, with their costs; a
  // class without optimized functions (glue, data only it reads) goes with
  // the glue.
  DenseMap<const GlobalValue *, unsigned> classIndex;
  std::vector<size_t> weights;
  std::vector<bool> optimized;
  size_t glueCost = 0, total = 0;
  bool hasGlue = false;
  for (const GlobalValue *value : definitions) {
    const GlobalValue *leader = classes.getLeaderValue(value);
    auto [it, inserted] = classIndex.try_emplace(leader, weights.size());
    if (inserted) {
      weights.push_back(0);
      optimized.push_back(false);
    }
    if (auto *function = dyn_cast<Function>(value)) {
      if (isGlue(value)) {
        // The fast selector and allocator: about an eighth of the cost.
        glueCost += function->getInstructionCount() / 8;
        hasGlue = true;
      } else {
        weights[it->second] += codegenCost(*function);
        optimized[it->second] = true;
      }
    }
  }
  for (size_t weight : weights)
    total += weight;
  unsigned classesOptimized = llvm::count(optimized, true);
  unsigned optimizedParts = std::min(threads, classesOptimized);
  if (total + glueCost < minCost || optimizedParts == 0 ||
      (!hasGlue && optimizedParts == 1))
    return result;

  // Partition 0 holds the glue, 1 to n the rest: largest class first, each
  // to the cheapest partition so far (ties: the earlier class, the lower
  // partition), deterministic for a given module and thread count.
  result.parts = 1 + optimizedParts;
  result.cost.assign(result.parts, 0);
  result.cost[kGluePartition] = glueCost;
  std::vector<unsigned> order;
  for (unsigned i = 0; i < weights.size(); ++i)
    if (optimized[i])
      order.push_back(i);
  llvm::sort(order, [&](unsigned a, unsigned b) {
    return weights[a] != weights[b] ? weights[a] > weights[b] : a < b;
  });
  std::vector<unsigned> classHome(weights.size(), kGluePartition);
  for (unsigned index : order) {
    unsigned cheapest =
        std::min_element(result.cost.begin() + 1, result.cost.end()) -
        result.cost.begin();
    classHome[index] = cheapest;
    result.cost[cheapest] += weights[index];
  }
  for (const GlobalValue *value : definitions)
    result.home[value] = classHome[classIndex[classes.getLeaderValue(value)]];

  result.copies.resize(result.parts);
  for (const GlobalValue *value : definitions)
    for (const GlobalValue *target : result.references[value])
      if (isCopied(*target))
        result.copies[result.home[value]].insert(target);
  return result;
}

/// Makes the local definitions that another partition refers to external
/// (each keeps its name, a nameless one gets one), so that the JIT links
/// the reference to them.
void exposeSharedLocals(const Partitioning &parts) {
  for (const auto &[value, targets] : parts.references) {
    unsigned home = parts.home.lookup(value);
    for (const GlobalValue *target : targets) {
      auto *shared = const_cast<GlobalValue *>(target);
      if (!shared->hasLocalLinkage() || shared->isDeclaration() ||
          isCopied(*shared) || parts.home.lookup(shared) == home)
        continue;
      shared->setLinkage(GlobalValue::ExternalLinkage);
      shared->setVisibility(GlobalValue::DefaultVisibility);
      if (!shared->hasName())
        shared->setName("kiln.shared");
    }
  }
}

/// Leaves in `part` only what it uses of the other partitions, as
/// declarations: a definition in another object may be loaded anywhere,
/// so references to it go through the GOT and PLT stubs, which the JIT's
/// linker places within reach (and bypasses when the target is near). The
/// partition's own definitions are reached as before the split.
void tidyDeclarations(Module &part) {
  SmallVector<GlobalValue *> unused;
  for (GlobalValue &value : part.global_values())
    if (value.isDeclaration() && value.use_empty() &&
        !(isa<Function>(value) && cast<Function>(value).isIntrinsic()))
      unused.push_back(&value);
  for (GlobalValue *value : unused)
    value->eraseFromParent();
  for (GlobalValue &value : part.global_values())
    if (value.isDeclaration())
      value.setDSOLocal(false);
}

/// The module's functions, then its variables, in order: the same list in
/// a copy read back from bitcode.
std::vector<GlobalValue *> definitionOrder(Module &module) {
  std::vector<GlobalValue *> values;
  for (Function &function : module)
    values.push_back(&function);
  for (GlobalVariable &variable : module.globals())
    values.push_back(&variable);
  return values;
}

/// Which of definitionOrder(module) partition `p` defines.
std::vector<bool> definedBy(Module &module, const Partitioning &parts,
                            unsigned p) {
  std::vector<bool> defined;
  for (GlobalValue *value : definitionOrder(module))
    defined.push_back(!value->isDeclaration() &&
                      (isCopied(*value) ? parts.copies[p].contains(value)
                                        : parts.home.lookup(value) == p));
  return defined;
}

/// Turns `module` (the split module or a copy of it) into the partition
/// that defines `defined` (definitionOrder): the others' definitions become
/// declarations or, unused, go. The instructions left keep their order and
/// their uses' order, on which instruction selection depends (a copy made
/// by CloneModule, whose use lists come out in a new order, compiled some
/// kernels' addressing differently).
void keepPartition(Module &module, const std::vector<bool> &defined) {
  std::vector<GlobalValue *> values = definitionOrder(module);
  for (auto [value, keep] : llvm::zip_equal(values, defined)) {
    if (keep || value->isDeclaration())
      continue;
    if (auto *function = dyn_cast<Function>(value)) {
      function->deleteBody();
    } else {
      auto *variable = cast<GlobalVariable>(value);
      variable->setInitializer(nullptr);
      variable->setLinkage(GlobalValue::ExternalLinkage);
    }
  }
  // (Copied constants only the others read are unused declarations now.)
  tidyDeclarations(module);
}

/// Object code of a partition; the glue's at CodeGenOptLevel::None.
Expected<std::string> compile(Module &module, TargetMachine &tm, bool glue) {
  CodeGenOptLevel level = tm.getOptLevel();
  if (glue)
    tm.setOptLevel(CodeGenOptLevel::None);
  Expected<std::string> object =
      kiln::runtime::emitMachineCode(module, tm, CodeGenFileType::ObjectFile);
  tm.setOptLevel(level);
  return object;
}

/// Object code of a partition of the split module read back from
/// `bitcode`, in a context and with a target machine of its own.
Expected<std::string> compilePartition(StringRef bitcode,
                                       const std::vector<bool> &defined,
                                       bool glue) {
  LLVMContext context;
  Expected<std::unique_ptr<Module>> module =
      parseBitcodeFile(MemoryBufferRef(bitcode, "kiln-split"), context);
  if (!module)
    return module.takeError();
  keepPartition(**module, defined);
  auto tm = kiln::runtime::createHostTargetMachine();
  if (!tm)
    return tm.takeError();
  return compile(**module, **tm, glue);
}

} // namespace

Expected<unsigned> kiln::runtime::compileThreads() {
  std::optional<std::string> text =
      sys::Process::GetEnv("KILN_COMPILE_THREADS");
  if (!text || text->empty())
    return llvm::hardware_concurrency().compute_thread_count();
  unsigned threads;
  if (StringRef(*text).getAsInteger(10, threads) || threads < 1 ||
      threads > 1024)
    return createStringError(inconvertibleErrorCode(),
                             "KILN_COMPILE_THREADS: '" + *text +
                                 "' is not a thread count (expected an "
                                 "integer from 1 to 1024)");
  return threads;
}

Expected<std::vector<std::string>>
kiln::runtime::emitObjects(Module &module, TargetMachine &tm,
                           unsigned threads) {
  Partitioning parts = partition(module, threads, kMinSplitCost);
  if (parts.parts < 2) {
    Expected<std::string> object =
        emitMachineCode(module, tm, CodeGenFileType::ObjectFile);
    if (!object)
      return object.takeError();
    return std::vector<std::string>{std::move(*object)};
  }
  exposeSharedLocals(parts);
  std::vector<std::vector<bool>> defined;
  for (unsigned p = 0; p < parts.parts; ++p)
    defined.push_back(definedBy(module, parts, p));

  // The most costly partitions first, each to the next free thread. The
  // caller compiles the most costly one in `module` itself; the others
  // read the module back from bitcode (uses in their order) into contexts
  // of their own.
  std::vector<unsigned> order(parts.parts);
  for (unsigned p = 0; p < parts.parts; ++p)
    order[p] = p;
  llvm::sort(order, [&](unsigned a, unsigned b) {
    return parts.cost[a] != parts.cost[b] ? parts.cost[a] > parts.cost[b]
                                          : a < b;
  });
  SmallVector<char, 0> bitcode;
  {
    raw_svector_ostream os(bitcode);
    WriteBitcodeToFile(module, os, /*ShouldPreserveUseListOrder=*/true);
  }

  std::vector<std::string> objects(parts.parts);
  std::vector<std::string> errors(parts.parts);
  auto record = [&](unsigned p, Expected<std::string> object) {
    if (object)
      objects[p] = std::move(*object);
    else
      errors[p] = toString(object.takeError());
  };
  std::atomic<unsigned> next{1};
  auto work = [&] {
    for (unsigned i; (i = next.fetch_add(1)) < parts.parts;) {
      unsigned p = order[i];
      record(p, compilePartition(StringRef(bitcode.data(), bitcode.size()),
                                 defined[p], p == kGluePartition));
    }
  };
  // Workers as POSIX threads: a system out of threads refuses one with an
  // error code (std::thread would throw, and the runtime is built without
  // exceptions), and the threads that did start, the caller among them,
  // take its partitions.
  std::function<void()> task = work;
  std::vector<pthread_t> workers;
  for (unsigned t = 1; t < std::min(threads, parts.parts); ++t) {
    pthread_t worker;
    if (pthread_create(
            &worker, nullptr,
            [](void *function) -> void * {
              (*static_cast<std::function<void()> *>(function))();
              return nullptr;
            },
            &task) != 0)
      break;
    workers.push_back(worker);
  }
  keepPartition(module, defined[order[0]]);
  record(order[0], compile(module, tm, order[0] == kGluePartition));
  work();
  for (pthread_t worker : workers)
    pthread_join(worker, nullptr);
  for (const std::string &error : errors)
    if (!error.empty())
      return createStringError(inconvertibleErrorCode(), error);
  return objects;
}
