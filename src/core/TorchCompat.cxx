/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/TorchCompat.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

namespace agcl {

std::string
CompiledTorchVersion()
{
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

namespace {
void
CheckSupported(c10::DeviceType deviceType)
{
  if (deviceType != c10::DeviceType::CPU && deviceType != c10::DeviceType::CUDA)
  {
    throw std::invalid_argument("agcl::AutocastGuard: autocast is supported for CPU and CUDA only, got " +
                                c10::DeviceTypeName(deviceType));
  }
}

void
SetEnabled(c10::DeviceType deviceType, bool enabled)
{
#if AGCL_TORCH_VERSION_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(deviceType, enabled);
#else
  if (deviceType == c10::DeviceType::CUDA)
  {
    at::autocast::set_enabled(enabled);
  }
  else
  {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

void
SetDtype(c10::DeviceType deviceType, c10::ScalarType dtype)
{
#if AGCL_TORCH_VERSION_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(deviceType, dtype);
#else
  if (deviceType == c10::DeviceType::CUDA)
  {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
  else
  {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}
} // namespace

bool
AutocastGuard::IsEnabled(c10::DeviceType deviceType)
{
  CheckSupported(deviceType);
#if AGCL_TORCH_VERSION_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(deviceType);
#else
  return deviceType == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

c10::ScalarType
AutocastGuard::Dtype(c10::DeviceType deviceType)
{
  CheckSupported(deviceType);
#if AGCL_TORCH_VERSION_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(deviceType);
#else
  return deviceType == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                             : at::autocast::get_autocast_cpu_dtype();
#endif
}

AutocastGuard::AutocastGuard(c10::DeviceType deviceType, c10::ScalarType dtype, bool enabled)
  : m_DeviceType(deviceType)
  , m_PreviousEnabled(IsEnabled(deviceType))
  , m_PreviousDtype(Dtype(deviceType))
{
  SetDtype(deviceType, dtype);
  SetEnabled(deviceType, enabled);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard()
{
  // The cast weight cache lives as long as the outermost autocast region.
  if (at::autocast::decrement_nesting() == 0)
  {
    at::autocast::clear_cache();
  }
  SetEnabled(m_DeviceType, m_PreviousEnabled);
  SetDtype(m_DeviceType, m_PreviousDtype);
}

c10::ScalarType
ParsePrecision(const std::string & text, c10::DeviceType deviceType)
{
  if (text == "float32")
    return c10::kFloat;
  if (text == "bfloat16")
    return c10::kBFloat16;
  if (text == "float16")
  {
    if (deviceType != c10::DeviceType::CUDA)
      throw std::invalid_argument("precision float16: autocast to float16 needs a CUDA device; on the CPU use "
                                  "bfloat16 or float32");
    return c10::kHalf;
  }
  throw std::invalid_argument("precision '" + text + "': expected float32, bfloat16 or float16");
}

} // namespace agcl
