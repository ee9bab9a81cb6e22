//===- RunMain.cpp - kiln-run: compile a kiln function and run it ---------===//
//
// See tools.md: inputs from .npy files, results to .npy files and/or stdout
// in PyTorch's notation. Exit codes: 0 success; 1 usage error, unreadable or
// malformed input, verifier failure, inputs that do not match the
// signature, unsupported cases; 2 runtime failure (index out of range, no
// GPU for --target=cuda).
//
//===----------------------------------------------------------------------===//

#include "../ToolMains.h"

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Pipelines/ToolOptions.h"
#include "kiln/Runtime/Cuda.h"
#include "kiln/Runtime/Executable.h"
#include "kiln/Runtime/HostTensor.h"
#include "kiln/Runtime/Kernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <thread>

using namespace mlir;
using namespace kiln::runtime;
namespace {

/// Command-line options of tools.md.
struct Options {
  std::string inputFile;
  std::string entry;
  std::vector<std::string> inputs;
  std::string outputDir;
  bool print = false;
  std::string target = "cpu";
  int threads = 0;
  int repeat = 0;
  bool stats = false;
  bool noFuse = false;
  bool remarks = false;
  bool profile = false;
  bool sortedScatters = false;
  bool gpuVectorize = false;
  int vectorBits = 0; // 0: the host's
};

constexpr const char *usage =
    "usage: kiln-run FILE.mlir|- [--entry=NAME] [--input=A.npy ...]\n"
    "                [--output-dir=DIR] [--print] [--target=cpu|cuda]\n"
    "                [--threads=N] [--repeat=N] [--stats] [--no-fuse]\n"
    "                [--remarks] [--profile] [--sorted-scatters]\n"
    "                [--gpu-vectorize] [--vector-bits=128|256|512]\n";

/// Parses `args`; returns an error message on bad usage.
std::optional<std::string> parseOptions(llvm::ArrayRef<const char *> args,
                                        Options &options, bool &help) {
  kiln::ToolOptions parser;
  parser.flag("print", options.print);
  parser.flag("stats", options.stats);
  parser.flag("no-fuse", options.noFuse);
  parser.flag("remarks", options.remarks);
  parser.flag("profile", options.profile);
  parser.flag("sorted-scatters", options.sortedScatters);
  parser.flag("gpu-vectorize", options.gpuVectorize);
  parser.string("entry", options.entry);
  parser.list("input", options.inputs);
  parser.string("output-dir", options.outputDir);
  parser.string("target", options.target);
  parser.integer("threads", 1, options.threads, kiln::runtime::kMaxThreads);
  parser.integer("repeat", 0, options.repeat);
  parser.integer("vector-bits", 128, options.vectorBits, 512);
  return parser.parse(args, options.inputFile, help);
}

} // namespace

static int fail(int code, const llvm::Twine &message) {
  llvm::errs() << "kiln-run: error: " << message << "\n";
  return code;
}

using Clock = std::chrono::steady_clock;

