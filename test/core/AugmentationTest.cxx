/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Device.h"
#include "agcl/PairedAugmentation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {
// Two-channel patches: random rectangles drawn identically into image and attention channels.
torch::Tensor
PatternBatch(int64_t n, int64_t size, uint64_t seed)
{
  torch::manual_seed(seed);
  torch::Tensor batch = torch::zeros({ n, 2, size, size });
  for (int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 3; ++r)
    {
      const int64_t y0 = torch::randint(0, size - 8, { 1 }).item<int64_t>();
      const int64_t x0 = torch::randint(0, size - 8, { 1 }).item<int64_t>();
      batch[i].slice(1, y0, y0 + 4 + r * 2).slice(2, x0, x0 + 8 - r).fill_(1.0);
    }
  return batch;
}

torch::Tensor
Parameters(double area, double aspect, double angle, double cx, double cy)
{
  return torch::tensor({ area, aspect, angle, cx, cy }, torch::kDouble).view({ 1, 5 });
}

// Naive bilinear sample of img [H, W] at continuous pixel position (x, y), zero outside.
double
Bilinear(const torch::TensorAccessor<double, 2> & img, int64_t h, int64_t w, double x, double y)
{
  const int64_t x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
  double        value = 0;
  for (int dy = 0; dy <= 1; ++dy)
    for (int dx = 0; dx <= 1; ++dx)
    {
      const int64_t xi = x0 + dx, yi = y0 + dy;
      const double  weight = (dx ? x - x0 : 1 - (x - x0)) * (dy ? y - y0 : 1 - (y - y0));
      if (xi >= 0 && xi < w && yi >= 0 && yi < h)
        value += weight * img[yi][xi];
    }
  return value;
}
} // namespace

TEST(PairedAugmentation, ImageAndAttentionStayAligned)
{
  const torch::Tensor      batch = PatternBatch(6, 32, 1);
  agcl::PairedAugmentation augmentation;
  const torch::Tensor      views = augmentation.Forward(batch, 7);
  ASSERT_EQ(views.sizes().vec(), (std::vector<int64_t>{ 12, 2, 32, 32 }));
  // The image channel went through the same bilinear sampling; thresholded it must equal the attention.
  EXPECT_TRUE(torch::equal(views.select(1, 0).ge(0.5).to(torch::kFloat), views.select(1, 1)));
  // Attention stays binary and is not empty for a pattern that covers the patch centre region.
  EXPECT_TRUE(torch::equal(views.select(1, 1), views.select(1, 1).round()));
  // The two views of a patch differ.
  EXPECT_FALSE(torch::equal(views.slice(0, 0, 6), views.slice(0, 6, 12)));
}

TEST(PairedAugmentation, KnownTransformsMatchANaiveResampler)
{
  torch::manual_seed(2);
  const int64_t            n = 16;
  const torch::Tensor      image = torch::rand({ 1, 1, n, n }, torch::kDouble);
  agcl::PairedAugmentation augmentation(agcl::PairedAugmentationOptions().image_channels(1));
  const torch::Tensor      in2d = image[0][0].contiguous();
  const auto               in = in2d.accessor<double, 2>();

  // Identity: the whole patch, no rotation.
  EXPECT_TRUE(torch::allclose(augmentation.Apply(image, Parameters(1.0, 1.0, 0.0, 0.0, 0.0)), image, 1e-9, 1e-12));

  // Rotation by 90 degrees: output (r, c) comes from input (row c, column n-1-r).
  const torch::Tensor rotated = augmentation.Apply(image, Parameters(1.0, 1.0, 90.0, 0.0, 0.0));
  const torch::Tensor rot2d = rotated[0][0].contiguous();
  const auto          rot = rot2d.accessor<double, 2>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c)
      ASSERT_NEAR(rot[r][c], in[c][n - 1 - r], 1e-9) << r << "," << c;

  // Crop of area 0.36 and aspect 1 (half-extent 0.6) centred at (0.2, -0.1), rotated 20 degrees.
  const double        cw = 0.6, ch = 0.6, cx = 0.2, cy = -0.1, a = 20.0 * M_PI / 180.0;
  const torch::Tensor cropped = augmentation.Apply(image, Parameters(0.36, 1.0, 20.0, cx, cy));
  const torch::Tensor out2d = cropped[0][0].contiguous();
  const auto          out = out2d.accessor<double, 2>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c)
    {
      const double u = (2.0 * c + 1) / n - 1, v = (2.0 * r + 1) / n - 1; // output point, normalised
      const double ui = std::cos(a) * cw * u - std::sin(a) * ch * v + cx;
      const double vi = std::sin(a) * cw * u + std::cos(a) * ch * v + cy;
      const double x = ((ui + 1) * n - 1) / 2, y = ((vi + 1) * n - 1) / 2; // input pixel position
      ASSERT_NEAR(out[r][c], Bilinear(in, n, n, x, y), 1e-9) << r << "," << c;
    }
}

