//===- CpuCompiler.cpp - Kiln IR to x86-64 machine code -------------------===//

#include "kiln/Runtime/CpuCompiler.h"

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Support/LruCache.h"

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Analysis/AssumptionCache.h"
#include "llvm/Analysis/CFG.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/IntrinsicsX86.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CachePruning.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Transforms/IPO/MergeFunctions.h"
#include "llvm/Transforms/Utils/Local.h"
#include "llvm/Transforms/Utils/LoopUtils.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

using namespace kiln::runtime;

static llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
kiln::runtime::createHostTargetMachine() {
  static std::once_flag initTargets;
  std::call_once(initTargets, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder)
    return builder.takeError();
  builder->setRelocationModel(llvm::Reloc::PIC_);
  builder->setCodeModel(llvm::CodeModel::Small);
  builder->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  // No vector gathers or scatters from LLVM's vectorizers: once kernels
  // tell LLVM their buffers do not overlap (kiln-alias-scopes), the loop
  // vectorizer turns indexed loads into AVX-512 gathers, which Zen 4 runs
  // slower than scalar loads (a gather along dim 1 of 64x100x33 with 7
  // indices per row: 5 -> 14 us). Kiln's own kernels choose their reads.
  builder->getFeatures().AddFeature("prefer-no-gather");
  builder->getFeatures().AddFeature("prefer-no-scatter");
  return builder->createTargetMachine();
}

/// Whether the environment asks for the verifier after every pass of the
/// lowering (KILN_VERIFY_PASSES set, not 0): else it runs once, on the
/// result.
static bool verifyEachPass() {
  std::optional<std::string> text =
      llvm::sys::Process::GetEnv("KILN_VERIFY_PASSES");
  return text && *text != "0" && !text->empty();
}

llvm::Error kiln::runtime::lowerToLLVMDialect(mlir::ModuleOp module,
                                              const CompileOptions &options) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        os << d.getLocation() << ": " << d << "\n";
        return mlir::success();
      });
  mlir::PassManager pm(module.getContext());
  options.buildPipeline(pm);
  // The verifier runs once, on the result, unless KILN_VERIFY_PASSES=1
  // asks for it after every pass, as kiln-opt runs it by default:
  // after each of about 80 passes, over IR that grows to 240 000 lines
  // for a 12-layer transformer's gradient, it took 1.2 of the pipeline's
  // 3.6 s. The input was verified when it was parsed or built.
  bool verifyEach = verifyEachPass();
  pm.enableVerifier(verifyEach);
  if (mlir::failed(pm.run(module)))
    return makeError("lowering failed:\n" + diagnostics);
  if (!verifyEach && mlir::failed(mlir::verify(module)))
    return makeError("lowering produced invalid IR (a Kiln bug; "
                     "KILN_VERIFY_PASSES=1 names the pass):\n" +
                     diagnostics);
  return llvm::Error::success();
}

/// Whether `f` only sequences work — no loop, no vector value — so that
/// compiling it unoptimized costs nothing at run time. kiln-outline-kernels
/// leaves entry points like that; this guards against anything it did not
/// move out.
static bool isGlue(llvm::Function &f) {
  llvm::SmallVector<
      std::pair<const llvm::BasicBlock *, const llvm::BasicBlock *>>
      backedges;
  llvm::FindFunctionBackedges(f, backedges);
  if (!backedges.empty())
    return false;
  for (llvm::Instruction &inst : llvm::instructions(f))
    if (inst.getType()->isVectorTy() ||
        llvm::any_of(inst.operands(), [](const llvm::Use &use) {
          return use->getType()->isVectorTy();
        }))
      return false;
  return true;
}

/// Marks `f`, when it is glue, to be compiled once and unoptimized.
static void compileGlueUnoptimized(llvm::Function &f) {
  if (!isGlue(f))
    return;
  f.addFnAttr(llvm::Attribute::NoInline);
  f.addFnAttr(llvm::Attribute::OptimizeNone);
}

