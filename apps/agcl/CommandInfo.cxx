/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl info: versions of the module, ITK and LibTorch; CUDA devices; threads.

#include "Subcommands.h"

#include "agcl/BuildInfo.h"

#include "itkVersion.h"

#include <iostream>

namespace agcl::cli {

void
RegisterInfo(CLI::App & app, Runner & runner)
{
  CLI::App * sub = app.add_subcommand("info", "Print versions, CUDA devices and the thread count");
  sub->callback([&runner]() {
    runner = []() {
      std::cout << agcl::BuildSummary() << "ITK " << itk::Version::GetITKVersion() << std::endl;
      return kSuccess;
    };
  });
}

} // namespace agcl::cli
