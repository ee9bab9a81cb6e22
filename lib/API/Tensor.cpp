//===- Tensor.cpp - The Kiln embedding API --------------------------------===//
//
// A Tensor is a (node, result) pair of an immutable graph. Creating an op
// checks it with the dialect's own type inference and verifier (in a
// per-thread MLIRContext), so shape and dtype errors surface at the call.
// Realizing a tensor prints its pending ancestors as one kiln function
// (realized tensors become arguments), compiles it through the CPU pipeline
// and the compile cache (graphs already compiled in this process are
// reused), and runs it. Autograd prints the graph the same way and asks
// kiln::deriveVJP for the gradient function.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnTraits.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Runtime/CpuCompiler.h"
#include "kiln/Runtime/Cuda.h"
#include "kiln/Runtime/Executable.h"
#include "kiln/Runtime/HostTensor.h"
#include "kiln/Runtime/Kernels.h"
#include "kiln/Support/LruCache.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

using namespace mlir;
namespace rt = kiln::runtime;

namespace kiln {
namespace detail {

/// What a recorded op is apart from its operands: the op, its attributes,
/// its result types and the text the graph printer writes after the
/// operands. Made once per distinct op, attributes and operand types (per
/// thread: checkOp's memo) and shared by every node recorded with them, so
/// a training loop recording the same graph step after step neither checks
/// nor prints its types again.
struct OpSignature {
  std::string op; // "kiln.add"
  std::vector<rt::TensorSpec> results;
  /// `) {attrs} : (operand types) -> (result types)`
  std::string tail;
};

/// A graph node: an op applied to input values, or a leaf holding data.
struct Node {
  /// The op; null for a leaf.
  std::shared_ptr<const OpSignature> signature;
  std::vector<Tensor> inputs;
  /// A leaf's types (an op's are its signature's).
  std::vector<rt::TensorSpec> leafTypes;
  /// Where the op was recorded (empty for operators and leaves): explain()
  /// reports its remarks there.
  SourceLocation where;
  /// For `func.call` nodes (callIR): the callee's text, a private function
  /// printed into the module next to @graph and inlined by the pipeline.
  std::string callee;
  /// Realized results (all or none).
  std::vector<std::shared_ptr<rt::HostTensor>> data;
  std::mutex mutex;
  // Autograd (leaves).
  bool requiresGrad = false;
  Tensor grad;

  bool realized() const { return !data.empty(); }
  bool isLeaf() const { return !signature; }
  const std::vector<rt::TensorSpec> &types() const {
    return signature ? signature->results : leafTypes;
  }

  Node() = default;
  Node(const Node &) = delete;
  Node &operator=(const Node &) = delete;
  /// Releases the graph behind this node without recursing: destroyed
  /// input by input, a chain of a million ops would take a million stack
  /// frames. An input only this node holds gives up its own inputs (and
  /// gradient) first, so it is destroyed with none.
  ~Node() {
    llvm::SmallVector<std::shared_ptr<Node>, 4> pending;
    auto release = [&pending](Node &node) {
      for (const Tensor &input : node.inputs)
        if (input.getNode())
          pending.push_back(input.getNode());
      node.inputs.clear();
      if (node.grad.getNode())
        pending.push_back(node.grad.getNode());
      node.grad = Tensor();
    };
    release(*this);
    while (!pending.empty()) {
      std::shared_ptr<Node> node = std::move(pending.back());
      pending.pop_back();
      // Held only here (graphs keep no weak references): no other thread
      // can reach it.
      if (node.use_count() == 1)
        release(*node);
    }
  }
};

} // namespace detail

using detail::Node;

//===----------------------------------------------------------------------===//
// Errors, dtypes, stats
//===----------------------------------------------------------------------===//

static std::string formatError(const std::string &message,
                               SourceLocation where) {
  std::string text;
  if (where.file && *where.file)
    text = std::string(where.file) + ":" + std::to_string(where.line) + ": ";
  return text + "error: " + message;
}

Error::Error(const std::string &message, SourceLocation where)
    : std::runtime_error(formatError(message, where)), location(where) {}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::Float32:
    return "f32";
  case DType::Float64:
    return "f64";
  case DType::Int64:
    return "i64";
  case DType::Int32:
    return "i32";
  case DType::Bool:
    return "i1";
  }
  return "?";
}

using detail::toRuntime;

static DType fromRuntime(rt::DType d) {
  switch (d) {
  case rt::DType::F32:
    return DType::Float32;
  case rt::DType::F64:
    return DType::Float64;
  case rt::DType::I64:
    return DType::Int64;
  case rt::DType::I32:
    return DType::Int32;
  case rt::DType::Bool:
    return DType::Bool;
  }
  return DType::Float32;
}

using detail::isFloat;

namespace {
std::atomic<int64_t> graphsCompiled{0}, graphsReused{0}, cacheHits{0},
    runCount{0};

/// Compiled graphs of this process, by device, entry and IR text; the least
/// recently used beyond the limit are dropped (tensors or runs still holding
/// one keep it alive until they are done).
constexpr int64_t kDefaultCompiledGraphLimit = 256;
/// A graph's description (GraphPrinter::key) leads to its text's entry.
struct GraphShape {
  std::string textKey;
  std::vector<std::shared_ptr<const detail::OpSignature>> signatures;
};
struct ExecutableCache {
  std::mutex mutex;
  LruCache<std::shared_ptr<rt::Executable>> entries{kDefaultCompiledGraphLimit};
  /// Descriptions of graphs compiled (a few per compiled graph: each
  /// thread's signatures are its own).
  LruCache<GraphShape> shapes{4 * kDefaultCompiledGraphLimit};
};
ExecutableCache &executableCache() {
  static ExecutableCache cache;
  return cache;
}
} // namespace

void setCompiledGraphLimit(int64_t graphs, SourceLocation where) {
  if (graphs < 1)
    throw Error("setCompiledGraphLimit(" + std::to_string(graphs) +
                    "): the limit must be at least 1",
                where);
  ExecutableCache &cache = executableCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.entries.setCapacity(static_cast<size_t>(graphs));
}
int64_t getCompiledGraphLimit() {
  ExecutableCache &cache = executableCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return static_cast<int64_t>(cache.entries.getCapacity());
}

namespace {
/// KILN_NUM_THREADS, read once before the first run.
void applyThreadEnvironment() {
  static const bool applied = [] {
    if (const char *text = std::getenv("KILN_NUM_THREADS")) {
      int threads = std::atoi(text);
      if (threads > 0)
        rt::setNumThreads(threads);
    }
    return true;
  }();
  (void)applied;
}
} // namespace