/// Adds `void _kiln_packed_<f>(ptr %descriptors)` calling
/// `_mlir_ciface_<f>(descriptors[0], ..., descriptors[n-1])`.
static void addPackedEntryPoints(llvm::Module &module) {
  llvm::LLVMContext &ctx = module.getContext();
  llvm::Type *ptr = llvm::PointerType::get(ctx, 0);
  std::vector<llvm::Function *> targets;
  for (llvm::Function &f : module)
    if (!f.isDeclaration() && f.getName().starts_with("_mlir_ciface_"))
      targets.push_back(&f);
  for (llvm::Function *target : targets) {
    // The entry's body is glue — allocations, one call per outlined
    // kernel, index-error checks, copies, frees — in one long block, so it
    // is compiled once and unoptimized: inlined into the C interface and
    // that into the packed entry, it was optimized and compiled three
    // times, and LLVM's machine CSE is quadratic in a block (a graph of
    // 4500 kernels took 51 s to compile, most of it on the entry).
    if (llvm::Function *body =
            module.getFunction(target->getName().drop_front(13))) {
      body->addFnAttr(llvm::Attribute::NoInline);
      compileGlueUnoptimized(*body);
    }
    // The C interface is glue as well: it loads every descriptor's fields
    // and passes them on, one call with three or more arguments per memref.
    // Optimized, instruction selection of that one block grew with the
    // square of its size: a 128-layer MLP's gradient (514 descriptors, a
    // call with 3089 arguments) spent 5.5 of LLVM's 8 s on it, 0.4 s
    // unoptimized.
    compileGlueUnoptimized(*target);
    std::string name =
        ("_kiln_packed_" + target->getName().drop_front(13)).str();
    auto *type = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr},
                                         /*isVarArg=*/false);
    auto *wrapper = llvm::Function::Create(
        type, llvm::GlobalValue::ExternalLinkage, name, module);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", wrapper));
    std::vector<llvm::Value *> args;
    for (unsigned i = 0; i < target->arg_size(); ++i) {
      llvm::Value *slot = b.CreateConstGEP1_64(ptr, wrapper->getArg(0), i);
      args.push_back(b.CreateLoad(ptr, slot));
    }
    b.CreateCall(target, args);
    b.CreateRetVoid();
  }
}

/// Replaces llvm.global_ctors / llvm.global_dtors (GPU host code loads its
/// kernel modules in constructors) with exported functions `_kiln_init` and
/// `_kiln_fini` that call them in order: the JIT links objects, whose
/// .init_array it does not run, so Executable calls these itself.
static void addInitFunctions(llvm::Module &module) {
  llvm::LLVMContext &ctx = module.getContext();
  for (auto [arrayName, name] : {std::pair<const char *, const char *>{
                                     "llvm.global_ctors", "_kiln_init"},
                                 {"llvm.global_dtors", "_kiln_fini"}}) {
    // (priority, position in the array, function): sorted by priority,
    // equal priorities in array order.
    std::vector<std::tuple<uint64_t, size_t, llvm::Function *>> entries;
    if (llvm::GlobalVariable *array = module.getGlobalVariable(arrayName)) {
      if (auto *init = llvm::dyn_cast_or_null<llvm::ConstantArray>(
              array->getInitializer()))
        for (llvm::Value *element : init->operands()) {
          auto *entry = llvm::cast<llvm::ConstantStruct>(element);
          auto *priority = llvm::cast<llvm::ConstantInt>(entry->getOperand(0));
          if (auto *fn = llvm::dyn_cast<llvm::Function>(entry->getOperand(1)))
            entries.emplace_back(priority->getZExtValue(), entries.size(), fn);
        }
      array->eraseFromParent();
    }
    llvm::sort(entries);
    if (std::string(name) == "_kiln_fini")
      std::reverse(entries.begin(), entries.end());
    auto *type =
        llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), /*isVarArg=*/false);
    auto *fn = llvm::Function::Create(type, llvm::GlobalValue::ExternalLinkage,
                                      name, module);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
    for (auto &entry : entries)
      b.CreateCall(std::get<2>(entry));
    b.CreateRetVoid();
  }
}

/// Loops of at least this many floating-point operations are interleaved
/// this many times (interleaveLongLoops); on CPUs with 16 vector registers,
/// loops of at least kVeryLongLoopOperations only twice.
constexpr unsigned kLongLoopOperations = 20;
constexpr unsigned kLongLoopInterleave = 4;
constexpr unsigned kVeryLongLoopOperations = 40;
constexpr unsigned kNarrowRegisterFileInterleave = 2;

