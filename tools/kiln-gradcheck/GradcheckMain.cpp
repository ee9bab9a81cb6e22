//===- GradcheckMain.cpp - kiln-gradcheck: finite differences vs autodiff -===//
//
// Checks the gradients kiln-autodiff derives for a function against central
// finite differences, like torch.autograd.gradcheck:
//
//   kiln-gradcheck FILE.mlir|- [--entry=NAME] [--input=A.npy ...] [--seed=N]
//                  [--eps=E] [--atol=A] [--rtol=R] [--keep-f32]
//                  [--directions=K]
//
// The module is first promoted to f64 (f32 tensors, constants and inputs;
// --keep-f32 checks the f32 code instead, with looser tolerances in order).
// With random cotangents ct, L(x) = sum_j <ct_j, f_j(x)>; for every element
// of every floating-point argument the derivative (L(x + eps) - L(x - eps))
// / 2 eps -- each result element differenced first, then weighted -- must
// match the VJP's gradient within atol + rtol * |numeric|. With
// --directions=K, like torch.autograd.gradcheck's fast mode, each argument
// is checked along K random directions u instead (elements uniform in
// [-1, 1)): (L(x + eps u) - L(x - eps u)) / 2 eps against <gradient, u>, two
// runs per direction instead of two per element.
// Inputs come from --input (required when there are integer arguments) or
// are drawn uniformly from [-1, 1) with --seed.
//
// Exit codes: 0 gradients match; 1 usage, IR, input or differentiation
// errors; 2 runtime errors (index out of range); 3 gradients differ.
//
//===----------------------------------------------------------------------===//

#include "../ToolMains.h"

#include "../ToolMains.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Pipelines/ToolOptions.h"
#include "kiln/Runtime/Executable.h"
#include "kiln/Runtime/HostTensor.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <random>

using namespace mlir;
using namespace kiln::runtime;

namespace {

constexpr const char *usage =
    "usage: kiln-gradcheck FILE.mlir|- [--entry=NAME] [--input=A.npy ...]\n"
    "                      [--seed=N] [--eps=E] [--atol=A] [--rtol=R]\n"
    "                      [--keep-f32] [--directions=K]\n";

/// How many times the estimated rounding error of a central difference
/// the check allows beyond atol and rtol (see `rounding` below).
constexpr double kRoundingAllowance = 4;

int fail(int code, const llvm::Twine &message) {
  llvm::errs() << "kiln-gradcheck: error: " << message << "\n";
  return code;
}

Type promoteType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.getElementType().isF32())
    return type;
  return RankedTensorType::get(tensor.getShape(),
                               Float64Type::get(type.getContext()));
}

