// ctsnap: see tools/ctsnap/ctsnap.h for the commands.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "tools/ctsnap/ctsnap.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  const int rc = ctsync::ctsnap::Run(args, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1);
  std::cout.flush();
  return rc;
}
