/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_TorchCompat_h
#define agcl_TorchCompat_h

/** \file
 * The one place where differences between LibTorch 1.13 (Debian 12) and
 * LibTorch 2.x (PyTorch's own builds, CUDA) are hidden from the rest of the
 * code. Everything else includes this header instead of testing versions.
 */

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/csrc/api/include/torch/version.h>

#include <string>

#define AGCL_TORCH_VERSION_AT_LEAST(major, minor)                                                                      \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace agcl {

/** "1.13.1" or "2.5.0": the LibTorch the code was compiled against. */
std::string
CompiledTorchVersion();

/** RAII guard that enables automatic mixed precision (autocast) for one device
 *  type with a lower-precision dtype, and restores the previous state on exit.
 *
 *  LibTorch 1.13 has only global setters (at::autocast::set_enabled for CUDA,
 *  set_cpu_enabled for CPU, and per-device dtype setters); 2.4+ takes the device
 *  type as an argument. The guard also clears autocast's weight cache when the
 *  outermost guard exits, as torch.autocast does.
 *
 *  Usage: { agcl::AutocastGuard guard(c10::DeviceType::CUDA, at::kBFloat16); net->forward(x); }
 */
class AutocastGuard
{
public:
  AutocastGuard(c10::DeviceType deviceType, c10::ScalarType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard &) = delete;
  AutocastGuard &
  operator=(const AutocastGuard &) = delete;

  /** Whether autocast is enabled now for deviceType (CPU and CUDA are supported). */
  static bool
  IsEnabled(c10::DeviceType deviceType);
  /** The lower-precision dtype autocast uses now for deviceType. */
  static c10::ScalarType
  Dtype(c10::DeviceType deviceType);

private:
  c10::DeviceType m_DeviceType;
  bool            m_PreviousEnabled;
  c10::ScalarType m_PreviousDtype;
};

/** The networks' inference precision: "float32" (autocast off; the default), "bfloat16" (CPU
 *  or CUDA autocast) or "float16" (CUDA autocast only). Returns the autocast dtype, or
 *  c10::kFloat for "float32". std::invalid_argument naming the value and what was expected for
 *  another text, or for "float16" on a device that is not CUDA. */
c10::ScalarType
ParsePrecision(const std::string & text, c10::DeviceType deviceType);

} // namespace agcl

#endif
