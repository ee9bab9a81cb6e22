//===- Executable.cpp - JIT-compiled kiln functions -----------------------===//

#include "kiln/Runtime/Executable.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Runtime/Kernels.h"

#include "kiln/Runtime/CpuCompiler.h"
#include "kiln/Runtime/Cuda.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"

#include <mutex>

using namespace kiln::runtime;
using namespace mlir;

char IndexErrorInfo::ID = 0;
char DeviceErrorInfo::ID = 0;

std::string TensorSpec::typeString() const {
  return tensorTypeString(dtype, shape);
}

static llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The spec of a function argument or result type, if Kiln can pass it.
static std::optional<TensorSpec> specOf(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return std::nullopt;
  Type element = tensor.getElementType();
  TensorSpec spec;
  if (element.isF32())
    spec.dtype = DType::F32;
  else if (element.isF64())
    spec.dtype = DType::F64;
  else if (element.isInteger(64))
    spec.dtype = DType::I64;
  else if (element.isInteger(32))
    spec.dtype = DType::I32;
  else if (element.isInteger(1))
    spec.dtype = DType::Bool;
  else
    return std::nullopt;
  spec.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
  return spec;
}

Executable::~Executable() {
  if (fini)
    fini();
}

llvm::Expected<std::unique_ptr<Executable>>
Executable::compile(ModuleOp module, llvm::StringRef entry,
                    const CompileOptions &options) {
  auto func = module.lookupSymbol<func::FuncOp>(entry);
  if (!func || func.isExternal())
    return makeError("no function @" + entry + " to run");
  std::unique_ptr<Executable> exe(new Executable());
  exe->entry = entry.str();
  exe->target = options.target;
  if (options.target == Target::Cuda)
    if (llvm::Error error = cuda::initialize())
      return llvm::make_error<DeviceErrorInfo>(
          "--target=cuda: " + llvm::toString(std::move(error)));
  auto collect = [&](TypeRange types, llvm::StringRef what,
                     std::vector<TensorSpec> &specs) -> llvm::Error {
    for (auto [index, type] : llvm::enumerate(types)) {
      std::optional<TensorSpec> spec = specOf(type);
      if (!spec)
        return makeError(what + " #" + llvm::Twine(index) + " of @" + entry +
                         " has unsupported type (expected a static tensor "
                         "of f32, f64, i64, i32 or i1)");
      specs.push_back(*spec);
    }
    return llvm::Error::success();
  };
  if (llvm::Error error =
          collect(func.getArgumentTypes(), "argument", exe->inputs))
    return std::move(error);
  if (llvm::Error error =
          collect(func.getResultTypes(), "result", exe->outputs))
    return std::move(error);

  auto tm = createHostTargetMachine();
  if (!tm)
    return tm.takeError();
  CompileCache &cache = CompileCache::get();
  if (llvm::Error error = cache.checkPolicy())
    return std::move(error);
  llvm::Expected<unsigned> threads = compileThreads();
  if (!threads)
    return threads.takeError();
  std::string key = cache.key(module, entry, options, **tm);
  // With remarks on (kiln::enableRemarks), compile afresh so that they
  // are reported.
  std::optional<CompiledCode> code;
  if (!module->getContext()->getRemarkEngine())
    code = cache.lookup(key);
  exe->cacheHit = code.has_value();
  if (!code) {
    OwningOpRef<ModuleOp> lowered(cast<ModuleOp>(module->clone()));
    // Compile only the entry (and what it calls): other public functions
    // become private, so they are dropped when unused.
    for (auto other : lowered->getOps<func::FuncOp>())
      if (other.getSymName() != entry && other.isPublic() &&
          !other.isExternal())
        other.setPrivate();
    if (llvm::Error error = lowerToLLVMDialect(*lowered, options))
      return makeError("@" + entry + ": " + llvm::toString(std::move(error)));
    CompiledCode fresh;
    // The sites the lowering listed in module attributes (string arrays).
    auto readSites = [&](llvm::StringRef name, std::vector<std::string> &into) {
      if (auto sites = (*lowered)->getAttrOfType<ArrayAttr>(name))
        for (auto site : sites.getAsValueRange<StringAttr>())
          into.push_back(site.str());
    };
    readSites(kiln::kErrorSitesAttrName, fresh.errorSites);
    readSites(kiln::kProfileSitesAttrName, fresh.profileSites);
    if (auto count =
            (*lowered)->getAttrOfType<IntegerAttr>(kiln::kKernelCountAttrName))
      fresh.kernels = count.getInt();
    llvm::LLVMContext llvmContext;
    auto llvmModule = translateAndOptimize(*lowered, llvmContext, **tm);
    if (!llvmModule)
      return llvmModule.takeError();
    auto objects = emitObjects(**llvmModule, **tm, *threads);
    if (!objects)
      return objects.takeError();
    fresh.objects = std::move(*objects);
    cache.store(key, fresh);
    code = std::move(fresh);
  }
  exe->errorSites = code->errorSites;
  exe->profileSites = code->profileSites;
  exe->kernelCount = code->kernels;

  // Link the object into a fresh JIT with the process's symbols (libc,
  // libm) and the Kiln runtime kernels.
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return jtmb.takeError();
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  jtmb->setCodeModel(llvm::CodeModel::Small);
  auto jit =
      llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*jtmb).create();
  if (!jit)
    return jit.takeError();
  llvm::orc::JITDylib &main = (*jit)->getMainJITDylib();
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!process)
    return process.takeError();
  main.addGenerator(std::move(*process));
  llvm::orc::SymbolMap symbols;
  llvm::orc::MangleAndInterner mangle(main.getExecutionSession(),
                                      (*jit)->getDataLayout());
  for (auto [name, address] :
       options.target == Target::Cuda ? cuda::symbols() : kernelSymbols())
    symbols[mangle(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
  if (llvm::Error error = main.define(llvm::orc::absoluteSymbols(symbols)))
    return std::move(error);
  for (const std::string &object : code->objects)
    if (llvm::Error error = (*jit)->addObjectFile(
            llvm::MemoryBuffer::getMemBufferCopy(object, "kiln-object")))
      return std::move(error);
  // GPU host code loads its kernel modules in what were global
  // constructors (translateAndOptimize gathers them in _kiln_init).
  auto init = (*jit)->lookup("_kiln_init");
  if (!init)
    return init.takeError();
  auto fini = (*jit)->lookup("_kiln_fini");
  if (!fini)
    return fini.takeError();
  init->toPtr<void (*)()>()();
  exe->fini = fini->toPtr<void (*)()>();
  if (options.target == Target::Cuda)
    if (llvm::Error error = cuda::synchronize())
      return llvm::make_error<DeviceErrorInfo>(
          llvm::toString(std::move(error)));
  auto address = (*jit)->lookup(("_kiln_packed_" + entry).str());
  if (!address)
    return address.takeError();
  using PackedEntry = void (*)(void **);
  exe->packedEntry = address->toPtr<PackedEntry>();
  exe->jit = std::move(*jit);
  return exe;
}

/// The message of a runtime error at `site`: an out-of-range index, or with
/// a negative size the error the site's text names, the reported value in
/// place of its "{index}" (kiln.report_index_error).
static std::string indexErrorMessage(const IndexError &failure,
                                     const std::vector<std::string> &sites) {
  bool known =
      failure.site >= 0 && failure.site < static_cast<int64_t>(sites.size());
  if (failure.size < 0) {
    if (!known)
      return "a runtime check failed";
    // The site's text is the message, the value in place of "{index}".
    std::string text = sites[failure.site];
    size_t at = text.find("{index}");
    if (at != std::string::npos)
      text.replace(at, 7, std::to_string(failure.index));
    return text;
  }
  std::string where = known ? sites[failure.site] : "an indexing op";
  return where + ": index " + std::to_string(failure.index) +
         " is out of bounds for size " + std::to_string(failure.size);
}

/// One memref descriptor {allocated, aligned, offset, sizes, strides} of a
/// contiguous buffer.
static std::vector<int64_t> describe(const void *data,
                                     const std::vector<int64_t> &shape) {
  std::vector<int64_t> desc(3 + 2 * shape.size());
  desc[0] = desc[1] = reinterpret_cast<int64_t>(data);
  desc[2] = 0;
  int64_t stride = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    desc[3 + d] = shape[d];
    desc[3 + shape.size() + d] = stride;
    stride *= shape[d];
  }
  return desc;
}