/// --profile: each timed kernel's mean time per run, the slowest first,
/// with its location and source line (kiln-profile-kernels).
static void printProfile(const Executable &exe, const kiln::SourceFile &source,
                         const std::vector<double> &times, int repeat) {
  const std::vector<std::string> &sites = exe.getProfileSites();
  std::vector<kiln::runtime::ProfileCount> counts =
      kiln::runtime::profileCounts();
  counts.resize(sites.size());
  int runs = repeat > 0 ? repeat : 1;
  double runMs = 0;
  for (size_t i = times.size() - runs; i < times.size(); ++i)
    runMs += times[i] / runs;
  double kernelMs = 0;
  for (const kiln::runtime::ProfileCount &count : counts)
    kernelMs += count.ms / runs;
  std::vector<size_t> order(sites.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  // The slowest first; equal times in site order.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return counts[a].ms != counts[b].ms ? counts[a].ms > counts[b].ms : a < b;
  });
  llvm::errs() << llvm::formatv(
      "kiln-profile: {0} timed kernel(s), mean of {1} run(s): {2:F3} ms in "
      "kernels of {3:F3} ms per run\n",
      sites.size(), runs, kernelMs, runMs);
  llvm::errs() << llvm::formatv("{0,10} {1,6}  {2}\n", "ms", "%", "where");
  for (size_t i : order) {
    auto [where, what] = llvm::StringRef(sites[i]).split('\t');
    double ms = counts[i].ms / runs;
    std::string line;
    // "FILE:LINE:COL": the source line, when it is the input's.
    auto [fileAndLine, column] = where.rsplit(':');
    auto [file, lineText] = fileAndLine.rsplit(':');
    unsigned lineNumber = 0;
    if (!lineText.getAsInteger(10, lineNumber))
      if (std::optional<std::string> text = source.getLine(file, lineNumber))
        line = llvm::StringRef(*text).trim().str();
    llvm::errs() << llvm::formatv("{0,10:F3} {1,5:F1}%  {2}  {3}{4}{5}\n", ms,
                                  runMs > 0 ? 100 * ms / runMs : 0.0, where,
                                  what, line.empty() ? "" : "  | ", line);
  }
}
static double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