/// Whether `tm`'s CPU has 32 vector registers (AVX-512) rather than 16
/// (AVX2, SSE).
static bool hasWideRegisterFile(const llvm::TargetMachine &tm) {
  const llvm::MCSubtargetInfo *info = tm.getMCSubtargetInfo();
  return info && info->checkFeatures("+avx512f");
}

/// Whether `inst` computes on floating-point values (arithmetic, a
/// comparison, a select, a call, a cast).
static bool isFloatOperation(llvm::Instruction &inst) {
  llvm::Type *type = llvm::isa<llvm::FCmpInst>(inst)
                         ? inst.getOperand(0)->getType()
                         : inst.getType();
  return type->isFPOrFPVectorTy() &&
         llvm::isa<llvm::BinaryOperator, llvm::UnaryOperator, llvm::FCmpInst,
                   llvm::SelectInst, llvm::CallInst, llvm::CastInst>(inst);
}

/// Innermost loops whose iterations are independent (the induction variable
/// is the header's only phi: elementwise kernels) and whose body is a long
/// chain of floating-point operations (f64 pow, tanh, exp) get
/// `llvm.loop.interleave.count`: LLVM's vectorizer interleaves only loops
/// cheaper than 20 operations, and one f64 pow's chain of about 170
/// dependent vector operations is longer than the core's reorder window,
/// so without a second chain in flight it ran at a third of its throughput
/// (1024x1024 doubles: 8.2 ms, interleaved by 2 4.6, by 4 3.1, by 8 3.0
/// with spills; f64 log got slower at 8). With 16 vector registers (AVX2)
/// four chains of the longest bodies outnumber them and spill: loops of 40
/// operations or more are interleaved twice there (Zen 3, 1 / 2 threads,
/// medians of 5-7 alternating runs: f64 pow of 1024x1024 13.3 / 6.4 -> 11.3
/// / 5.3 ms, f32 pow of 4096x1024 (computed in f64) 34.6 / 17.3 -> 30.6 /
/// 14.6, f64 log 3.32 / 1.97 -> 3.08 / 1.86; f64 tanh, 63 operations, level;
/// shorter bodies keep 4: interleaved twice, f32 log (28 operations) took
/// 9.7 ms instead of 7.2 at 1 thread, the sigmoid (23) 2.62 instead of
/// 2.41). Each lane computes its element whatever the count, so the
/// same bits. Loops carrying a reduction keep LLVM's choice, which fixes
/// the order their lanes add up in.
static void interleaveLongLoops(llvm::Function &f, bool wideRegisterFile) {
  llvm::DominatorTree dominators(f);
  llvm::LoopInfo loops(dominators);
  for (llvm::Loop *loop : loops.getLoopsInPreorder()) {
    if (!loop->isInnermost() || !loop->getLoopLatch() ||
        !llvm::hasSingleElement(loop->getHeader()->phis()))
      continue;
    unsigned operations = 0;
    for (llvm::BasicBlock *block : loop->blocks())
      for (llvm::Instruction &inst : *block)
        operations += isFloatOperation(inst);
    if (operations < kLongLoopOperations)
      continue;
    unsigned count = !wideRegisterFile && operations >= kVeryLongLoopOperations
                         ? kNarrowRegisterFileInterleave
                         : kLongLoopInterleave;
    llvm::addStringMetadataToLoop(loop, "llvm.loop.interleave.count", count);
  }
}

/// Whether `tm`'s CPU executes 512-bit vector operations as two 256-bit
/// halves: AMD Zen 4 (znver4). Zen 5 and Intel's AVX-512 cores have
/// full-width 512-bit loads.
static bool splitsWideVectors(const llvm::TargetMachine &tm) {
  return tm.getTargetCPU() == "znver4";
}

