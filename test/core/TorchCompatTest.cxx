/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Device.h"
#include "agcl/TorchCompat.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <regex>

TEST(TorchCompat, CompiledVersionIsMajorMinorPatch)
{
  const std::string version = agcl::CompiledTorchVersion();
  EXPECT_TRUE(std::regex_match(version, std::regex(R"(\d+\.\d+\.\d+)"))) << version;
  // Debian's 1.13 or a 2.x: the only two families the code is written for.
  EXPECT_TRUE(version.rfind("1.13.", 0) == 0 || version.rfind("2.", 0) == 0) << version;
}

namespace {
// Runs a float matmul under the guard and checks dtype and accuracy against a double reference.
void
CheckAutocastMatmul(c10::DeviceType deviceType)
{
  const c10::Device device(deviceType);
  at::manual_seed(7);
  const at::Tensor a = at::randn({ 32, 48 }, at::kDouble);
  const at::Tensor b = at::randn({ 48, 16 }, at::kDouble);
  const at::Tensor reference = at::matmul(a, b);
  const at::Tensor af = a.to(device, at::kFloat);
  const at::Tensor bf = b.to(device, at::kFloat);

  ASSERT_FALSE(agcl::AutocastGuard::IsEnabled(deviceType));
  const c10::ScalarType dtypeBefore = agcl::AutocastGuard::Dtype(deviceType);
  {
    agcl::AutocastGuard guard(deviceType, at::kBFloat16);
    EXPECT_TRUE(agcl::AutocastGuard::IsEnabled(deviceType));
    EXPECT_EQ(agcl::AutocastGuard::Dtype(deviceType), at::kBFloat16);
    const at::Tensor product = at::matmul(af, bf);
    EXPECT_EQ(product.scalar_type(), at::kBFloat16);
    const double relative = ((product.to(at::kCPU, at::kDouble) - reference).norm() / reference.norm()).item<double>();
    EXPECT_LT(relative, 1e-2);
    {
      agcl::AutocastGuard off(deviceType, at::kBFloat16, /*enabled=*/false);
      EXPECT_FALSE(agcl::AutocastGuard::IsEnabled(deviceType));
      EXPECT_EQ(at::matmul(af, bf).scalar_type(), at::kFloat);
    }
    EXPECT_TRUE(agcl::AutocastGuard::IsEnabled(deviceType)); // inner guard restored the outer state
  }
  EXPECT_FALSE(agcl::AutocastGuard::IsEnabled(deviceType));
  EXPECT_EQ(agcl::AutocastGuard::Dtype(deviceType), dtypeBefore);
  const at::Tensor full = at::matmul(af, bf);
  EXPECT_EQ(full.scalar_type(), at::kFloat);
  EXPECT_LT(((full.to(at::kCPU, at::kDouble) - reference).norm() / reference.norm()).item<double>(), 1e-5);
}
} // namespace

TEST(TorchCompat, AutocastGuardOnCpuRunsMatmulInBFloat16AndRestores)
{
  CheckAutocastMatmul(c10::DeviceType::CPU);
}

TEST(TorchCompat, AutocastGuardOnCudaRunsMatmulInBFloat16AndRestores)
{
  if (!agcl::CudaAvailable())
  {
    GTEST_SKIP() << "no CUDA device";
  }
  CheckAutocastMatmul(c10::DeviceType::CUDA);
}

TEST(TorchCompat, AutocastGuardRefusesOtherDeviceTypes)
{
  EXPECT_THROW(agcl::AutocastGuard guard(c10::DeviceType::Meta, at::kBFloat16), std::invalid_argument);
}