void setNumThreads(int threads, SourceLocation where) {
  if (threads < 1 || threads > rt::kMaxThreads)
    throw Error("setNumThreads(" + std::to_string(threads) +
                    "): the thread count must be from 1 to " +
                    std::to_string(rt::kMaxThreads),
                where);
  applyThreadEnvironment();
  rt::setNumThreads(threads);
}
int getNumThreads() {
  applyThreadEnvironment();
  return rt::getNumThreads();
}

namespace {
std::atomic<Device> currentDevice{Device::CPU};
} // namespace

bool isCudaAvailable(std::string *reason) {
  if (llvm::Error error = rt::cuda::initialize()) {
    std::string message = llvm::toString(std::move(error));
    if (reason)
      *reason = message;
    return false;
  }
  return true;
}

void setDevice(Device device, SourceLocation where) {
  std::string reason;
  if (device == Device::CUDA && !isCudaAvailable(&reason))
    throw Error("setDevice(Device::CUDA): " + reason, where);
  currentDevice = device;
}

Device getDevice() { return currentDevice; }

RuntimeStats runtimeStats() {
  RuntimeStats stats;
  stats.graphsCompiled = graphsCompiled;
  stats.graphsReused = graphsReused;
  stats.compileCacheHits = cacheHits;
  stats.runs = runCount;
  ExecutableCache &cache = executableCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  stats.graphsCached = static_cast<int64_t>(cache.entries.size());
  stats.graphsEvicted = static_cast<int64_t>(cache.entries.evictions());
  return stats;
}

//===----------------------------------------------------------------------===//
// MLIR side: a context per thread, op checking, graph printing, compiling
//===----------------------------------------------------------------------===//

namespace {

MLIRContext &threadContext() {
  thread_local std::unique_ptr<MLIRContext> context = [] {
    // The tools' context; the API builds kiln and func ops without a
    // parser, so it loads those two itself.
    std::unique_ptr<MLIRContext> ctx = createToolContext();
    ctx->getOrLoadDialect<KilnDialect>();
    ctx->getOrLoadDialect<func::FuncDialect>();
    return ctx;
  }();
  return *context;
}

/// Collects the first error diagnostic while alive.
struct DiagnosticCapture {
  explicit DiagnosticCapture(MLIRContext &ctx)
      : handler(&ctx, [this](Diagnostic &d) {
          if (d.getSeverity() == DiagnosticSeverity::Error && message.empty())
            message = d.str();
          return success();
        }) {}
  std::string message;
  ScopedDiagnosticHandler handler;
};

Type toMlirType(MLIRContext &ctx, const rt::TensorSpec &spec) {
  Type element;
  switch (spec.dtype) {
  case rt::DType::F32:
    element = Float32Type::get(&ctx);
    break;
  case rt::DType::F64:
    element = Float64Type::get(&ctx);
    break;
  case rt::DType::I64:
    element = IntegerType::get(&ctx, 64);
    break;
  case rt::DType::I32:
    element = IntegerType::get(&ctx, 32);
    break;
  case rt::DType::Bool:
    element = IntegerType::get(&ctx, 1);
    break;
  }
  return RankedTensorType::get(spec.shape, element);
}

std::optional<rt::TensorSpec> fromMlirType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return std::nullopt;
  Type e = tensor.getElementType();
  rt::TensorSpec spec;
  spec.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
  if (e.isF32())
    spec.dtype = rt::DType::F32;
  else if (e.isF64())
    spec.dtype = rt::DType::F64;
  else if (e.isInteger(64))
    spec.dtype = rt::DType::I64;
  else if (e.isInteger(32))
    spec.dtype = rt::DType::I32;
  else if (e.isInteger(1))
    spec.dtype = rt::DType::Bool;
  else
    return std::nullopt;
  return spec;
}

/// Checks `op` applied to `inputs` with `attrs` using the dialect's
/// inference and verifier; returns the result types. `explicitTypes` are
/// used for ops whose result types are not inferred (reshape, cast, ...).
std::vector<rt::TensorSpec>
verifyOp(const std::string &op, const std::vector<Tensor> &inputs,
         const std::string &attrs,
         const std::vector<rt::TensorSpec> *explicitTypes,
         SourceLocation where) {
  MLIRContext &ctx = threadContext();
  DiagnosticCapture capture(ctx);
  Location loc = FileLineColLoc::get(&ctx, where.file, where.line, 0);
  Block block;
  for (const Tensor &input : inputs)
    block.addArgument(
        toMlirType(ctx, input.getNode()->types()[input.getResult()]), loc);
  OperationState state(loc, op);
  state.addOperands(block.getArguments());
  if (!attrs.empty()) {
    auto dict = dyn_cast_or_null<DictionaryAttr>(parseAttribute(attrs, &ctx));
    if (!dict)
      throw Error("internal error: bad attributes " + attrs + " for " + op,
                  where);
    state.addAttributes(dict.getValue());
  }
  if (explicitTypes) {
    for (const rt::TensorSpec &spec : *explicitTypes)
      state.addTypes(toMlirType(ctx, spec));
  } else {
    std::optional<RegisteredOperationName> info =
        state.name.getRegisteredInfo();
    auto *infer = info ? info->getInterface<InferTypeOpInterface>() : nullptr;
    if (!infer)
      throw Error("internal error: " + op + " needs explicit result types",
                  where);
    SmallVector<Type> types;
    if (failed(infer->inferReturnTypes(&ctx, loc, state.operands,
                                       state.attributes.getDictionary(&ctx),
                                       OpaqueProperties(nullptr), {}, types)))
      throw Error(capture.message.empty() ? "invalid " + op : capture.message,
                  where);
    state.addTypes(types);
  }
  Operation *created = Operation::create(state);
  block.push_back(created);
  if (failed(verify(created)))
    throw Error(capture.message.empty() ? "invalid " + op : capture.message,
                where);
  std::vector<rt::TensorSpec> results;
  for (Type type : created->getResultTypes())
    results.push_back(*fromMlirType(type));
  created->erase();
  return results;
}

/// Appends the MLIR type of `spec` (`tensor<4x10xf32>`) to `out`: the graph
/// printer's types and the op checks' memo keys.
void appendType(std::string &out, const rt::TensorSpec &spec) {
  out += "tensor<";
  char digits[24];
  for (int64_t size : spec.shape) {
    char *end = std::to_chars(digits, digits + sizeof digits, size).ptr;
    out.append(digits, end - digits);
    out += 'x';
  }
  llvm::StringRef element = rt::dtypeName(spec.dtype);
  out.append(element.data(), element.size());
  out += '>';
}

/// The printer's text for an op after its operands (OpSignature::tail).
std::string signatureTail(const std::string &attrs,
                          const std::vector<Tensor> &inputs,
                          const std::vector<rt::TensorSpec> &results) {
  std::string tail = ") ";
  tail += attrs;
  tail += " : (";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i)
      tail += ", ";
    appendType(tail, inputs[i].getNode()->types()[inputs[i].getResult()]);
  }
  tail += ") -> (";
  for (size_t i = 0; i < results.size(); ++i) {
    if (i)
      tail += ", ";
    appendType(tail, results[i]);
  }
  tail += ')';
  return tail;
}