/// Whether `f` does little floating-point work per floating-point load
/// (at most four operations per load: sums, max/min scans, short
/// elementwise chains) in every basic block that loads. On CPUs that split
/// 512-bit vectors (splitsWideVectors) such functions are compiled with
/// 256-bit vectors: on an AMD EPYC Zen 4 a stream of 256-bit loads reads
/// about 10% faster than one of 512-bit loads (sum over 4096x32768: 16.9
/// -> 15.0 ms on one thread), while math-heavy kernels (softmax's exp)
/// stay faster with 512-bit vectors (10.8 ms against 13.8 ms for softmax
/// over 4096x4096). On a Zen 5, 512-bit loads are the faster ones (the
/// same sum: 15.5 ms at 256 bits, 13.4 at 512, 98% of STREAM read; the
/// elementwise chains the same at both widths). Blocks are judged one by one: a
/// kernel whose loops include one loop of heavy math (softmax's rows in cache:
/// the exp pass next to the maximum and the sum) is math-heavy even though its
/// other loops load more than they compute.
static bool isMemoryBound(llvm::Function &f) {
  bool anyLoads = false;
  for (llvm::BasicBlock &block : f) {
    unsigned loads = 0, operations = 0, wideShuffles = 0;
    for (llvm::Instruction &inst : block) {
      llvm::Type *type = inst.getType();
      // Lanes rearranged across 512-bit vectors as often as loads come (a
      // matrix-vector product's tile transposes): in 256-bit halves, each
      // shuffle becomes several (4096x4096 times a vector: 3.1 ms at 256
      // bits, 2.6 ms at 512). A sum's lane tree after its loop has no loads.
      if (auto *shuffle = llvm::dyn_cast<llvm::ShuffleVectorInst>(&inst))
        wideShuffles +=
            !shuffle->isZeroEltSplat() &&
            type->getPrimitiveSizeInBits().getKnownMinValue() >= 512;
      if (llvm::isa<llvm::LoadInst>(inst)) {
        loads += type->isFPOrFPVectorTy();
        continue;
      }
      operations += isFloatOperation(inst);
    }
    if (loads > 0 && (operations > 4 * loads || wideShuffles >= loads))
      return false;
    anyLoads |= loads > 0;
  }
  return anyLoads;
}

/// Whether `store` writes a buffer kiln-streaming-stores marked: one of its
/// alias scopes is named `buffer<N>.streaming`.
static bool isStreamingStore(const llvm::StoreInst &store) {
  llvm::MDNode *scopes = store.getMetadata(llvm::LLVMContext::MD_alias_scope);
  if (!scopes)
    return false;
  return llvm::any_of(scopes->operands(), [](const llvm::MDOperand &operand) {
    auto *scope = llvm::dyn_cast<llvm::MDNode>(operand);
    if (!scope || scope->getNumOperands() < 3)
      return false;
    auto *name = llvm::dyn_cast<llvm::MDString>(scope->getOperand(2));
    return name && name->getString().ends_with(kiln::kStreamingScopeSuffix);
  });
}

/// Makes non-temporal the vector stores of at least 16 bytes to streaming
/// buffers (kiln-streaming-stores) whose address is known aligned to their
/// size -- x86's non-temporal vector stores fault on a misaligned address,
/// and LLVM splits a misaligned one into scalar stores -- and ends `f`
/// with `sfence` when it has any: non-temporal stores are weakly ordered,
/// and the thread that reads the buffer next must see them. A non-temporal
/// store writes its line without reading it first: an elementwise kernel
/// over 16M f32 moves 128 MB instead of 192 (1 thread: 3.30 -> 2.80 ms; see
/// docs/lowering.md). Runs after LLVM's optimizations, on the vector loops
/// its vectorizer made: the alignment comes from kiln-streaming-stores'
/// assumption and the loop's aligned start and step.
static void useStreamingStores(llvm::Function &f) {
  const llvm::DataLayout &layout = f.getDataLayout();
  llvm::SmallVector<llvm::StoreInst *> candidates;
  for (llvm::Instruction &inst : llvm::instructions(f))
    if (auto *store = llvm::dyn_cast<llvm::StoreInst>(&inst))
      if (store->getValueOperand()->getType()->isVectorTy() &&
          isStreamingStore(*store))
        candidates.push_back(store);
  if (candidates.empty())
    return; // most functions: no analyses built
  llvm::AssumptionCache assumptions(f);
  llvm::DominatorTree dominators(f);
  llvm::LLVMContext &ctx = f.getContext();
  bool any = false;
  for (llvm::StoreInst *store : candidates) {
    uint64_t bytes =
        layout.getTypeStoreSize(store->getValueOperand()->getType());
    if (bytes < 16 || !llvm::isPowerOf2_64(bytes))
      continue;
    llvm::Align known = llvm::getKnownAlignment(
        store->getPointerOperand(), layout, store, &assumptions, &dominators);
    if (known.value() < bytes)
      continue;
    store->setAlignment(known);
    store->setMetadata(
        llvm::LLVMContext::MD_nontemporal,
        llvm::MDNode::get(
            ctx, llvm::ConstantAsMetadata::get(
                     llvm::ConstantInt::get(llvm::Type::getInt32Ty(ctx), 1))));
    any = true;
  }
  if (!any)
    return;
  for (llvm::BasicBlock &block : f)
    if (auto *ret = llvm::dyn_cast<llvm::ReturnInst>(block.getTerminator()))
      llvm::IRBuilder<>(ret).CreateIntrinsic(llvm::Intrinsic::x86_sse_sfence,
                                             {});
}

