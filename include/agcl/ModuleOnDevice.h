/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ModuleOnDevice_h
#define agcl_ModuleOnDevice_h

#include <c10/core/Device.h>

namespace torch::nn {
class Module;
}

namespace agcl {

/** Uses a network on a device for the life of the object, so that one model can serve several
 *  filters and threads at once (itk::AGCLModelObject shared by pipelines, Python threads with the
 *  GIL released). The first user moves the module to `device` and puts it in eval mode; users on
 *  the same device while it is in use share it without touching it (only reads of its weights, no
 *  data race); a user on another device while it is in use is refused with std::invalid_argument
 *  naming both devices (moving it would pull the weights from under the running users): give each
 *  device its own model (load the file once per device). When the last user ends, the next one
 *  may take it to any device. */
class ModuleOnDevice
{
public:
  ModuleOnDevice(torch::nn::Module & module, const c10::Device & device);
  ~ModuleOnDevice();
  ModuleOnDevice(const ModuleOnDevice &) = delete;
  ModuleOnDevice &
  operator=(const ModuleOnDevice &) = delete;

  /** How many users hold `module` now (tests). */
  static int
  Users(const torch::nn::Module & module);

private:
  const torch::nn::Module * m_Module;
};

} // namespace agcl

#endif
