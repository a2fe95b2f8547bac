/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Device.h"

#include <ATen/Context.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace agcl {

bool
CudaAvailable()
{
  return at::hasCUDA() && CudaDeviceCount() > 0;
}

int
CudaDeviceCount()
{
  if (!at::hasCUDA())
  {
    return 0;
  }
  return static_cast<int>(at::getNumGPUs());
}

c10::Device
ParseDevice(const std::string & text)
{
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string expected = "expected 'cpu', 'cuda' or 'cuda:N'";
  if (lower == "cpu")
  {
    return c10::Device(c10::DeviceType::CPU);
  }
  if (lower.rfind("cuda", 0) != 0)
  {
    throw std::invalid_argument("device '" + text + "': " + expected);
  }
  int index = 0;
  if (lower.size() > 4)
  {
    const std::string digits = lower.substr(5);
    if (lower[4] != ':' || digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
    {
      throw std::invalid_argument("device '" + text + "': " + expected);
    }
    index = std::stoi(digits);
  }
  if (!at::hasCUDA())
  {
    throw std::invalid_argument("device '" + text + "': this LibTorch was built without CUDA; use 'cpu' or " +
                                "build against a CUDA LibTorch (Torch_DIR)");
  }
  const int count = CudaDeviceCount();
  if (index >= count)
  {
    throw std::invalid_argument("device '" + text + "': CUDA device " + std::to_string(index) + " does not exist (" +
                                std::to_string(count) + " visible)");
  }
  return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
}

} // namespace agcl
