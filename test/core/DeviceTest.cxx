/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Device.h"
#include "agcl/ModuleOnDevice.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>

TEST(Device, ParsesCpuInAnyCase)
{
  EXPECT_EQ(agcl::ParseDevice("cpu"), c10::Device(c10::DeviceType::CPU));
  EXPECT_EQ(agcl::ParseDevice("CPU"), c10::Device(c10::DeviceType::CPU));
}

TEST(Device, MalformedTextIsRefusedWithTheText)
{
  for (const char * bad : { "", "gpu", "cuda:", "cuda:x", "cuda0", "cuda:-1", "cpu:0", "cuda:1:2" })
  {
    try
    {
      agcl::ParseDevice(bad);
      ADD_FAILURE() << "no exception for '" << bad << "'";
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(Device, CudaIsRefusedWithoutCudaAndAcceptedWithIt)
{
  if (agcl::CudaAvailable())
  {
    EXPECT_EQ(agcl::ParseDevice("cuda"), c10::Device(c10::DeviceType::CUDA, 0));
    EXPECT_EQ(agcl::ParseDevice("cuda:0"), c10::Device(c10::DeviceType::CUDA, 0));
    EXPECT_THROW(agcl::ParseDevice("cuda:" + std::to_string(agcl::CudaDeviceCount())), std::invalid_argument);
  }
  else
  {
    EXPECT_EQ(agcl::CudaDeviceCount(), 0);
    EXPECT_THROW(agcl::ParseDevice("cuda"), std::invalid_argument);
    EXPECT_THROW(agcl::ParseDevice("cuda:0"), std::invalid_argument);
  }
}

TEST(ModuleOnDevice, UsersOnOneDeviceShareTheModuleAndAnotherDeviceIsRefusedWhileItIsInUse)
{
  torch::nn::Linear linear(3, 2);
  linear->train();
  const at::Tensor weight = linear->weight.detach().clone();
  const void *     storage = linear->weight.data_ptr();
  EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 0);
  {
    agcl::ModuleOnDevice first(*linear, c10::Device(c10::kCPU));
    EXPECT_FALSE(linear->is_training()); // the first user puts it in eval mode
    EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 1);
    {
      agcl::ModuleOnDevice second(*linear, c10::Device(c10::kCPU));
      EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 2);
      // Another device while two runs use it on the CPU: refused before anything moves (so this
      // holds on a machine without CUDA as well), naming both devices.
      try
      {
        agcl::ModuleOnDevice other(*linear, c10::Device(c10::kCUDA, 0));
        ADD_FAILURE() << "took the module to another device while in use";
      }
      catch (const std::invalid_argument & e)
      {
        const std::string text = e.what();
        EXPECT_NE(text.find("in use on cpu by 2 other run(s)"), std::string::npos) << text;
        EXPECT_NE(text.find("cannot run on cuda:0"), std::string::npos) << text;
      }
      EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 2); // the refused one did not count
    }
    EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 1);
  }
  EXPECT_EQ(agcl::ModuleOnDevice::Users(*linear), 0);
  // Already on the device: the weights were not touched (same storage, same values).
  EXPECT_EQ(linear->weight.data_ptr(), storage);
  EXPECT_TRUE(torch::equal(linear->weight, weight));
}
