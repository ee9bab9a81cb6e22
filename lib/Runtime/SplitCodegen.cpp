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
// block of a 12-layer transformer's gradient. Kernels with a block of 1000
// instructions or more get partitions of their own compiled without the
// post-RA scheduler (CodeGenOptLevel::Less).
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
/// size, and a kernel can be one large block (a deep elementwise chain's
/// vector loop; before the lanes kernel, LLVM's 16 rows of a short-row
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

/// The least estimated cost worth a partition of its own: reading the
/// module back and a target machine cost a few milliseconds.
constexpr size_t kMinPartitionCost = 500;

/// A kernel with a block of at least this many instructions has *large
/// blocks* (the vector loop of a chain of 16 tanh over 64x80 floats, each
/// about 75 instructions; LLVM's short-row softmax above made one of 2300).
constexpr size_t kLargeBlock = 1000;

bool hasLargeBlocks(const Function &function) {
  return llvm::any_of(function, [](const BasicBlock &block) {
    return block.size() >= kLargeBlock;
  });
}

/// How a class of definitions is compiled, in the order of the partitions
/// that hold them: the entry's glue unoptimized (CodeGenOptLevel::None);
/// kernels at CodeGenOptLevel::Aggressive; kernels with large blocks at
/// CodeGenOptLevel::Less, which on x86 runs the same passes but for the
/// post-RA list scheduler (and duplicates shorter tails). The scheduling
/// models of Zen 3 and later enable that scheduler from
/// CodeGenOptLevel::Default up; its dependence graph, built with alias
/// queries between the memory accesses, grows with the square of a block:
/// the kernel of the 2300-instruction block above took 320 ms in `llc -O3`,
/// 190 at -O1, the same instructions in another order, and ran as fast.
enum class Level { Glue, Kernels, LargeBlocks };

CodeGenOptLevel codeGenLevel(Level level) {
  switch (level) {
  case Level::Glue:
    return CodeGenOptLevel::None;
  case Level::Kernels:
    return CodeGenOptLevel::Aggressive;
  case Level::LargeBlocks:
    return CodeGenOptLevel::Less;
  }
  llvm_unreachable("unknown level");
}

/// Where each definition goes: `home` for the definitions that exist once,
/// `copies[p]` for the copied constants partition p reads; `cost[p]`, its
/// estimated compile time, orders the work; `level[p]`, how it is compiled.
/// `references` holds referencesOf(value) of every definition that exists
/// once, in module order. One partition (`parts == 1`) is the whole module,
/// compiled at `level[0]`.
struct Partitioning {
  unsigned parts = 1;
  DenseMap<const GlobalValue *, unsigned> home;
  std::vector<SmallPtrSet<const GlobalValue *, 8>> copies;
  std::vector<size_t> cost;
  std::vector<Level> level{Level::Kernels};
  MapVector<const GlobalValue *, SmallSetVector<const GlobalValue *, 16>>
      references;
};