/// Rewrites every f32 tensor in `module` to f64: value types, function
/// types and constants.
LogicalResult promoteToF64(ModuleOp module) {
  Type f64 = Float64Type::get(module.getContext());
  WalkResult walk = module.walk([&](Operation *op) -> WalkResult {
    for (Value result : op->getResults())
      result.setType(promoteType(result.getType()));
    for (Region &region : op->getRegions())
      for (Block &block : region)
        for (BlockArgument arg : block.getArguments())
          arg.setType(promoteType(arg.getType()));
    if (auto function = dyn_cast<func::FuncOp>(op)) {
      FunctionType type = function.getFunctionType();
      auto promote = [](TypeRange types) {
        return llvm::to_vector(llvm::map_range(types, promoteType));
      };
      function.setFunctionType(FunctionType::get(op->getContext(),
                                                 promote(type.getInputs()),
                                                 promote(type.getResults())));
    }
    if (auto constant = dyn_cast<kiln::ConstantOp>(op)) {
      auto elements = dyn_cast<DenseFPElementsAttr>(constant.getValue());
      if (constant.getValue().getElementType().isF32()) {
        if (!elements)
          return op->emitError("cannot promote this f32 constant to f64");
        op->setAttr("value", elements.mapValues(f64, [](const APFloat &v) {
          bool lost;
          APFloat wide = v;
          wide.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven,
                       &lost);
          return wide.bitcastToAPInt();
        }));
      }
    }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

double load(const HostTensor &t, int64_t i) {
  return t.getDType() == DType::F64 ? t.as<double>()[i] : t.as<float>()[i];
}
void store(HostTensor &t, int64_t i, double v) {
  if (t.getDType() == DType::F64)
    t.as<double>()[i] = v;
  else
    t.as<float>()[i] = static_cast<float>(v);
}
bool isFloat(DType d) { return d == DType::F32 || d == DType::F64; }

HostTensor randomTensor(const TensorSpec &spec, std::mt19937_64 &rng) {
  HostTensor t(spec.dtype, spec.shape);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  for (int64_t i = 0, e = t.getNumElements(); i < e; ++i)
    store(t, i, uniform(rng));
  return t;
}

/// An .npy input converted to `spec` (f32 data for an f64 argument is
/// widened); std::nullopt when the types differ otherwise.
std::optional<HostTensor> convertInput(HostTensor tensor,
                                       const TensorSpec &spec) {
  if (tensor.getShape() != spec.shape)
    return std::nullopt;
  if (tensor.getDType() == spec.dtype)
    return tensor;
  if (tensor.getDType() != DType::F32 || spec.dtype != DType::F64)
    return std::nullopt;
  HostTensor wide(DType::F64, spec.shape);
  for (int64_t i = 0, e = wide.getNumElements(); i < e; ++i)
    store(wide, i, load(tensor, i));
  return wide;
}

} // namespace

int kiln::tools::gradcheckMain(llvm::ArrayRef<const char *> commandLine) {
  std::string inputFile, entryName;
  std::vector<std::string> inputPaths;
  int seed = 0, directions = 0;
  double eps = 1e-6, atol = 1e-5, rtol = 1e-3;
  bool keepF32 = false, help = false;
  kiln::ToolOptions parser;
  parser.string("entry", entryName);
  parser.list("input", inputPaths);
  parser.integer("seed", 0, seed);
  parser.positiveNumber("eps", eps);
  parser.positiveNumber("atol", atol);
  parser.positiveNumber("rtol", rtol);
  parser.flag("keep-f32", keepF32);
  parser.integer("directions", 1, directions);
  if (std::optional<std::string> error =
          parser.parse(commandLine, inputFile, help)) {
    llvm::errs() << usage;
    return fail(1, *error);
  }
  if (help) {
    llvm::outs() << usage;
    return 0;
  }

  std::unique_ptr<MLIRContext> context = kiln::createToolContext();
  std::string error;
  auto source = kiln::SourceFile::load(inputFile, *context, error);
  if (!source)
    return fail(1, error);
  ModuleOp module = source->getModule();
  if (!module)
    return 1; // the parser or verifier reported the error
  func::FuncOp function = source->findEntry(entryName, error);
  if (!function)
    return fail(1, error);
  std::string entry = function.getSymName().str();

  if (!keepF32 && (failed(promoteToF64(module)) || failed(verify(module))))
    return fail(1, "cannot promote @" + entry + " to f64 (try --keep-f32)");
  // Functions the entry calls are inlined first, as the pipelines and the
  // C++ API do; a call left (recursive, or of a declaration) is an error.
  if (failed(kiln::inlineCalls(module)))
    return 1; // diagnosed
  std::string vjpName = entry + "_vjp";
  while (module.lookupSymbol(vjpName))
    vjpName += "_";
  if (failed(kiln::deriveVJP(function, vjpName)))
    return 1; // diagnosed

  auto forward = Executable::compile(module, entry);
  if (!forward)
    return fail(1, llvm::toString(forward.takeError()));
  auto vjp = Executable::compile(module, vjpName);
  if (!vjp)
    return fail(1, llvm::toString(vjp.takeError()));

  // Arguments: from --input, or random.
  const std::vector<TensorSpec> &argSpecs = (*forward)->getInputs();
  const std::vector<TensorSpec> &resultSpecs = (*forward)->getOutputs();
  std::mt19937_64 rng(seed);
  std::vector<HostTensor> args;
  if (!inputPaths.empty() && inputPaths.size() != argSpecs.size())
    return fail(1, "@" + entry + " takes " + llvm::Twine(argSpecs.size()) +
                       " argument(s) but " + llvm::Twine(inputPaths.size()) +
                       " --input file(s) were given");
  for (auto [index, spec] : llvm::enumerate(argSpecs)) {
    if (inputPaths.empty()) {
      if (!isFloat(spec.dtype))
        return fail(1, "argument #" + llvm::Twine(index) + " of @" + entry +
                           " is " + spec.typeString() +
                           ": give every argument with --input");
      args.push_back(randomTensor(spec, rng));
      continue;
    }
    auto tensor = readNpy(inputPaths[index]);
    if (!tensor)
      return fail(1, llvm::toString(tensor.takeError()));
    std::string actual = tensor->typeString();
    std::optional<HostTensor> converted =
        convertInput(std::move(*tensor), spec);
    if (!converted)
      return fail(1, "argument #" + llvm::Twine(index) + " of @" + entry +
                         " expects " + spec.typeString() + " but " +
                         inputPaths[index] + " holds " + actual);
    args.push_back(std::move(*converted));
  }
  std::vector<HostTensor> cotangents;
  for (const TensorSpec &spec : resultSpecs)
    if (isFloat(spec.dtype))
      cotangents.push_back(randomTensor(spec, rng));
  // The directions of --directions, per float argument (drawn after the
  // inputs and cotangents, which are then those of the element-wise check).
  std::vector<std::vector<HostTensor>> directionsOf(argSpecs.size());
  for (auto [index, spec] : llvm::enumerate(argSpecs))
    if (isFloat(spec.dtype))
      for (int k = 0; k < directions; ++k)
        directionsOf[index].push_back(randomTensor(spec, rng));

  auto pointers = [](const std::vector<HostTensor> &tensors) {
    std::vector<const HostTensor *> out;
    for (const HostTensor &t : tensors)
      out.push_back(&t);
    return out;
  };
  auto runError = [&](llvm::Error err) {
    return fail(2, llvm::toString(std::move(err)));
  };

  // Analytic gradients.
  std::vector<const HostTensor *> vjpArgs = pointers(args);
  for (const HostTensor &ct : cotangents)
    vjpArgs.push_back(&ct);
  std::vector<HostTensor> gradients;
  if (llvm::Error err = (*vjp)->run(vjpArgs, gradients))
    return runError(std::move(err));

  // The float results' elements, flattened, and their cotangents alike.
  std::vector<HostTensor> results;
  std::vector<double> weights, units;
  for (const HostTensor &ct : cotangents)
    for (int64_t i = 0, e = ct.getNumElements(); i < e; ++i)
      weights.push_back(load(ct, i));
  auto outputs = [&](std::vector<double> &values) -> llvm::Error {
    if (llvm::Error err = (*forward)->run(pointers(args), results))
      return err;
    values.clear();
    units.clear();
    for (const HostTensor &r : results)
      if (isFloat(r.getDType()))
        for (int64_t i = 0, e = r.getNumElements(); i < e; ++i) {
          values.push_back(load(r, i));
          // The rounding of an element: half its type's epsilon, relative.
          units.push_back(r.getDType() == DType::F64 ? 0x1p-53 : 0x1p-24);
        }
    return llvm::Error::success();
  };
  // dL/dx for L(x) = sum_j <ct_j, f_j(x)>, the central difference of each
  // result element weighted afterwards: a large result that does not
  // depend on x (a clamped product of 1.5^80) would otherwise swamp the
  // others' differences in the rounding of L. Unchanged elements
  // (infinities included) contribute 0.
  // The difference is exact only to the rounding of the results: each
  // element's f(x +- eps u) is off by up to half an ulp, independently, so
  // the weighted sum is off by about sqrt(sum_j (w_j ulp_j)^2) / 2eps
  // (`rounding`), which the check allows four times over -- a sum over
  // 262144 elements of 2e5 each, in f64 with eps 1e-8, is good to about
  // 0.6 in a derivative of 370, past rtol's 0.37.
  std::vector<double> plus, minus;
  double rounding = 0;
  auto derivative = [&]() {
    double sum = 0, squares = 0;
    for (size_t j = 0; j < weights.size(); ++j) {
      if (plus[j] != minus[j])
        sum += weights[j] * (plus[j] - minus[j]);
      if (std::isfinite(plus[j]) && std::isfinite(minus[j])) {
        double error =
            weights[j] * units[j] * (std::fabs(plus[j]) + std::fabs(minus[j]));
        squares += error * error;
      }
    }
    rounding = std::sqrt(squares) / (2 * eps);
    return sum / (2 * eps);
  };

  llvm::outs() << llvm::formatv(
      "kiln-gradcheck: @{0}: {1} (eps {2:e}, atol {3:e}, rtol {4:e}){5}\n",
      entry, keepF32 ? "as written" : "promoted to f64", eps, atol, rtol,
      directions
          ? llvm::formatv(", {0} random direction(s) per argument", directions)
                .str()
          : std::string());
  bool allMatch = true;
  size_t gradientIndex = 0;
  for (size_t index = 0; index < argSpecs.size(); ++index) {
    const TensorSpec &spec = argSpecs[index];
    if (!isFloat(spec.dtype))
      continue;
    HostTensor &arg = args[index];
    const HostTensor &analytic = gradients[gradientIndex++];
    double worst = 0;
    int64_t mismatches = 0;
    // One check: `got` against `numeric`, `what` naming it in a report.
    auto check = [&](double got, double numeric, const llvm::Twine &what) {
      double difference = std::fabs(got - numeric);
      bool match = difference <= atol + rtol * std::fabs(numeric) +
                                     kRoundingAllowance * rounding ||
                   (std::isnan(got) && std::isnan(numeric));
      if (!std::isnan(difference))
        worst = std::max(worst, difference);
      if (!match && mismatches++ < 5)
        llvm::outs() << llvm::formatv(
            "  argument #{0} {1}: analytic {2:e}, numeric {3:e}\n", index,
            what.str(), got, numeric);
      allMatch &= match;
    };
    int64_t count = arg.getNumElements();
    if (directions) {
      // Along u: x +- eps u, every element at once; the gradient's
      // projection <g, u> in f64, in element order.
      std::vector<double> original(count);
      for (int64_t i = 0; i < count; ++i)
        original[i] = load(arg, i);
      for (auto [k, u] : llvm::enumerate(directionsOf[index])) {
        for (int sign : {1, -1}) {
          for (int64_t i = 0; i < count; ++i)
            store(arg, i, original[i] + sign * eps * load(u, i));
          if (llvm::Error err = outputs(sign > 0 ? plus : minus))
            return runError(std::move(err));
        }
        double projection = 0;
        for (int64_t i = 0; i < count; ++i)
          projection += load(analytic, i) * load(u, i);
        check(projection, derivative(), "direction " + llvm::Twine(k));
      }
      for (int64_t i = 0; i < count; ++i)
        store(arg, i, original[i]);
    } else {
      for (int64_t i = 0; i < count; ++i) {
        double original = load(arg, i);
        store(arg, i, original + eps);
        if (llvm::Error err = outputs(plus))
          return runError(std::move(err));
        store(arg, i, original - eps);
        if (llvm::Error err = outputs(minus))
          return runError(std::move(err));
        store(arg, i, original);
        check(load(analytic, i), derivative(), "element " + llvm::Twine(i));
      }
    }
    llvm::outs() << llvm::formatv(
        "  argument #{0} {1}: {2} elements{3}, max |analytic - numeric| = "
        "{4:e}{5}\n",
        index, spec.typeString(), count,
        directions ? llvm::formatv(", {0} direction(s)", directions).str()
                   : std::string(),
        worst,
        mismatches ? llvm::formatv(", {0} mismatch(es)", mismatches).str()
                   : std::string(", ok"));
  }
  llvm::outs() << (allMatch ? "PASS\n" : "FAIL\n");
  return allMatch ? 0 : 3;
}