llvm::Expected<std::unique_ptr<llvm::Module>>
kiln::runtime::translateAndOptimize(mlir::ModuleOp module,
                                    llvm::LLVMContext &context,
                                    llvm::TargetMachine &tm) {
  std::unique_ptr<llvm::Module> llvmModule =
      mlir::translateModuleToLLVMIR(module, context, "kiln");
  if (!llvmModule)
    return makeError("translation to LLVM IR failed");
  llvmModule->setDataLayout(tm.createDataLayout());
  llvmModule->setTargetTriple(tm.getTargetTriple());
  addPackedEntryPoints(*llvmModule);
  addInitFunctions(*llvmModule);
  // Identical kernels (the same op on the same shapes: the layers of a
  // deep network) become one function before the optimizer sees them, so
  // each is optimized and compiled once: 100 layers of matmul, relu and
  // softmax compiled in 20.8 s, most of it LLVM optimizing 400 copies of
  // 4 kernels.
  llvm::MergeFunctionsPass::runOnModule(*llvmModule);
  bool splits512BitVectors = splitsWideVectors(tm);
  bool wideRegisterFile = hasWideRegisterFile(tm);
  for (llvm::Function &f : *llvmModule) {
    if (f.isDeclaration())
      continue;
    if (splits512BitVectors && isMemoryBound(f)) {
      f.addFnAttr("prefer-vector-width", "256");
      f.addFnAttr("min-legal-vector-width", "256");
    }
    interleaveLongLoops(f, wideRegisterFile);
  }
  auto optimize = mlir::makeOptimizingTransformer(3, 0, &tm);
  if (llvm::Error error = optimize(llvmModule.get()))
    return std::move(error);
  if (tm.getTargetTriple().isX86())
    for (llvm::Function &f : *llvmModule)
      if (!f.isDeclaration())
        useStreamingStores(f);
  return llvmModule;
}

llvm::Expected<std::string>
kiln::runtime::emitMachineCode(llvm::Module &module, llvm::TargetMachine &tm,
                               llvm::CodeGenFileType type) {
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    return makeError("the target cannot emit this file type");
  pm.run(module);
  return std::string(buffer.begin(), buffer.end());
}

//===----------------------------------------------------------------------===//
// Compile cache
//===----------------------------------------------------------------------===//