/// The signature of `op` applied to `inputs` with `attrs`, checked by the
/// dialect (verifyOp), through a per-thread memo of the checks that
/// passed: the result types depend only on the op, its attributes and its
/// operand (and explicit result) types, and a program building the same
/// graph again (a training loop) would otherwise create, infer and verify
/// an MLIR operation for every node of every step. Failures are not
/// remembered: each reports its own location.
std::shared_ptr<const detail::OpSignature>
checkOp(const std::string &op, const std::vector<Tensor> &inputs,
        const std::string &attrs,
        const std::vector<rt::TensorSpec> *explicitTypes,
        SourceLocation where) {
  constexpr size_t kMemoEntries = 4096;
  thread_local std::unordered_map<std::string,
                                  std::shared_ptr<const detail::OpSignature>>
      memo;
  // The key: the op, its attributes, then each type as its dtype, rank
  // and sizes in binary (the digits of every size took as long as the
  // rest of recording a node), in a buffer kept for the next check.
  thread_local std::string key;
  key.assign(op);
  key += '\0';
  key += attrs;
  key += '\0';
  auto appendSpec = [](const rt::TensorSpec &spec) {
    key += static_cast<char>(spec.dtype);
    key += static_cast<char>(spec.shape.size());
    key.append(reinterpret_cast<const char *>(spec.shape.data()),
               spec.shape.size() * sizeof(int64_t));
  };
  for (const Tensor &input : inputs)
    appendSpec(input.getNode()->types()[input.getResult()]);
  if (explicitTypes) {
    key += "->";
    for (const rt::TensorSpec &spec : *explicitTypes)
      appendSpec(spec);
  }
  auto it = memo.find(key);
  if (it != memo.end())
    return it->second;
  auto signature = std::make_shared<detail::OpSignature>();
  signature->op = op;
  signature->results = verifyOp(op, inputs, attrs, explicitTypes, where);
  signature->tail = signatureTail(attrs, inputs, signature->results);
  if (memo.size() >= kMemoEntries)
    memo.clear();
  memo.emplace(key, signature);
  return signature;
}

/// Prints a pending graph as `func.func @graph`: leaves and realized nodes
/// become arguments, one per result used, in order of first use; pending
/// nodes become ops.
///
/// Every walk also describes the graph in `key`, in binary, without
/// printing: each printed node's signature (its address: op, attributes and
/// types) and operands, the results and the arguments' types -- all the
/// text depends on. findOrCompile finds a graph compiled before by that
/// description alone (a training step recording the same graph again),
/// printing it only when it is new.
struct GraphPrinter {
  // Configuration.
  /// Autograd: realized intermediate nodes are recomputed from the leaves
  /// (a realized value would cut the gradient's path), and the nodes in
  /// `perturbed` get `+ delta` after them, a zero argument whose gradient
  /// is theirs (autograd::grad with respect to an intermediate).
  bool throughRealized = false;
  llvm::DenseSet<Node *> perturbed;
  /// Values made the first arguments, in order (autograd's leaf inputs).
  std::vector<Tensor> leading;
  /// Each op with a recorded source location gets it as its MLIR location
  /// (explain()); otherwise ops take their place in the text.
  bool locations = false;
  /// Whether walks print the text (else they only describe it in `key`).
  bool text = true;
  /// The node whose realize() holds its lock while printing (not locked
  /// again here; it is pending).
  Node *held = nullptr;

  // What a walk found.
  std::vector<std::pair<Node *, unsigned>> arguments;
  llvm::DenseMap<std::pair<Node *, unsigned>, unsigned> argumentIndex;
  /// Printed nodes: the number of their SSA name (%v<n>).
  llvm::DenseMap<Node *, unsigned> names;
  /// Printed nodes, in order.
  std::vector<Node *> printed;
  llvm::DenseMap<Node *, std::shared_ptr<Node>> deltas;
  /// Functions the graph calls (callIR), printed after @graph.
  std::vector<std::string> callees;
  std::string body;
  unsigned counter = 0;
  std::vector<uint64_t> key;

  /// Forgets a walk (the configuration stays).
  void reset() {
    arguments.clear();
    argumentIndex.clear();
    names.clear();
    printed.clear();
    deltas.clear();
    callees.clear();
    body.clear();
    counter = 0;
    key.clear();
  }

  static std::string typeString(const rt::TensorSpec &spec) {
    std::string text;
    appendType(text, spec);
    return text;
  }
  static const rt::TensorSpec &specOf(const Tensor &t) {
    return t.getNode()->types()[t.getResult()];
  }

  bool isArgument(Node *node) const {
    if (node->isLeaf())
      return true;
    if (throughRealized || node == held)
      return false;
    // Another thread may be realizing this node right now: its lock makes
    // us wait for the data (ancestors never lock descendants: no cycle).
    std::lock_guard<std::mutex> lock(node->mutex);
    return node->realized();
  }

  void keyWord(uint64_t word) { key.push_back(word); }
  /// `key` as the bytes the caches are keyed by, after `prefix`.
  std::string keyString(const std::string &prefix) const {
    std::string bytes = prefix;
    bytes.append(reinterpret_cast<const char *>(key.data()),
                 key.size() * sizeof(uint64_t));
    return bytes;
  }

  static void appendNumber(std::string &out, uint64_t n) {
    char digits[24];
    char *end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.append(digits, end - digits);
  }

  /// Appends the SSA name of `t` (`%arg3`, `%v7`, `%v2#1`) to `out` (when
  /// printing text), printing the pending nodes it depends on first.
  void appendValue(std::string &out, const Tensor &t) {
    Node *node = t.getNode().get();
    if (isArgument(node)) {
      auto key = std::make_pair(node, t.getResult());
      auto [it, inserted] = argumentIndex.try_emplace(key, arguments.size());
      if (inserted)
        arguments.push_back(key);
      keyWord(uint64_t(it->second) << 1);
      keyWord(0);
      if (text) {
        out += "%arg";
        appendNumber(out, it->second);
      }
      return;
    }
    visit(node);
    unsigned name = names.lookup(node);
    keyWord(uint64_t(name) << 1 | 1);
    keyWord(t.getResult());
    if (!text)
      return;
    out += "%v";
    appendNumber(out, name);
    if (node->types().size() != 1) {
      out += '#';
      appendNumber(out, t.getResult());
    }
  }

