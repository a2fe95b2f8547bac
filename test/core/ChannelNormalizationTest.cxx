/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ChannelNormalization.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

TEST(NormalizeChannels, PerChannelStatisticsAndWindowsMatchTheFormulaPixelByPixel)
{
  // An 8-bit RGB picture [3, 4, 5]: with mean/std, (x - mean[c]) / std[c]; without, each channel
  // through the window to 0..1 (the patches' or the coarse network's). Naive loops in double.
  agcl::ModelConfig config;
  config.image_dimensions = 2;
  config.image_channels = 3;
  config.window_low = 0;
  config.window_high = 255;
  config.coarse_window_low = 50;
  config.coarse_window_high = 150;
  const torch::Tensor rgb = torch::randint(0, 256, { 3, 4, 5 }, torch::kByte);
  const auto          a = rgb.accessor<uint8_t, 3>();
  auto                expectEach = [&](const torch::Tensor & got, auto formula) {
    ASSERT_EQ(got.scalar_type(), torch::kFloat);
    ASSERT_EQ(got.sizes(), rgb.sizes());
    const auto g = got.accessor<float, 3>();
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 5; ++x)
          EXPECT_NEAR(g[c][y][x], formula(c, static_cast<double>(a[c][y][x])), 1e-6) << c << " " << y << " " << x;
  };
  expectEach(agcl::NormalizeChannels(rgb, config, agcl::NormalizationWindow::Patches),
             [](int64_t, double v) { return v / 255.0; });
  expectEach(agcl::NormalizeChannels(rgb, config, agcl::NormalizationWindow::Coarse),
             [](int64_t, double v) { return std::clamp((v - 50.0) / 100.0, 0.0, 1.0); });
  config.channel_mean = { 123.675, 116.28, 103.53 };
  config.channel_std = { 58.395, 57.12, 57.375 };
  for (const auto window : { agcl::NormalizationWindow::Patches, agcl::NormalizationWindow::Coarse })
    expectEach(agcl::NormalizeChannels(rgb, config, window),
               [&](int64_t c, double v) { return (v - config.channel_mean[c]) / config.channel_std[c]; });
  // CT: one channel, the HU window; the channel axis is required.
  agcl::ModelConfig   ct;
  const torch::Tensor hu = torch::tensor({ -1000.0, -175.0, 50.0, 275.0, 900.0 }).view({ 1, 5 });
  const torch::Tensor out = agcl::NormalizeChannels(hu, ct, agcl::NormalizationWindow::Patches);
  EXPECT_TRUE(torch::allclose(out, torch::tensor({ 0.0, 0.0, 0.5, 1.0, 1.0 }).view({ 1, 5 }).to(torch::kFloat)));
  try
  {
    agcl::NormalizeChannels(rgb, ct, agcl::NormalizationWindow::Patches);
    ADD_FAILURE() << "a 3-channel image for a 1-channel model was accepted";
  }
  catch (const std::invalid_argument & e)
  {
    EXPECT_NE(std::string(e.what()).find("image has shape [3, 4, 5]; expected [1, ...]"), std::string::npos)
      << e.what();
  }
  EXPECT_THROW(agcl::NormalizeChannels(torch::Tensor(), ct, agcl::NormalizationWindow::Patches), std::invalid_argument);
}