namespace {

constexpr llvm::StringLiteral kCacheMagic = "KILN-CACHE-3\n";

/// Identifies this compiler build: the identity of the running executable
/// (device, inode, size, modification time), so that any rebuild of Kiln
/// invalidates entries it may compile differently. Cheaper than hashing the
/// binary (which took most of a cache hit's time).
const std::string &compilerBuildId() {
  static std::string id = [] {
    std::string text = "llvm-" LLVM_VERSION_STRING;
    llvm::sys::fs::file_status status;
    if (!llvm::sys::fs::status("/proc/self/exe", status)) {
      text += "-" + std::to_string(status.getUniqueID().getDevice()) + ":" +
              std::to_string(status.getUniqueID().getFile()) + ":" +
              std::to_string(status.getSize()) + ":" +
              std::to_string(
                  status.getLastModificationTime().time_since_epoch().count());
    }
    return text;
  }();
  return id;
}

/// The cache directory, or empty when the disk cache is disabled.
std::string cacheDirectory() {
  if (std::optional<std::string> dir =
          llvm::sys::Process::GetEnv("KILN_CACHE_DIR")) {
    if (*dir == "off" || dir->empty())
      return "";
    return *dir;
  }
  llvm::SmallString<256> path;
  if (std::optional<std::string> xdg =
          llvm::sys::Process::GetEnv("XDG_CACHE_HOME");
      xdg && !xdg->empty()) {
    path = *xdg;
  } else if (std::optional<std::string> home =
                 llvm::sys::Process::GetEnv("HOME");
             home && !home->empty()) {
    path = *home;
    llvm::sys::path::append(path, ".cache");
  } else {
    return "";
  }
  llvm::sys::path::append(path, "kiln");
  return std::string(path);
}

/// The disk level's bound when KILN_CACHE_POLICY is not set, in LLVM's
/// cache-policy syntax (that of lld's --thinlto-cache-policy): look at most
/// every 20 minutes, drop entries unused for 30 days (every rebuild of Kiln
/// leaves its entries unused), keep at most 1 GiB (and, LLVM's default, at
/// most 75% of the free disk space), least recently used dropped first.
constexpr llvm::StringLiteral kDefaultCachePolicy =
    "prune_interval=20m:prune_after=720h:cache_size_bytes=1g";

llvm::Expected<llvm::CachePruningPolicy> cachePolicy() {
  std::optional<std::string> text =
      llvm::sys::Process::GetEnv("KILN_CACHE_POLICY");
  auto policy = llvm::parseCachePruningPolicy(
      text ? llvm::StringRef(*text) : llvm::StringRef(kDefaultCachePolicy));
  if (!policy)
    return makeError(
        "KILN_CACHE_POLICY: " + llvm::toString(policy.takeError()) +
        " (expected LLVM's cache policy syntax, e.g. "
        "prune_after=24h:cache_size_bytes=512m)");
  return policy;
}

/// An entry's file. LLVM's pruneCache only ever removes files named
/// llvmcache-*, so the entries carry that prefix.
llvm::SmallString<256> entryPath(llvm::StringRef dir, llvm::StringRef key) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, "llvmcache-" + key);
  return path;
}

/// Serialized entry: magic, kernels, error sites and profile sites (each a
/// count, then one per line), the number of objects, then each object's
/// size and bytes.
std::string serialize(const CompiledCode &code) {
  std::string out(kCacheMagic);
  out += std::to_string(code.kernels) + "\n";
  for (const std::vector<std::string> *list :
       {&code.errorSites, &code.profileSites}) {
    out += std::to_string(list->size()) + "\n";
    for (const std::string &site : *list)
      out += site + "\n";
  }
  out += std::to_string(code.objects.size()) + "\n";
  for (const std::string &object : code.objects) {
    out += std::to_string(object.size()) + "\n";
    out += object;
  }
  return out;
}

std::optional<CompiledCode> deserialize(llvm::StringRef data) {
  if (!data.consume_front(kCacheMagic))
    return std::nullopt;
  auto line = [&](llvm::StringRef &out) {
    auto [head, tail] = data.split('\n');
    if (head.size() == data.size())
      return false;
    out = head;
    data = tail;
    return true;
  };
  CompiledCode code;
  llvm::StringRef text;
  size_t size;
  if (!line(text) || text.getAsInteger(10, code.kernels))
    return std::nullopt;
  for (std::vector<std::string> *list :
       {&code.errorSites, &code.profileSites}) {
    size_t sites;
    if (!line(text) || text.getAsInteger(10, sites))
      return std::nullopt;
    for (size_t i = 0; i < sites; ++i) {
      if (!line(text))
        return std::nullopt;
      list->push_back(text.str());
    }
  }
  size_t objects;
  if (!line(text) || text.getAsInteger(10, objects) || objects == 0)
    return std::nullopt;
  for (size_t i = 0; i < objects; ++i) {
    if (!line(text) || text.getAsInteger(10, size) || data.size() < size)
      return std::nullopt;
    code.objects.push_back(data.take_front(size).str());
    data = data.drop_front(size);
  }
  if (!data.empty())
    return std::nullopt;
  return code;
}

} // namespace