int kiln::tools::runMain(llvm::ArrayRef<const char *> commandLine) {
  Options options;
  bool help = false;
  if (std::optional<std::string> error =
          parseOptions(commandLine, options, help)) {
    llvm::errs() << usage;
    return fail(1, *error);
  }
  if (help) {
    llvm::outs() << usage;
    return 0;
  }
  const std::string &target = options.target;
  const std::string &entryName = options.entry;
  const std::string &inputFile = options.inputFile;
  const std::vector<std::string> &inputs = options.inputs;
  const std::string &outputDir = options.outputDir;
  int threads = options.threads, repeat = options.repeat;

  if (target != "cpu" && target != "cuda")
    return fail(1, "unknown --target '" + target + "' (expected cpu or cuda)");
  if (std::optional<std::string> error = kiln::checkVectorBitsOption(
          options.vectorBits,
          target == "cpu" ? kiln::Target::Cpu : kiln::Target::Cuda))
    return fail(1, *error);
  if (options.profile && target != "cpu")
    return fail(1, "--profile times CPU kernels; with --target=cuda, "
                   "--stats reports the device time");
  setNumThreads(threads > 0
                    ? threads
                    : std::max(1u, std::thread::hardware_concurrency()));

  std::unique_ptr<MLIRContext> context = kiln::createToolContext();

  std::string errorMessage;
  auto source = kiln::SourceFile::load(inputFile, *context, errorMessage);
  if (!source)
    return fail(1, errorMessage);
  ModuleOp module = source->getModule();
  if (!module)
    return 1; // the parser or verifier reported the error

  // The entry: --entry, or the module's only public function.
  func::FuncOp entryFunction = source->findEntry(entryName, errorMessage);
  if (!entryFunction)
    return fail(1, errorMessage);
  std::string entry = entryFunction.getSymName().str();

  // --remarks: what the compiler did and why, on stderr (the compile cache
  // is bypassed so that every run explains itself).
  if (options.remarks && failed(kiln::enableRemarksOnStderr(*context)))
    return fail(1, "--remarks: the remark engine could not be set up");

  auto compileStart = Clock::now();
  kiln::CompileOptions compileOptions;
  compileOptions.fuse = !options.noFuse;
  compileOptions.sortedScatters = options.sortedScatters;
  compileOptions.gpuVectorize = options.gpuVectorize;
  compileOptions.profile = options.profile;
  compileOptions.vectorBits = options.vectorBits;
  // Compile for the GPU that runs the code.
  if (target == "cuda")
    if (llvm::Error error = cuda::targetDevice(compileOptions))
      return fail(2, "--target=cuda: " + llvm::toString(std::move(error)));
  auto executable = Executable::compile(module, entry, compileOptions);
  if (!executable) {
    llvm::Error error = executable.takeError();
    int code = error.isA<DeviceErrorInfo>() ? 2 : 1;
    return fail(code, llvm::toString(std::move(error)));
  }
  double compileMs = msSince(compileStart);
  Executable &exe = **executable;

  // Inputs must match the signature exactly.
  const std::vector<TensorSpec> &specs = exe.getInputs();
  if (inputs.size() != specs.size())
    return fail(1, "@" + entry + " takes " + llvm::Twine(specs.size()) +
                       " argument(s) but " + llvm::Twine(inputs.size()) +
                       " --input file(s) were given");
  std::vector<HostTensor> args;
  for (auto [index, path] : llvm::enumerate(inputs)) {
    // Inputs under 4 MiB are read where the file is mapped (readNpy): the
    // run never writes its arguments.
    auto tensor = readNpy(path, /*inPlace=*/true);
    if (!tensor)
      return fail(1, llvm::toString(tensor.takeError()));
    const TensorSpec &spec = specs[index];
    if (tensor->getDType() != spec.dtype || tensor->getShape() != spec.shape)
      return fail(1, "argument #" + llvm::Twine(index) + " of @" + entry +
                         " expects " + spec.typeString() + " but " + path +
                         " holds " + tensor->typeString());
    args.push_back(std::move(*tensor));
  }
  std::vector<const HostTensor *> argPointers;
  for (const HostTensor &arg : args)
    argPointers.push_back(&arg);

  std::vector<HostTensor> results;
  std::vector<double> times, deviceTimes;
  kiln::runtime::resetProfile();
  for (int run = 0; run <= repeat; ++run) {
    auto runStart = Clock::now();
    if (llvm::Error error = exe.run(argPointers, results)) {
      // Index errors and device failures alike: a runtime failure.
      return fail(2, llvm::toString(std::move(error)));
    }
    times.push_back(msSince(runStart));
    deviceTimes.push_back(exe.getLastDeviceMs());
    // The warm-up run is excluded when there are repeats.
    if (run == 0 && repeat > 0)
      kiln::runtime::resetProfile();
  }
  if (options.profile)
    printProfile(exe, *source, times, repeat);

  if (!outputDir.empty()) {
    if (std::error_code ec = llvm::sys::fs::create_directories(outputDir))
      return fail(1, "cannot create " + outputDir + ": " + ec.message());
    for (auto [index, result] : llvm::enumerate(results)) {
      llvm::SmallString<256> path(outputDir);
      llvm::sys::path::append(path, "out" + std::to_string(index) + ".npy");
      if (llvm::Error error = writeNpy(path, result))
        return fail(1, llvm::toString(std::move(error)));
    }
  }
  if (options.print)
    for (const HostTensor &result : results)
      llvm::outs() << formatTorch(result) << "\n";

  if (options.stats) {
    // The warm-up run is excluded when there are repeats.
    std::vector<double> measured(times.begin() + (repeat > 0 ? 1 : 0),
                                 times.end());
    std::sort(measured.begin(), measured.end());
    double median = measured[measured.size() / 2];
    std::string device;
    if (exe.getTarget() == kiln::Target::Cuda) {
      // Kernel time on the device, without the copies of inputs/results.
      std::vector<double> kernelTimes(
          deviceTimes.begin() + (repeat > 0 ? 1 : 0), deviceTimes.end());
      std::sort(kernelTimes.begin(), kernelTimes.end());
      device = llvm::formatv(", \"device\": \"{0}\", \"device_ms_median\": "
                             "{1:F3}, \"device_ms_min\": {2:F3}",
                             cuda::describeDevice(),
                             kernelTimes[kernelTimes.size() / 2],
                             kernelTimes.front());
    }
    llvm::errs() << llvm::formatv(
        "kiln-stats: {{\"kernels\": {0}, \"compile_ms\": {1:F3}, "
        "\"run_ms_median\": {2:F4}, \"run_ms_min\": {3:F4}, \"cache\": "
        "\"{4}\"{5}}\n",
        exe.getKernelCount(), compileMs, median, measured.front(),
        exe.isCacheHit() ? "hit" : "miss", device);
  }
  return 0;
}
