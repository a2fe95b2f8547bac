/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Device.h"

#include <gtest/gtest.h>

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
