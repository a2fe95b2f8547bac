/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/BuildInfo.h"

#include "agcl/Device.h"
#include "agcl/Threading.h"
#include "agcl/TorchCompat.h"

#include <sstream>

#ifndef AGCL_VERSION_STRING
#  error "AGCL_VERSION_STRING must be defined by the build"
#endif

namespace agcl {

std::string
Version()
{
  return AGCL_VERSION_STRING;
}

std::string
BuildSummary()
{
  std::ostringstream os;
  os << "AGCL for ITK " << Version() << "\n";
  os << "LibTorch " << CompiledTorchVersion() << "\n";
  os << "CUDA devices: " << CudaDeviceCount() << (CudaAvailable() ? "" : " (CPU only)") << "\n";
  os << "intra-op threads: " << CurrentThreads() << "\n";
  return os.str();
}

} // namespace agcl
