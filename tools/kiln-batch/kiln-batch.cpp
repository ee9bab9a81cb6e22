//===- kiln-batch.cpp - Many kiln-run/kiln-gradcheck runs in one process --===//
//
// The numerical tests' driver (test/Integration/kiln_testing.py): it runs
// kiln-run and kiln-gradcheck command lines one after another in this
// process, through the same functions as the tools' mains (ToolMains.h), so
// that a test of hundreds of cases pays the process start-up -- loading and
// relocating libMLIR and libLLVM, about 0.1 s, twice that under the
// sanitizers -- once rather than per case.
//
// Protocol: one request per line on stdin, its fields separated by tabs:
//
//   TOOL <tab> STDOUT-FILE <tab> STDERR-FILE <tab> ARG <tab> ARG ...
//
// TOOL is kiln-run or kiln-gradcheck (or a path ending in one: the file name
// counts, not where it is), the ARGs its command line without the program
// name. The run's stdout and stderr go to the two files (created
// or truncated); its stdin is /dev/null. When it returns, its exit code is
// written to stdout as one line. End of input ends the process with exit
// code 0 (under LeakSanitizer, non-zero when anything leaked). A run that
// crashes takes the process with it: the client sees end of file instead
// of an exit code.
//
//===----------------------------------------------------------------------===//

#include "../ToolMains.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

/// Flushes every stream a tool writes to (llvm::outs() buffers; the C and
/// C++ streams may).
void flushAll() {
  llvm::outs().flush();
  llvm::errs().flush();
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

/// Opens `path` for a run's stdout or stderr (created or truncated);
/// returns the descriptor, or -1 with errno set.
int openOutput(llvm::StringRef path) {
  return open(path.str().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              0644);
}

int runTool(llvm::StringRef tool, llvm::ArrayRef<const char *> args) {
  llvm::StringRef name = llvm::sys::path::filename(tool);
  if (name == "kiln-run")
    return kiln::tools::runMain(args);
  if (name == "kiln-gradcheck")
    return kiln::tools::gradcheckMain(args);
  llvm::errs() << "kiln-batch: error: unknown tool '" << tool
               << "' (expected kiln-run or kiln-gradcheck)\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  if (argc != 1) {
    llvm::errs() << "usage: kiln-batch < REQUESTS (one per line: TOOL, "
                    "STDOUT-FILE, STDERR-FILE, ARGS..., separated by tabs)\n";
    return 1;
  }
  // The protocol's streams, moved off descriptors 0 and 1: those belong to
  // the runs.
  int requestFd = dup(STDIN_FILENO), replyFd = dup(STDOUT_FILENO);
  FILE *requests = requestFd < 0 ? nullptr : fdopen(requestFd, "r");
  int devNull = open("/dev/null", O_RDONLY);
  if (!requests || replyFd < 0 || devNull < 0) {
    llvm::errs() << "kiln-batch: error: cannot set up its streams: "
                 << std::strerror(errno) << "\n";
    return 1;
  }
  dup2(devNull, STDIN_FILENO);
  close(devNull);

  char *line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, requests)) > 0) {
    llvm::StringRef request(line, length);
    request.consume_back("\n");
    llvm::SmallVector<llvm::StringRef> fields;
    request.split(fields, '\t');
    if (fields.size() < 3) {
      llvm::errs() << "kiln-batch: error: malformed request '" << request
                   << "' (expected TOOL, STDOUT-FILE, STDERR-FILE, ARGS... "
                      "separated by tabs)\n";
      return 1;
    }
    std::vector<std::string> strings{fields[0].str()};
    for (llvm::StringRef arg : llvm::ArrayRef(fields).drop_front(3))
      strings.push_back(arg.str());
    std::vector<const char *> args;
    for (const std::string &arg : strings)
      args.push_back(arg.c_str());

    // Both files open before either descriptor moves: an error is reported
    // on this process's stderr.
    int outFile = openOutput(fields[1]);
    int errFile = outFile < 0 ? -1 : openOutput(fields[2]);
    if (errFile < 0) {
      llvm::errs() << "kiln-batch: error: cannot write "
                   << (outFile < 0 ? fields[1] : fields[2]) << ": "
                   << std::strerror(errno) << "\n";
      return 1;
    }
    flushAll();
    int savedOut = dup(STDOUT_FILENO), savedErr = dup(STDERR_FILENO);
    dup2(outFile, STDOUT_FILENO);
    dup2(errFile, STDERR_FILENO);
    close(outFile);
    close(errFile);
    int code = runTool(fields[0], args);
    flushAll();
    dup2(savedOut, STDOUT_FILENO);
    dup2(savedErr, STDERR_FILENO);
    close(savedOut);
    close(savedErr);

    std::string reply = std::to_string(code) + "\n";
    if (write(replyFd, reply.data(), reply.size()) !=
        static_cast<ssize_t>(reply.size()))
      return 1; // the client is gone
  }
  free(line);
  return 0;
}
