/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_BuildInfo_h
#define agcl_BuildInfo_h

#include <string>

namespace agcl {

/** The module's version, "MAJOR.MINOR.PATCH". */
std::string
Version();

/** A few lines describing the build and the machine: module and LibTorch
 *  versions, CUDA availability and devices, thread count. */
std::string
BuildSummary();

} // namespace agcl

#endif
