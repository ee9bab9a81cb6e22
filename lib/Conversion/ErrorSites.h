//===- ErrorSites.h - Sites of runtime index checks -------------*- C++ -*-===//
//
// A runtime index check reports its site by number; the module attribute
// kiln.error_sites maps the numbers to "op at file:line:col", which the
// runtime puts in its message. Shared by the passes that make checks.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_CONVERSION_ERRORSITES_H
#define KILN_LIB_CONVERSION_ERRORSITES_H

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace kiln::conversion {

/// The sites of one pass run: those already in the module, then the new.
struct ErrorSites {
  llvm::SmallVector<std::string> sites;

  /// The sites recorded in `module` by earlier passes.
  static ErrorSites load(mlir::ModuleOp module) {
    ErrorSites result;
    if (auto existing =
            module->getAttrOfType<mlir::ArrayAttr>(kErrorSitesAttrName))
      for (auto site : existing.getAsValueRange<mlir::StringAttr>())
        result.sites.push_back(site.str());
    return result;
  }

  /// Records every site in `module` (no attribute when there is none).
  void save(mlir::ModuleOp module) const {
    llvm::SmallVector<mlir::Attribute> attrs;
    for (const std::string &site : sites)
      attrs.push_back(mlir::StringAttr::get(module.getContext(), site));
    if (attrs.empty())
      module->removeAttr(kErrorSitesAttrName);
    else
      module->setAttr(kErrorSitesAttrName,
                      mlir::ArrayAttr::get(module.getContext(), attrs));
  }

  /// Registers a check of `op` and returns its site number. A check that
  /// is not of an index names its `problem`, which becomes part of the
  /// site's text ("arith.divsi at f.mlir:2:8: integer division by zero");
  /// it reports a negative size, so that the runtime prints the text alone.
  int64_t add(mlir::Operation *op, llvm::StringRef problem = {}) {
    std::string text;
    llvm::raw_string_ostream os(text);
    mlir::Location loc = op->getLoc();
    // Ops made by decomposing a user's op carry its name (e.g. the gather
    // of kiln.cross_entropy): report the user's op.
    if (auto named = llvm::dyn_cast<mlir::NameLoc>(loc);
        named && named.getName().getValue().starts_with("kiln."))
      os << named.getName().getValue() << " at ";
    else
      os << op->getName() << " at ";
    mlir::FileLineColLoc fileLoc;
    loc->walk([&](mlir::Location nested) {
      if (auto f = llvm::dyn_cast<mlir::FileLineColLoc>(nested)) {
        fileLoc = f;
        return mlir::WalkResult::interrupt();
      }
      return mlir::WalkResult::advance();
    });
    if (fileLoc)
      os << fileLoc.getFilename().getValue() << ":" << fileLoc.getLine() << ":"
         << fileLoc.getColumn();
    else
      loc.print(os);
    if (!problem.empty())
      os << ": " << problem;
    sites.push_back(text);
    return sites.size() - 1;
  }
};

/// Reports `index` and `size` (i64 or index values; a negative size makes
/// the site's text the message) at `site` when `condition` holds.
inline void reportIf(mlir::OpBuilder &b, mlir::Location loc,
                     mlir::Value condition, mlir::Value index, mlir::Value size,
                     int64_t site) {
  mlir::scf::IfOp::create(
      b, loc, condition, [&](mlir::OpBuilder &then, mlir::Location l) {
        auto toI64 = [&](mlir::Value value) -> mlir::Value {
          if (!value.getType().isIndex())
            return value;
          return mlir::arith::IndexCastOp::create(then, l, then.getI64Type(),
                                                  value);
        };
        ReportIndexErrorOp::create(then, l, toI64(index), toI64(size),
                                   then.getI64IntegerAttr(site));
        mlir::scf::YieldOp::create(then, l);
      });
}

} // namespace kiln::conversion

#endif // KILN_LIB_CONVERSION_ERRORSITES_H