  /// Prints the pending nodes `root` depends on, then `root`: a post-order
  /// walk with an explicit stack, as graphs may be chains of millions of
  /// ops.
  void visit(Node *root) {
    if (isArgument(root) || names.count(root))
      return;
    std::vector<std::pair<Node *, size_t>> stack{{root, 0}};
    while (!stack.empty()) {
      Node *node = stack.back().first;
      size_t next = stack.back().second;
      if (next < node->inputs.size()) {
        ++stack.back().second;
        Node *input = node->inputs[next].getNode().get();
        if (!isArgument(input) && !names.count(input))
          stack.push_back({input, 0});
        continue;
      }
      stack.pop_back();
      print(node);
    }
  }

  /// Prints `node`, whose pending inputs are printed already, straight into
  /// `body` (a graph of a training step prints every realize): its name,
  /// op and operands, then its signature's tail (attributes and types).
  void print(Node *node) {
    const detail::OpSignature &signature = *node->signature;
    unsigned name = counter++;
    printed.push_back(node);
    keyWord(reinterpret_cast<uintptr_t>(&signature));
    keyWord(node->inputs.size());
    if (text) {
      if (!node->callee.empty() && std::find(callees.begin(), callees.end(),
                                             node->callee) == callees.end())
        callees.push_back(node->callee);
      body += "  %v";
      appendNumber(body, name);
      if (signature.results.size() > 1) {
        body += ':';
        appendNumber(body, signature.results.size());
      }
      body += " = \"";
      body += signature.op;
      body += "\"(";
    }
    // The operands are printed (or arguments): appendValue adds nothing
    // but their names here.
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      if (text && i)
        body += ", ";
      appendValue(body, node->inputs[i]);
    }
    names[node] = name;
    if (text) {
      body += signature.tail;
      if (locations && node->where.file && *node->where.file &&
          node->where.line > 0) {
        std::string file;
        llvm::raw_string_ostream os(file);
        llvm::printEscapedString(node->where.file, os);
        body +=
            " loc(\"" + file + "\":" + std::to_string(node->where.line) + ":0)";
      }
      body += '\n';
    }
    bool shift = !perturbed.empty() && perturbed.contains(node);
    keyWord(shift);
    if (shift) {
      auto delta = std::make_shared<Node>();
      delta->leafTypes = node->types();
      rt::HostTensor zeros(node->types()[0].dtype, node->types()[0].shape);
      std::memset(zeros.data(), 0, zeros.getByteSize());
      delta->data.push_back(std::make_shared<rt::HostTensor>(std::move(zeros)));
      deltas[node] = delta;
      unsigned shifted = counter++;
      std::string deltaName;
      appendValue(deltaName, Tensor(delta, 0));
      if (text) {
        std::string type = typeString(node->types()[0]);
        body += "  %v";
        appendNumber(body, shifted);
        body += " = \"kiln.add\"(%v";
        appendNumber(body, name);
        body += ", " + deltaName + ") : (" + type + ", " + type + ") -> " +
                type + "\n";
      }
      names[node] = shifted;
    }
  }

  /// Walks the graph of `outputs`: prints it (into the returned text) when
  /// `text` is set, describes it in `key` always.
  std::string print(const std::vector<Tensor> &outputs) {
    keyWord(throughRealized | locations << 1);
    std::string unused;
    for (const Tensor &t : leading)
      appendValue(unused, t);
    std::string results;
    keyWord(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (text && i)
        results += ", ";
      appendValue(results, outputs[i]);
    }
    keyWord(arguments.size());
    for (auto [node, result] : arguments) {
      const rt::TensorSpec &spec = node->types()[result];
      keyWord(static_cast<uint64_t>(spec.dtype));
      keyWord(spec.shape.size());
      for (int64_t size : spec.shape)
        keyWord(static_cast<uint64_t>(size));
    }
    if (!text)
      return "";
    std::string text = "func.func @graph(";
    for (size_t i = 0; i < arguments.size(); ++i) {
      if (i)
        text += ", ";
      text += "%arg";
      appendNumber(text, i);
      text += ": ";
      appendType(text, arguments[i].first->types()[arguments[i].second]);
    }
    std::string types;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (i)
        types += ", ";
      appendType(types, specOf(outputs[i]));
    }
    text.reserve(text.size() + body.size() + 2 * results.size() + 64);
    text += ") -> (";
    text += types;
    text += ") {\n";
    text += body;
    text += "  return ";
    text += results;
    text += " : ";
    text += types;
    text += "\n}\n";
    for (const std::string &callee : callees)
      text += callee;
    return text;
  }

  /// The data of every argument (all realized).
  std::vector<const rt::HostTensor *> argumentData() const {
    std::vector<const rt::HostTensor *> data;
    for (auto [node, result] : arguments)
      data.push_back(node->data[result].get());
    return data;
  }
};

/// Runs are serialized: each is parallel inside (OpenMP), and the
/// runtime's index-error report is process-wide.
std::mutex &runMutex() {
  static std::mutex mutex;
  return mutex;
}

/// The compile options of the current device.
CompileOptions deviceOptions(SourceLocation where) {
  CompileOptions options;
  if (getDevice() == Device::CUDA)
    if (llvm::Error error = rt::cuda::targetDevice(options))
      throw Error(llvm::toString(std::move(error)), where);
  return options;
}

/// Compiles (or reuses: the cache entry `key`, the device, entry and
/// variant, then the text) `entry` of the module `text` for `options`;
/// `prepare` may edit the parsed module first (autograd derives its VJP
/// there).
std::shared_ptr<rt::Executable>
compileGraph(const std::string &key, const std::string &text,
             const std::string &entry, const CompileOptions &options,
             SourceLocation where,
             const std::function<LogicalResult(ModuleOp)> &prepare) {
  ExecutableCache &cache = executableCache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (std::shared_ptr<rt::Executable> *found = cache.entries.find(key)) {
      ++graphsReused;
      return *found;
    }
  }
  MLIRContext &ctx = threadContext();
  DiagnosticCapture capture(ctx);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &ctx);
  if (!module)
    throw Error("internal error: the graph does not parse: " + capture.message +
                    "\n" + text,
                where);
  if (prepare && failed(prepare(*module)))
    throw Error(capture.message.empty() ? "cannot differentiate the graph"
                                        : capture.message,
                where);
  auto exe = rt::Executable::compile(*module, entry, options);
  if (!exe)
    throw Error(llvm::toString(exe.takeError()), where);
  std::shared_ptr<rt::Executable> shared(std::move(*exe));
  ++graphsCompiled;
  if (shared->isCacheHit())
    ++cacheHits;
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.entries.insert(key, shared);
}

