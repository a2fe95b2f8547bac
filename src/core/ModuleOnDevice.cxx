/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModuleOnDevice.h"

#include <torch/nn/module.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace agcl {
namespace {

struct Use
{
  c10::Device device;
  int         users;
};

// Every module in use, with its device and its number of users; one lock for all (held only
// while a module is taken, moved or given back, never while it runs).
std::mutex &
UseLock()
{
  static std::mutex lock;
  return lock;
}

std::map<const torch::nn::Module *, Use> &
InUse()
{
  static std::map<const torch::nn::Module *, Use> uses;
  return uses;
}

// Where the module's weights are now (the first parameter or buffer; CPU for a module with none).
c10::Device
DeviceOf(const torch::nn::Module & module)
{
  for (const auto & p : module.parameters(true))
    return p.device();
  for (const auto & b : module.buffers(true))
    return b.device();
  return c10::Device(c10::kCPU);
}

} // namespace

ModuleOnDevice::ModuleOnDevice(torch::nn::Module & module, const c10::Device & device)
  : m_Module(&module)
{
  const std::lock_guard<std::mutex> guard(UseLock());
  auto                              it = InUse().find(&module);
  if (it != InUse().end())
  {
    if (it->second.device != device)
      throw std::invalid_argument("the network '" + module.name() + "' is in use on " + it->second.device.str() +
                                  " by " + std::to_string(it->second.users) + " other run(s); it cannot run on " +
                                  device.str() + " at the same time: load the model once per device");
    ++it->second.users;
    return;
  }
  if (DeviceOf(module) != device)
    module.to(device);
  if (module.is_training())
    module.eval();
  InUse().emplace(&module, Use{ device, 1 });
}

ModuleOnDevice::~ModuleOnDevice()
{
  const std::lock_guard<std::mutex> guard(UseLock());
  auto                              it = InUse().find(m_Module);
  if (it != InUse().end() && --it->second.users == 0)
    InUse().erase(it);
}

int
ModuleOnDevice::Users(const torch::nn::Module & module)
{
  const std::lock_guard<std::mutex> guard(UseLock());
  const auto                        it = InUse().find(&module);
  return it == InUse().end() ? 0 : it->second.users;
}

} // namespace agcl
