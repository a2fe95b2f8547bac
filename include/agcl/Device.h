/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_Device_h
#define agcl_Device_h

#include <c10/core/Device.h>

#include <string>

namespace agcl {

/** Parses "cpu", "cuda" or "cuda:N" into a device that can be used now.
 *  Throws std::invalid_argument naming the text and what was expected when the
 *  text is malformed, when LibTorch was built without CUDA, or when device N does
 *  not exist (a device that cannot be used is refused here, not at the first tensor). */
c10::Device
ParseDevice(const std::string & text);

/** Whether this LibTorch can use a CUDA device now. */
bool
CudaAvailable();

/** Number of CUDA devices visible (0 without CUDA). */
int
CudaDeviceCount();

} // namespace agcl

#endif