/// The executable of `entry` of the graph `printer` walks from `outputs`,
/// found by the walk's description when the graph was compiled before --
/// not printed then; else printed and compiled (or found by its text).
/// `prepare` may edit the parsed module first (autograd derives its VJP
/// there); `variant` names what it makes of the text. The device, the entry
/// and the variant are part of the graph's identity. The printer holds the
/// walk whose arguments the executable takes.
std::shared_ptr<rt::Executable>
findOrCompile(GraphPrinter &printer, const std::vector<Tensor> &outputs,
              const std::string &entry, SourceLocation where,
              const std::function<LogicalResult(ModuleOp)> &prepare = nullptr,
              const std::string &variant = "") {
  CompileOptions options = deviceOptions(where);
  std::string prefix = (options.target == Target::Cuda ? "cuda:" : "cpu:") +
                       entry + variant + "\n";
  printer.text = false;
  printer.print(outputs);
  ExecutableCache &cache = executableCache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (GraphShape *shape = cache.shapes.find(printer.keyString(prefix)))
      if (std::shared_ptr<rt::Executable> *found =
              cache.entries.find(shape->textKey)) {
        ++graphsReused;
        return *found;
      }
  }
  // Printed in a walk of its own, which the description stored is that
  // of (a node realized meanwhile by another thread is an argument now).
  printer.reset();
  printer.text = true;
  std::string text = printer.print(outputs);
  GraphShape shape;
  shape.textKey = prefix + text;
  std::shared_ptr<rt::Executable> exe =
      compileGraph(shape.textKey, text, entry, options, where, prepare);
  // The signatures stay alive with the description holding their
  // addresses.
  for (Node *node : printer.printed)
    shape.signatures.push_back(node->signature);
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.shapes.insert(printer.keyString(prefix), std::move(shape));
  return exe;
}

std::vector<rt::HostTensor>
runGraph(rt::Executable &exe, const std::vector<const rt::HostTensor *> &args,
         SourceLocation where) {
  applyThreadEnvironment();
  std::vector<rt::HostTensor> results;
  std::lock_guard<std::mutex> lock(runMutex());
  ++runCount;
  if (llvm::Error error = exe.run(args, results))
    throw Error(llvm::toString(std::move(error)), where);
  return results;
}

} // namespace

//===----------------------------------------------------------------------===//
// Building nodes
//===----------------------------------------------------------------------===//

namespace detail {

/// Records `op(inputs)`; checks it now. Returns the node.
std::shared_ptr<Node>
makeNode(const std::string &op, std::vector<Tensor> inputs,
         const std::string &attrs, SourceLocation where,
         const std::vector<rt::TensorSpec> *types = nullptr) {
  for (const Tensor &input : inputs)
    if (!input.defined())
      throw Error(op + ": an operand is an undefined tensor", where);
  auto node = std::make_shared<Node>();
  node->where = where;
  node->signature = checkOp(op, inputs, attrs, types, where);
  node->inputs = std::move(inputs);
  return node;
}

Tensor makeOp(const std::string &op, std::vector<Tensor> inputs,
              const std::string &attrs, SourceLocation where,
              const std::vector<rt::TensorSpec> *types) {
  return Tensor(makeNode(op, std::move(inputs), attrs, where, types), 0);
}

std::shared_ptr<const OpSignature>
signatureOf(const std::string &op, const std::vector<Tensor> &inputs,
            const std::string &attrs, SourceLocation where,
            const std::vector<rt::TensorSpec> *types) {
  return checkOp(op, inputs, attrs, types, where);
}

Tensor makeOp(std::shared_ptr<const OpSignature> signature,
              SourceLocation where) {
  auto node = std::make_shared<Node>();
  node->where = where;
  node->signature = std::move(signature);
  return Tensor(node, 0);
}

Tensor makeLeaf(rt::HostTensor data) {
  auto node = std::make_shared<Node>();
  node->leafTypes.push_back({data.getDType(), data.getShape()});
  node->data.push_back(std::make_shared<rt::HostTensor>(std::move(data)));
  return Tensor(node, 0);
}

} // namespace detail

using detail::makeLeaf;
using detail::makeOp;

int64_t detail::elementCount(const std::vector<int64_t> &shape,
                             std::string_view op, SourceLocation where) {
  for (int64_t size : shape)
    if (size < 0)
      throw Error(std::string(op) + ": negative size " + std::to_string(size) +
                      " in the shape",
                  where);
  std::optional<int64_t> count = kiln::getAddressableElementCount(shape);
  if (!count)
    throw Error(std::string(op) + ": the shape " +
                    kiln::unaddressableShapeReason(shape),
                where);
  return *count;
}

template <typename T>
static Tensor leafFrom(const std::vector<T> &data, std::vector<int64_t> shape,
                       rt::DType dtype, SourceLocation where) {
  if (shape.empty() && !data.empty())
    shape = {static_cast<int64_t>(data.size())};
  int64_t count = detail::elementCount(shape, "fromVector", where);
  if (count != static_cast<int64_t>(data.size()))
    throw Error("fromVector: " + std::to_string(data.size()) +
                    " values do not fill a tensor of " + std::to_string(count) +
                    " elements",
                where);
  rt::HostTensor tensor(dtype, shape);
  if constexpr (std::is_same_v<T, bool>) {
    auto *out = tensor.as<uint8_t>();
    for (size_t i = 0; i < data.size(); ++i)
      out[i] = data[i];
  } else if (!data.empty()) {
    std::memcpy(tensor.data(), data.data(), data.size() * sizeof(T));
  }
  return makeLeaf(std::move(tensor));
}

Tensor Tensor::fromVector(const std::vector<float> &data,
                          std::vector<int64_t> shape, SourceLocation where) {
  return leafFrom(data, std::move(shape), rt::DType::F32, where);
}
Tensor Tensor::fromVector(const std::vector<double> &data,
                          std::vector<int64_t> shape, SourceLocation where) {
  return leafFrom(data, std::move(shape), rt::DType::F64, where);
}
Tensor Tensor::fromVector(const std::vector<int64_t> &data,
                          std::vector<int64_t> shape, SourceLocation where) {
  return leafFrom(data, std::move(shape), rt::DType::I64, where);
}
Tensor Tensor::fromVector(const std::vector<bool> &data,
                          std::vector<int64_t> shape, SourceLocation where) {
  return leafFrom(data, std::move(shape), rt::DType::Bool, where);
}

Tensor Tensor::fromBlob(const void *data, std::vector<int64_t> shape,
                        DType dtype, SourceLocation where) {
  int64_t count = detail::elementCount(shape, "fromBlob", where);
  if (!data && count)
    throw Error("fromBlob: null data", where);
  size_t alignment = rt::dtypeSize(toRuntime(dtype));
  if (reinterpret_cast<uintptr_t>(data) % alignment == 0)
    // Zero-copy: the graph reads the caller's memory (see kiln.h).
    return makeLeaf(rt::HostTensor::view(toRuntime(dtype), std::move(shape),
                                         const_cast<void *>(data)));
  // Misaligned for its element type: copied.
  rt::HostTensor tensor(toRuntime(dtype), shape);
  if (count)
    std::memcpy(tensor.data(), data, tensor.getByteSize());
  return makeLeaf(std::move(tensor));
}