TEST(PairedAugmentation, ParametersStayInTheirRangesOverManyDraws)
{
  agcl::PairedAugmentation augmentation;
  at::Generator            generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor      p = augmentation.SampleParameters(4000, generator);
  const torch::Tensor      area = p.select(1, 0), aspect = p.select(1, 1), angle = p.select(1, 2);
  EXPECT_GE(area.min().item<double>(), 0.3);
  EXPECT_LE(area.max().item<double>(), 0.7);
  EXPECT_LT(area.min().item<double>(), 0.31); // the whole range is used
  EXPECT_GT(area.max().item<double>(), 0.69);
  EXPECT_GE(aspect.min().item<double>(), 0.75 - 1e-12);
  EXPECT_LE(aspect.max().item<double>(), 4.0 / 3.0 + 1e-12);
  EXPECT_GE(angle.min().item<double>(), -30.0);
  EXPECT_LE(angle.max().item<double>(), 30.0);
  EXPECT_LT(angle.min().item<double>(), -29.0);
  EXPECT_GT(angle.max().item<double>(), 29.0);
  EXPECT_NEAR(angle.mean().item<double>(), 0.0, 1.0);
  // The unrotated crop lies inside the patch.
  const torch::Tensor cw = (area * aspect).sqrt(), ch = (area / aspect).sqrt();
  EXPECT_LE((p.select(1, 3).abs() + cw).max().item<double>(), 1.0 + 1e-12);
  EXPECT_LE((p.select(1, 4).abs() + ch).max().item<double>(), 1.0 + 1e-12);
}

TEST(PairedAugmentation, SameSeedSameViews)
{
  const torch::Tensor      batch = PatternBatch(4, 32, 4);
  agcl::PairedAugmentation augmentation;
  EXPECT_TRUE(torch::equal(augmentation.Forward(batch, 99), augmentation.Forward(batch, 99)));
  EXPECT_FALSE(torch::equal(augmentation.Forward(batch, 99), augmentation.Forward(batch, 100)));
}

TEST(PairedAugmentation, BadInputIsRejected)
{
  agcl::PairedAugmentation augmentation;
  EXPECT_THROW(augmentation.Forward(torch::zeros({ 2, 32, 32 }), 1), std::invalid_argument);
  EXPECT_THROW(augmentation.Forward(torch::zeros({ 2, 2, 32, 32 }, torch::kLong), 1), std::invalid_argument);
  EXPECT_THROW(augmentation.Apply(torch::zeros({ 2, 2, 8, 8 }), torch::zeros({ 3, 5 })), std::invalid_argument);
  EXPECT_THROW(augmentation.Forward(torch::full({ 1, 2, 8, 8 }, NAN), 1), std::invalid_argument);
  EXPECT_THROW(agcl::PairedAugmentation(agcl::PairedAugmentationOptions().min_area(0.8).max_area(0.5)),
               std::invalid_argument);
}

TEST(PairedAugmentation, SameViewsOnCuda)
{
  if (!agcl::CudaAvailable())
  {
    GTEST_SKIP() << "no CUDA device";
  }
  const torch::Tensor      batch = PatternBatch(4, 32, 5);
  agcl::PairedAugmentation augmentation;
  const torch::Tensor      cpu = augmentation.Forward(batch, 8);
  const torch::Tensor      gpu = augmentation.Forward(batch.to(torch::kCUDA), 8);
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(torch::allclose(gpu.cpu().select(1, 0), cpu.select(1, 0), 1e-4, 1e-5));
  // Thresholded attention may flip only where bilinear values sit on 0.5 within float error.
  EXPECT_LT((gpu.cpu().select(1, 1) - cpu.select(1, 1)).abs().sum().item<double>(), 4.0);
}