/// Partitions `module` for `threads` threads: the glue (functions compiled
/// unoptimized, optnone: the entry and its C interface, which sequence the
/// kernels) in a partition of its own, compiled by the fast instruction
/// selector and register allocator of CodeGenOptLevel::None, the kernels
/// with large blocks in at most `threads` partitions compiled without the
/// post-RA scheduler, and the other kernels in at most `threads` partitions;
/// those of each level of about the same cost. A function and the local
/// definitions it refers to stay together (a kernel and its outlined
/// parallel body, a table and its reader; with large blocks if any of them
/// has), so that only the glue's calls and references to non-local
/// definitions cross partitions. One partition, as without splitting, for
/// modules under `minCost` all of whose kernels compile alike.
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

  // The classes in order of their first definition, with their costs and
  // levels; a class without optimized functions (glue, data only it reads)
  // goes with the glue.
  DenseMap<const GlobalValue *, unsigned> classIndex;
  std::vector<size_t> weights;
  std::vector<Level> levels;
  size_t glueCost = 0, total = 0;
  bool hasGlue = false;
  for (const GlobalValue *value : definitions) {
    const GlobalValue *leader = classes.getLeaderValue(value);
    auto [it, inserted] = classIndex.try_emplace(leader, weights.size());
    if (inserted) {
      weights.push_back(0);
      levels.push_back(Level::Glue);
    }
    if (auto *function = dyn_cast<Function>(value)) {
      if (isGlue(value)) {
        // The fast selector and allocator: about an eighth of the cost.
        glueCost += function->getInstructionCount() / 8;
        hasGlue = true;
      } else {
        weights[it->second] += codegenCost(*function);
        Level &level = levels[it->second];
        if (hasLargeBlocks(*function))
          level = Level::LargeBlocks;
        else if (level == Level::Glue)
          level = Level::Kernels;
      }
    }
  }
  // Partitions per level: one per thread, but no more than classes, nor
  // than one per kMinPartitionCost of work (the entry's packed form and the
  // module's constructors are classes of a few instructions each).
  auto partsOf = [&](Level level) -> unsigned {
    size_t classCount = 0, cost = 0;
    for (unsigned i = 0; i < weights.size(); ++i)
      if (levels[i] == level) {
        ++classCount;
        cost += weights[i];
      }
    if (classCount == 0)
      return 0;
    return std::clamp<size_t>(cost / kMinPartitionCost, 1,
                              std::min<size_t>(threads, classCount));
  };
  for (size_t weight : weights)
    total += weight;
  unsigned kernelParts = partsOf(Level::Kernels);
  unsigned largeParts = partsOf(Level::LargeBlocks);
  if (kernelParts + largeParts == 0)
    return result;
  // One piece: all kernels of one level and, under minCost, with the glue
  // (compiled at their level: it is small), or no glue and one partition's
  // worth.
  bool oneLevel = kernelParts == 0 || largeParts == 0;
  if (oneLevel && (total + glueCost < minCost ||
                   (!hasGlue && kernelParts + largeParts == 1))) {
    result.level[0] = largeParts ? Level::LargeBlocks : Level::Kernels;
    return result;
  }

  // Partition 0 holds the glue, then those of the kernels, then those of
  // the kernels with large blocks: largest class first, each to the
  // cheapest partition of its level so far (ties: the earlier class, the
  // lower partition), deterministic for a given module and thread count.
  result.parts = 1 + kernelParts + largeParts;
  result.cost.assign(result.parts, 0);
  result.cost[kGluePartition] = glueCost;
  result.level.assign(result.parts, Level::Kernels);
  result.level[kGluePartition] = Level::Glue;
  for (unsigned p = 1 + kernelParts; p < result.parts; ++p)
    result.level[p] = Level::LargeBlocks;
  std::vector<unsigned> order;
  for (unsigned i = 0; i < weights.size(); ++i)
    if (levels[i] != Level::Glue)
      order.push_back(i);
  llvm::sort(order, [&](unsigned a, unsigned b) {
    return weights[a] != weights[b] ? weights[a] > weights[b] : a < b;
  });
  std::vector<unsigned> classHome(weights.size(), kGluePartition);
  for (unsigned index : order) {
    auto first = result.cost.begin() +
                 (levels[index] == Level::Kernels ? 1 : 1 + kernelParts);
    auto last = levels[index] == Level::Kernels ? first + kernelParts
                                                : result.cost.end();
    unsigned cheapest = std::min_element(first, last) - result.cost.begin();
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

/// Object code of a partition, compiled at `level`.
Expected<std::string> compile(Module &module, TargetMachine &tm, Level level) {
  CodeGenOptLevel old = tm.getOptLevel();
  tm.setOptLevel(codeGenLevel(level));
  Expected<std::string> object =
      kiln::runtime::emitMachineCode(module, tm, CodeGenFileType::ObjectFile);
  tm.setOptLevel(old);
  return object;
}

/// Object code of a partition of the split module read back from
/// `bitcode`, in a context and with a target machine of its own.
Expected<std::string> compilePartition(StringRef bitcode,
                                       const std::vector<bool> &defined,
                                       Level level) {
  LLVMContext context;
  Expected<std::unique_ptr<Module>> module =
      parseBitcodeFile(MemoryBufferRef(bitcode, "kiln-split"), context);
  if (!module)
    return module.takeError();
  keepPartition(**module, defined);
  auto tm = kiln::runtime::createHostTargetMachine();
  if (!tm)
    return tm.takeError();
  return compile(**module, **tm, level);
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
    Expected<std::string> object = compile(module, tm, parts.level[0]);
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
                                 defined[p], parts.level[p]));
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
  record(order[0], compile(module, tm, parts.level[order[0]]));
  work();
  for (pthread_t worker : workers)
    pthread_join(worker, nullptr);
  for (const std::string &error : errors)
    if (!error.empty())
      return createStringError(inconvertibleErrorCode(), error);
  return objects;
}