/// The node of `tensor`; an undefined (default-constructed) tensor is an
/// error of `what`. The accessors take no source location.
static detail::Node &nodeOf(const std::shared_ptr<detail::Node> &node,
                            const char *what) {
  if (!node)
    throw Error(std::string(what) + ": undefined tensor", SourceLocation{});
  return *node;
}

DType Tensor::dtype() const {
  return fromRuntime(nodeOf(node, "dtype").types()[result].dtype);
}
const std::vector<int64_t> &Tensor::shape() const {
  return nodeOf(node, "shape").types()[result].shape;
}
int64_t Tensor::numel() const {
  int64_t count = 1;
  for (int64_t size : nodeOf(node, "numel").types()[result].shape)
    count *= size;
  return count;
}

bool Tensor::isRealized() const {
  std::lock_guard<std::mutex> lock(nodeOf(node, "isRealized").mutex);
  return node->realized();
}

//===----------------------------------------------------------------------===//
// Realizing
//===----------------------------------------------------------------------===//

const Tensor &Tensor::realize(SourceLocation where) const {
  if (!node)
    throw Error("realize: undefined tensor", where);
  std::lock_guard<std::mutex> lock(node->mutex);
  if (node->realized())
    return *this;
  // Every result of the node at once (topk's values and indices).
  std::vector<Tensor> outputs;
  for (unsigned i = 0; i < node->types().size(); ++i)
    outputs.emplace_back(node, i);
  GraphPrinter printer;
  printer.held = node.get();
  auto exe = findOrCompile(printer, outputs, "graph", where);
  std::vector<rt::HostTensor> results =
      runGraph(*exe, printer.argumentData(), where);
  for (rt::HostTensor &r : results)
    node->data.push_back(std::make_shared<rt::HostTensor>(std::move(r)));
  return *this;
}

namespace {
/// Realizes `tensors` (the cotangents autograd passes as arguments).
void realizeAll(const std::vector<Tensor> &tensors, SourceLocation where) {
  for (const Tensor &t : tensors)
    t.realize(where);
}

double elementAsDouble(const rt::HostTensor &t, int64_t i) {
  switch (t.getDType()) {
  case rt::DType::F32:
    return t.as<float>()[i];
  case rt::DType::F64:
    return t.as<double>()[i];
  case rt::DType::I64:
    return static_cast<double>(t.as<int64_t>()[i]);
  case rt::DType::I32:
    return t.as<int32_t>()[i];
  case rt::DType::Bool:
    return t.as<uint8_t>()[i];
  }
  return 0;
}
int64_t elementAsInt(const rt::HostTensor &t, int64_t i) {
  if (t.getDType() == rt::DType::I64)
    return t.as<int64_t>()[i];
  if (t.getDType() == rt::DType::I32)
    return t.as<int32_t>()[i];
  if (t.getDType() == rt::DType::Bool)
    return t.as<uint8_t>()[i];
  return static_cast<int64_t>(elementAsDouble(t, i));
}
} // namespace

static const rt::HostTensor &dataOf(const Tensor &t, SourceLocation where) {
  t.realize(where);
  std::lock_guard<std::mutex> lock(t.getNode()->mutex);
  return *t.getNode()->data[t.getResult()];
}

template <typename T>
std::vector<T> Tensor::toVector(SourceLocation where) const {
  const rt::HostTensor &data = dataOf(*this, where);
  std::vector<T> out(data.getNumElements());
  for (int64_t i = 0; i < data.getNumElements(); ++i) {
    if constexpr (std::is_floating_point_v<T>)
      out[i] = static_cast<T>(elementAsDouble(data, i));
    else
      out[i] = static_cast<T>(elementAsInt(data, i));
  }
  return out;
}

template <typename T> T Tensor::item(SourceLocation where) const {
  if (numel() != 1)
    throw Error("item: the tensor has " + std::to_string(numel()) +
                    " elements, not one",
                where);
  return toVector<T>(where)[0];
}

template std::vector<float> Tensor::toVector<float>(SourceLocation) const;
template std::vector<double> Tensor::toVector<double>(SourceLocation) const;
template std::vector<int64_t> Tensor::toVector<int64_t>(SourceLocation) const;
template std::vector<int32_t> Tensor::toVector<int32_t>(SourceLocation) const;
template std::vector<bool> Tensor::toVector<bool>(SourceLocation) const;
template float Tensor::item<float>(SourceLocation) const;
template double Tensor::item<double>(SourceLocation) const;
template int64_t Tensor::item<int64_t>(SourceLocation) const;
template int32_t Tensor::item<int32_t>(SourceLocation) const;
template bool Tensor::item<bool>(SourceLocation) const;

std::string Tensor::toString(SourceLocation where) const {
  return rt::formatTorch(dataOf(*this, where));
}

std::string Tensor::toMlir() const {
  if (!node)
    return "";
  std::vector<Tensor> outputs;
  for (unsigned i = 0; i < node->types().size(); ++i)
    outputs.emplace_back(node, i);
  GraphPrinter printer;
  return printer.print(outputs);
}

void Tensor::dump() const { llvm::errs() << toMlir(); }

std::string Tensor::explain(SourceLocation where) const {
  if (!node)
    throw Error("explain: undefined tensor", where);
  std::vector<Tensor> outputs;
  for (unsigned i = 0; i < node->types().size(); ++i)
    outputs.emplace_back(node, i);
  GraphPrinter printer;
  printer.locations = true;
  std::string text;
  {
    std::lock_guard<std::mutex> lock(node->mutex);
    // This node's own op even when it is realized.
    printer.held = node.get();
    text = printer.print(outputs);
  }
  CompileOptions options = deviceOptions(where);
  // A context of its own (the tools'): remarks stay on for its lifetime
  // only.
  std::unique_ptr<MLIRContext> ctx = createToolContext();
  std::string remarks;
  if (failed(enableRemarks(
          *ctx, [&](llvm::StringRef line) { remarks += line.str() + "\n"; })))
    throw Error("explain: the remark engine could not be set up", where);
  DiagnosticCapture capture(*ctx);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(text, ctx.get(), "graph.mlir");
  if (!module)
    throw Error("internal error: the graph does not parse: " + capture.message +
                    "\n" + text,
                where);
  if (llvm::Error error = rt::lowerToLLVMDialect(*module, options))
    throw Error(llvm::toString(std::move(error)), where);
  return remarks;
}

//===----------------------------------------------------------------------===//
// Autograd
//===----------------------------------------------------------------------===//

