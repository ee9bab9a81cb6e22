//===- Executable.cpp - JIT-compiled kiln functions -----------------------===//

#include "kiln/Runtime/Executable.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Runtime/Kernels.h"

#include "kiln/Runtime/CpuCompiler.h"
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

Executable::~Executable() = default;

llvm::Expected<std::unique_ptr<Executable>>
Executable::compile(ModuleOp module, llvm::StringRef entry,
                    const CpuPipelineOptions &options) {
  auto func = module.lookupSymbol<func::FuncOp>(entry);
  if (!func || func.isExternal())
    return makeError("no function @" + entry + " to run");
  std::unique_ptr<Executable> exe(new Executable());
  exe->entry = entry.str();
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
  std::string key = cache.key(module, entry, options, **tm);
  std::optional<CompiledCode> code = cache.lookup(key);
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
    if (auto sites =
            (*lowered)->getAttrOfType<ArrayAttr>(kiln::kErrorSitesAttrName))
      for (auto site : sites.getAsValueRange<StringAttr>())
        fresh.errorSites.push_back(site.str());
    if (auto count = (*lowered)->getAttrOfType<IntegerAttr>("kiln.kernels"))
      fresh.kernels = count.getInt();
    llvm::LLVMContext llvmContext;
    auto llvmModule = translateAndOptimize(*lowered, llvmContext, **tm);
    if (!llvmModule)
      return llvmModule.takeError();
    auto object =
        emitMachineCode(**llvmModule, **tm, llvm::CodeGenFileType::ObjectFile);
    if (!object)
      return object.takeError();
    fresh.object = std::move(*object);
    cache.store(key, fresh);
    code = std::move(fresh);
  }
  exe->errorSites = code->errorSites;
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
  for (auto [name, address] : kernelSymbols())
    symbols[mangle(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
  if (llvm::Error error = main.define(llvm::orc::absoluteSymbols(symbols)))
    return std::move(error);
  if (llvm::Error error = (*jit)->addObjectFile(
          llvm::MemoryBuffer::getMemBufferCopy(code->object, "kiln-object")))
    return std::move(error);
  auto address = (*jit)->lookup(("_kiln_packed_" + entry).str());
  if (!address)
    return address.takeError();
  using PackedEntry = void (*)(void **);
  exe->packedEntry = address->toPtr<PackedEntry>();
  exe->jit = std::move(*jit);
  return exe;
}

llvm::Error Executable::run(llvm::ArrayRef<const HostTensor *> args,
                            std::vector<HostTensor> &results) {
  useNumThreadsOnThisThread();
  // Reuse result buffers of the right types (repeated runs): fresh memory
  // would page-fault on first touch every time.
  bool reusable = results.size() == outputs.size();
  for (size_t i = 0; reusable && i < outputs.size(); ++i)
    reusable = results[i].getDType() == outputs[i].dtype &&
               results[i].getShape() == outputs[i].shape;
  if (!reusable) {
    results.clear();
    for (const TensorSpec &spec : outputs)
      results.emplace_back(spec.dtype, spec.shape);
  }

  // One memref descriptor per argument and out-parameter:
  // {allocated, aligned, offset, sizes[rank], strides[rank]}.
  std::vector<std::vector<int64_t>> descriptors;
  auto describe = [&](const void *data, const std::vector<int64_t> &shape) {
    std::vector<int64_t> desc(3 + 2 * shape.size());
    desc[0] = desc[1] = reinterpret_cast<int64_t>(data);
    desc[2] = 0;
    int64_t stride = 1;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      desc[3 + d] = shape[d];
      desc[3 + shape.size() + d] = stride;
      stride *= shape[d];
    }
    descriptors.push_back(std::move(desc));
  };
  for (const HostTensor *arg : args)
    describe(arg->data(), arg->getShape());
  for (HostTensor &result : results)
    describe(result.data(), result.getShape());
  std::vector<void *> pointers;
  for (auto &desc : descriptors)
    pointers.push_back(desc.data());

  resetErrors();
  packedEntry(pointers.data());
  if (std::optional<IndexError> failure = firstError()) {
    std::string where = failure->site < static_cast<int64_t>(errorSites.size())
                            ? errorSites[failure->site]
                            : "an indexing op";
    return llvm::make_error<IndexErrorInfo>(
        where + ": index " + std::to_string(failure->index) +
        " is out of bounds for size " + std::to_string(failure->size));
  }
  return llvm::Error::success();
}