llvm::Error Executable::runOnDevice(llvm::ArrayRef<const HostTensor *> args,
                                    std::vector<HostTensor> &results) {
  if (llvm::Error error = cuda::initialize())
    return llvm::make_error<DeviceErrorInfo>(llvm::toString(std::move(error)));
  // Arguments and results live in device memory for the run.
  std::vector<void *> buffers;
  std::vector<std::vector<int64_t>> descriptors;
  for (const HostTensor *arg : args) {
    void *buffer = cuda::allocate(arg->getByteSize());
    cuda::copyToDevice(buffer, arg->data(), arg->getByteSize());
    buffers.push_back(buffer);
    descriptors.push_back(describe(buffer, arg->getShape()));
  }
  for (HostTensor &result : results) {
    void *buffer = cuda::allocate(result.getByteSize());
    buffers.push_back(buffer);
    descriptors.push_back(describe(buffer, result.getShape()));
  }
  std::vector<void *> pointers;
  for (auto &desc : descriptors)
    pointers.push_back(desc.data());
  cuda::resetIndexError();
  cuda::Timer timer;
  timer.start();
  packedEntry(pointers.data());
  timer.stop();
  for (auto [index, result] : llvm::enumerate(results))
    cuda::copyToHost(result.data(), buffers[args.size() + index],
                     result.getByteSize());
  for (void *buffer : buffers)
    cuda::release(buffer);
  if (llvm::Error error = cuda::synchronize())
    return llvm::make_error<DeviceErrorInfo>(
        "@" + entry + " on the GPU: " + llvm::toString(std::move(error)));
  lastDeviceMs = timer.elapsedMs();
  if (std::optional<IndexError> failure = cuda::takeIndexError())
    return llvm::make_error<IndexErrorInfo>(
        indexErrorMessage(*failure, errorSites));
  return llvm::Error::success();
}