Tensor &Tensor::requiresGrad(bool requires, SourceLocation where) {
  if (!node)
    throw Error("requiresGrad: undefined tensor", where);
  if (!node->isLeaf())
    throw Error("requiresGrad: only leaf tensors (made from data) can "
                "require gradients",
                where);
  if (requires && !isFloat(dtype()))
    throw Error(std::string("requiresGrad: only floating-point tensors can "
                            "require gradients, not ") +
                    dtypeName(dtype()),
                where);
  node->requiresGrad = requires;
  return *this;
}

bool Tensor::requiresGradFlag() const { return node && node->requiresGrad; }

Tensor Tensor::grad() const {
  if (!node)
    return Tensor();
  std::lock_guard<std::mutex> lock(node->mutex);
  return node->grad;
}

Tensor Tensor::detach(SourceLocation where) const {
  realize(where);
  auto leaf = std::make_shared<Node>();
  std::lock_guard<std::mutex> lock(node->mutex);
  leaf->leafTypes.push_back(node->types()[result]);
  leaf->data.push_back(node->data[result]);
  return Tensor(leaf, 0);
}

void Tensor::zeroGrad() {
  if (!node)
    return;
  std::lock_guard<std::mutex> lock(node->mutex);
  node->grad = Tensor();
}

namespace {

/// Adds `@<name>(args, cotangents)` returning `forward`'s results numbered
/// `results`, then `vjp`'s gradients: calls of both, which the pipeline
/// inlines, their common forward ops then computed once.
void addForwardAndVJP(func::FuncOp forward, func::FuncOp vjp,
                      ArrayRef<size_t> results, StringRef name) {
  OpBuilder b(vjp);
  b.setInsertionPointAfter(vjp);
  Location loc = forward.getLoc();
  SmallVector<Type> resultTypes;
  for (size_t i : results)
    resultTypes.push_back(forward.getResultTypes()[i]);
  llvm::append_range(resultTypes, vjp.getResultTypes());
  auto both = func::FuncOp::create(
      b, loc, name, b.getFunctionType(vjp.getArgumentTypes(), resultTypes));
  Block *body = both.addEntryBlock();
  b.setInsertionPointToStart(body);
  ValueRange args = body->getArguments();
  auto forwardCall = func::CallOp::create(
      b, loc, forward, args.take_front(forward.getNumArguments()));
  auto vjpCall = func::CallOp::create(b, loc, vjp, args);
  SmallVector<Value> returned;
  for (size_t i : results)
    returned.push_back(forwardCall.getResult(i));
  llvm::append_range(returned, vjpCall.getResults());
  func::ReturnOp::create(b, loc, returned);
}

/// The VJP of the graph from `inputs` (cut there) to `outputs`, run on
/// `cotangents`: one gradient per input (zeros where nothing flows).
std::vector<Tensor> vjp(const std::vector<Tensor> &outputs,
                        const std::vector<Tensor> &inputs,
                        std::vector<Tensor> cotangents, SourceLocation where) {
  for (const Tensor &input : inputs) {
    if (!input.defined())
      throw Error("autograd: an input is undefined", where);
    if (!isFloat(input.dtype()))
      throw Error(std::string("autograd: cannot differentiate with respect to "
                              "a tensor of ") +
                      dtypeName(input.dtype()),
                  where);
    if (input.getNode()->types().size() != 1)
      throw Error("autograd: differentiate with respect to a single-result "
                  "op's tensor",
                  where);
  }
  if (cotangents.empty())
    for (const Tensor &output : outputs) {
      if (output.numel() != 1)
        throw Error("autograd: a gradient must be given for an output with " +
                        std::to_string(output.numel()) + " elements",
                    where);
      // A leaf of ones, made here: a `full` node would be a graph to
      // compile and run before the VJP. (fromVector cannot make the rank-0
      // tensor of a scalar loss.)
      rt::HostTensor ones(toRuntime(output.dtype()), output.shape());
      if (output.dtype() == DType::Float64)
        std::fill_n(ones.as<double>(), ones.getNumElements(), 1.0);
      else
        std::fill_n(ones.as<float>(), ones.getNumElements(), 1.0f);
      cotangents.push_back(makeLeaf(std::move(ones)));
    }
  if (cotangents.size() != outputs.size())
    throw Error("autograd: " + std::to_string(cotangents.size()) +
                    " gradients for " + std::to_string(outputs.size()) +
                    " outputs",
                where);
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!isFloat(outputs[i].dtype()))
      throw Error("autograd: output #" + std::to_string(i) +
                      " is not floating-point",
                  where);
    if (cotangents[i].shape() != outputs[i].shape() ||
        cotangents[i].dtype() != outputs[i].dtype())
      throw Error("autograd: the gradient of output #" + std::to_string(i) +
                      " must have the output's shape and dtype",
                  where);
  }
  realizeAll(cotangents, where);
  GraphPrinter printer;
  printer.throughRealized = true;
  // Leaf inputs are the first arguments; intermediate inputs get a delta.
  for (const Tensor &input : inputs)
    if (input.getNode()->isLeaf())
      printer.leading.push_back(input);
    else
      printer.perturbed.insert(input.getNode().get());
  // Pending single-result outputs (a loss not read yet) are computed by the
  // same run: @graph_all returns them and the gradients, and the forward
  // ops it inlines twice (from @graph and @graph_vjp) are computed once
  // (cse). Reading the loss after backward() then costs nothing more.
  std::vector<size_t> pending;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Node *node = outputs[i].getNode().get();
    std::lock_guard<std::mutex> lock(node->mutex);
    if (!node->realized() && node->types().size() == 1 &&
        std::none_of(pending.begin(), pending.end(), [&](size_t j) {
          return outputs[j].getNode().get() == node;
        }))
      pending.push_back(i);
  }
  std::string entry = pending.empty() ? "graph_vjp" : "graph_all";
  // Which results @graph_all returns is part of what is compiled.
  std::string variant;
  for (size_t i : pending)
    variant += ":" + std::to_string(i);
  auto prepare = [&](ModuleOp module) {
    // Functions from IR files (callIR) are inlined before differentiating.
    if (failed(kiln::inlineCalls(module)))
      return failure();
    auto function = module.lookupSymbol<func::FuncOp>("graph");
    FailureOr<func::FuncOp> derived = deriveVJP(function, "graph_vjp");
    if (failed(derived))
      return failure();
    if (!pending.empty())
      addForwardAndVJP(function, *derived, pending, "graph_all");
    return success();
  };
  auto exe = findOrCompile(printer, outputs, entry, where, prepare, variant);
  std::vector<const rt::HostTensor *> args = printer.argumentData();
  for (const Tensor &ct : cotangents)
    args.push_back(ct.getNode()->data[ct.getResult()].get());
  std::vector<rt::HostTensor> grads = runGraph(*exe, args, where);
  // The forward values come first.
  for (auto [k, i] : llvm::enumerate(pending)) {
    Node *node = outputs[i].getNode().get();
    std::lock_guard<std::mutex> lock(node->mutex);
    if (!node->realized())
      node->data.push_back(
          std::make_shared<rt::HostTensor>(std::move(grads[k])));
  }
  grads.erase(grads.begin(), grads.begin() + pending.size());
  // One gradient per float argument, in order.
  std::map<std::pair<Node *, unsigned>, size_t> gradientOf;
  size_t next = 0;
  for (auto key : printer.arguments)
    if (isFloat(fromRuntime(key.first->types()[key.second].dtype)))
      gradientOf[key] = next++;
  std::map<size_t, Tensor> made;
  std::vector<Tensor> result;
  for (const Tensor &input : inputs) {
    Node *node = input.getNode().get();
    auto delta = printer.deltas.find(node);
    if (!node->isLeaf() && delta == printer.deltas.end())
      throw Error("autograd: an input is not part of the outputs' graph",
                  where);
    auto key = node->isLeaf() ? std::make_pair(node, input.getResult())
                              : std::make_pair(delta->second.get(), 0u);
    size_t index = gradientOf.at(key);
    auto it = made.find(index);
    if (it == made.end())
      it = made.emplace(index, makeLeaf(std::move(grads[index]))).first;
    result.push_back(it->second);
  }
  return result;
}

} // namespace