CompileCache &CompileCache::get() {
  static CompileCache cache;
  return cache;
}

std::string CompileCache::key(mlir::ModuleOp module, llvm::StringRef entry,
                              const CompileOptions &options,
                              const llvm::TargetMachine &tm) const {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os,
                mlir::OpPrintingFlags().enableDebugInfo().printGenericOpForm());
  os << "\nentry=" << entry << "\npipeline=" << options.pipelineText()
     << "\ntriple=" << tm.getTargetTriple().str()
     << "\ncpu=" << tm.getTargetCPU()
     << "\nfeatures=" << tm.getTargetFeatureString()
     << "\nbuild=" << compilerBuildId();
  llvm::SHA256 sha;
  sha.update(text);
  return llvm::toHex(sha.final(), /*LowerCase=*/true);
}

/// The memory level: the most recently used entries' object code, up to
/// kMemoryCacheBytes in all (a long-running process that compiles ever new
/// graphs stays bounded; the disk level keeps every entry).
constexpr size_t kMemoryCacheBytes = size_t(256) << 20;
static std::mutex memoryMutex;
static kiln::LruCache<CompiledCode> &memoryCache() {
  static kiln::LruCache<CompiledCode> cache(
      kMemoryCacheBytes, [](const CompiledCode &code) {
        size_t bytes = 0;
        for (const std::string &object : code.objects)
          bytes += object.size();
        for (const std::vector<std::string> *sites :
             {&code.errorSites, &code.profileSites})
          for (const std::string &site : *sites)
            bytes += site.size();
        return bytes;
      });
  return cache;
}

std::optional<CompiledCode> CompileCache::lookup(const std::string &key) {
  {
    std::lock_guard<std::mutex> lock(memoryMutex);
    if (CompiledCode *code = memoryCache().find(key))
      return *code;
  }
  std::string dir = cacheDirectory();
  if (dir.empty())
    return std::nullopt;
  llvm::SmallString<256> path = entryPath(dir, key);
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return std::nullopt;
  // A damaged entry is ignored (and overwritten by the next store).
  std::optional<CompiledCode> code = deserialize((*buffer)->getBuffer());
  if (code) {
    // Pruning drops the least recently accessed entries first: a hit marks
    // its entry used now (file systems mounted noatime or relatime would
    // not, or once a day).
    int fd;
    if (!llvm::sys::fs::openFileForRead(path, fd)) {
      (void)llvm::sys::fs::setLastAccessAndModificationTime(
          fd, std::chrono::system_clock::now());
      llvm::sys::Process::SafelyCloseFileDescriptor(fd);
    }
    std::lock_guard<std::mutex> lock(memoryMutex);
    memoryCache().insert(key, *code);
  }
  return code;
}

void CompileCache::store(const std::string &key, const CompiledCode &code) {
  {
    std::lock_guard<std::mutex> lock(memoryMutex);
    memoryCache().insert(key, code);
  }
  std::string dir = cacheDirectory();
  if (dir.empty() || llvm::sys::fs::create_directories(dir))
    return; // the disk cache is an optimization: failures are not errors
  llvm::SmallString<256> path = entryPath(dir, key), temp;
  int fd;
  if (llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%%%", fd, temp))
    return;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << serialize(code);
    if (os.has_error()) {
      os.clear_error();
      llvm::sys::fs::remove(temp);
      return;
    }
  }
  // Atomic publish: readers see either no entry or a complete one.
  if (llvm::sys::fs::rename(temp, path))
    llvm::sys::fs::remove(temp);
  // Bound the directory (a no-op until the policy's interval has passed
  // since the last pruning, by the llvmcache.timestamp file's age). The
  // policy was checked before compiling (checkPolicy).
  if (llvm::Expected<llvm::CachePruningPolicy> policy = cachePolicy())
    llvm::pruneCache(dir, *policy);
  else
    llvm::consumeError(policy.takeError());
}

llvm::Error CompileCache::checkPolicy() const {
  if (cacheDirectory().empty())
    return llvm::Error::success();
  return cachePolicy().takeError();
}