llvm::Error Executable::run(llvm::ArrayRef<const HostTensor *> args,
                            std::vector<HostTensor> &results) {
  useNumThreadsOnThisThread();
  // Reuse result buffers of the right types (repeated runs): fresh memory
  // would page-fault on first touch every time.
  // Never buffers an argument lies in: the compiled code assumes that
  // out-parameters overlap nothing (kiln-alias-scopes).
  bool reusable = results.size() == outputs.size();
  for (size_t i = 0; reusable && i < outputs.size(); ++i) {
    reusable = results[i].getDType() == outputs[i].dtype &&
               results[i].getShape() == outputs[i].shape;
    auto *begin = static_cast<const char *>(results[i].data());
    const char *end = begin + results[i].getByteSize();
    for (const HostTensor *arg : args) {
      auto *from = static_cast<const char *>(arg->data());
      reusable &= !(from < end && begin < from + arg->getByteSize());
    }
  }
  if (!reusable) {
    results.clear();
    for (const TensorSpec &spec : outputs)
      results.emplace_back(spec.dtype, spec.shape);
    for (auto [index, result] : llvm::enumerate(results))
      if (!result.data()) {
        std::string message = "out of memory: result #" +
                              std::to_string(index) + " of @" + entry + " (" +
                              outputs[index].typeString() + ") needs " +
                              std::to_string(result.getByteSize()) + " bytes";
        results.clear();
        return makeError(message);
      }
  }

  if (target == Target::Cuda)
    return runOnDevice(args, results);

  // One memref descriptor per argument and out-parameter.
  std::vector<std::vector<int64_t>> descriptors;
  for (const HostTensor *arg : args)
    descriptors.push_back(describe(arg->data(), arg->getShape()));
  for (HostTensor &result : results)
    descriptors.push_back(describe(result.data(), result.getShape()));
  std::vector<void *> pointers;
  for (auto &desc : descriptors)
    pointers.push_back(desc.data());

  resetErrors();
  if (std::optional<AllocationFailure> failure =
          runCatchingOutOfMemory(packedEntry, pointers.data()))
    return makeError("out of memory: @" + entry + " could not allocate " +
                     std::to_string(failure->bytes) + " bytes for " +
                     failure->what);
  if (std::optional<IndexError> failure = firstError())
    return llvm::make_error<IndexErrorInfo>(
        indexErrorMessage(*failure, errorSites));
  return llvm::Error::success();
}