void Tensor::backward(const Tensor &gradOutput, SourceLocation where) const {
  if (!node)
    throw Error("backward: undefined tensor", where);
  // The requires-grad leaves this tensor depends on differentiably: as in
  // PyTorch, only floating-point values carry gradients, so the walk stops
  // at integer and bool values (a comparison, indices, a cast to an
  // integer): a loss reached from the leaves only through them is an
  // error, as PyTorch's "does not require grad" is, not a zero gradient.
  std::vector<Tensor> owned;
  llvm::DenseSet<Node *> seen;
  std::vector<Tensor> stack{*this};
  while (!stack.empty()) {
    Tensor t = stack.back();
    stack.pop_back();
    Node *n = t.getNode().get();
    if (!isFloat(t.dtype()) || !seen.insert(n).second)
      continue;
    if (n->isLeaf() && n->requiresGrad)
      owned.push_back(t);
    for (const Tensor &input : n->inputs)
      stack.push_back(input);
  }
  if (owned.empty())
    throw Error("backward: the tensor does not depend on any tensor that "
                "requires gradients through floating-point values (integer "
                "and bool values carry no gradient)",
                where);
  std::vector<Tensor> cts;
  if (gradOutput.defined())
    cts.push_back(gradOutput);
  std::vector<Tensor> grads = vjp({*this}, owned, cts, where);
  for (size_t i = 0; i < owned.size(); ++i) {
    Node *leaf = owned[i].getNode().get();
    std::lock_guard<std::mutex> lock(leaf->mutex);
    leaf->grad =
        leaf->grad.defined() ? add(leaf->grad, grads[i], where) : grads[i];
  }
}

std::vector<Tensor> autograd::grad(const std::vector<Tensor> &outputs,
                                   const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &gradOutputs,
                                   bool retainGraph, SourceLocation where) {
  (void)retainGraph; // graphs are immutable: always retained
  if (outputs.empty())
    throw Error("autograd::grad: no outputs", where);
  return vjp(outputs, inputs, gradOutputs, where);
}

//===----------------------------------------------------------------------===//
// IR files
//===----------------------------------------------------------------------===//

std::vector<Tensor> callIR(const std::string &path,
                           const std::vector<Tensor> &args,
                           const std::string &entry, SourceLocation where) {
  MLIRContext &ctx = threadContext();
  DiagnosticCapture capture(ctx);
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    throw Error("callIR: cannot read " + path, where);
  llvm::StringRef text = (*buffer)->getBuffer();
  if (auto hazard = findParserHazard(text)) {
    llvm::StringRef before = text.take_front(hazard->offset);
    size_t lineStart = before.rfind('\n');
    lineStart = lineStart == llvm::StringRef::npos ? 0 : lineStart + 1;
    throw Error("callIR: " + path + ":" +
                    std::to_string(before.count('\n') + 1) + ":" +
                    std::to_string(hazard->offset - lineStart + 1) + ": " +
                    hazard->message,
                where);
  }
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>((*buffer)->getBuffer(), &ctx);
  if (!module)
    throw Error("callIR: " + path + ": " + capture.message, where);
  func::FuncOp function;
  for (auto f : module->getOps<func::FuncOp>())
    if (f.isPublic() && !f.isExternal() &&
        (entry.empty() || f.getSymName() == entry)) {
      if (function && entry.empty())
        throw Error("callIR: " + path +
                        " has several public functions; name one",
                    where);
      function = f;
    }
  if (!function)
    throw Error("callIR: no function " + (entry.empty() ? "" : "@" + entry) +
                    " in " + path,
                where);
  std::string name = function.getSymName().str();
  // Functions it calls from the same file are inlined into it; a call left
  // (recursive, or of a declaration) is an error.
  if (failed(kiln::inlineCalls(*module)))
    throw Error("callIR: " + path + ": " + capture.message, where);
  FunctionType type = function.getFunctionType();
  if (type.getNumInputs() != args.size())
    throw Error("callIR: @" + name + " takes " +
                    std::to_string(type.getNumInputs()) + " arguments, got " +
                    std::to_string(args.size()),
                where);
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].defined())
      throw Error("callIR: argument #" + std::to_string(i) + " is undefined",
                  where);
    Type expected = type.getInput(i);
    if (toMlirType(ctx, args[i].getNode()->types()[args[i].getResult()]) !=
        expected) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << expected;
      throw Error("callIR: argument #" + std::to_string(i) + " of @" + name +
                      " must be " + text,
                  where);
    }
  }
  auto signature = std::make_shared<detail::OpSignature>();
  signature->op = "func.call";
  for (Type result : type.getResults()) {
    std::optional<rt::TensorSpec> spec = fromMlirType(result);
    if (!spec)
      throw Error("callIR: @" + name + " returns a non-tensor value", where);
    signature->results.push_back(*spec);
  }
  // The callee under a name unique to its text, private, so the pipeline
  // inlines it and drops it.
  std::string body;
  {
    llvm::raw_string_ostream os(body);
    function.print(os);
  }
  std::string symbol =
      "__kiln_ir_" + std::to_string(std::hash<std::string>()(body));
  function.setSymName(symbol);
  function.setPrivate();
  auto node = std::make_shared<Node>();
  {
    llvm::raw_string_ostream os(node->callee);
    function.print(os);
    os << "\n";
  }
  signature->tail =
      signatureTail("{callee = @" + symbol + "}", args, signature->results);
  node->signature = std::move(signature);
  node->inputs = args;
  std::vector<Tensor> results;
  for (unsigned i = 0; i < node->types().size(); ++i)
    results.emplace_back(node, i);
  return results;
}

} // namespace kiln
