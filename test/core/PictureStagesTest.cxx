/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PictureStages.h"

#include "../common/TinyModelConfig.h"
#include "agcl/AGCLModel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

// The references below work pixel by pixel in double precision from the definitions (corner sums
// with clamped neighbour indices, distances to every organ pixel, tile coverage by brute force),
// not with the tensor code's formulation.
namespace {

agcl::ModelConfig
PictureConfig()
{
  agcl::ModelConfig config = agcl::test::TinyPictureConfig();
  config.channel_mean = { 120.0, 110.0, 100.0 };
  config.channel_std = { 60.0, 55.0, 50.0 };
  config.patch_size = 8;
  config.patch_spacing_mm = 0.7;
  config.margin_mm = 2.5;
  config.coarse_spacing_mm = { 3.0, 2.0, 1.0 };
  return config;
}

torch::Tensor
RandomPicture(int64_t H, int64_t W, uint64_t seed)
{
  torch::manual_seed(seed);
  return torch::randint(0, 256, { 3, H, W }, torch::kFloat);
}

// A few discs of each organ's class on an H x W class map (0 background).
torch::Tensor
Blobs(int64_t H, int64_t W)
{
  torch::Tensor classes = torch::zeros({ H, W }, torch::kLong);
  auto          c = classes.accessor<int64_t, 2>();
  const double  blobs[][4] = { { 6, 5, 3.2, 1 }, { 20, 16, 4.5, 2 }, { 25, 4, 2.0, 1 } }; // x, y, radius, class
  for (const auto & b : blobs)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if (std::hypot(x - b[0], y - b[1]) <= b[2])
          c[y][x] = static_cast<int64_t>(b[3]);
  return classes;
}

// Bilinear value at continuous index (x, y): the sum over the 4 corners of floor(c), each index
// clamped to the picture, weighted by the 1-D weights; 0 outside [-0.5, n - 0.5).
double
ReferenceValue(const torch::Tensor & channel, double x, double y)
{
  const auto    v = channel.accessor<double, 2>();
  const int64_t H = channel.size(0), W = channel.size(1);
  if (std::floor(x + 0.5) < 0 || std::floor(x + 0.5) >= W || std::floor(y + 0.5) < 0 || std::floor(y + 0.5) >= H)
    return 0.0;
  const double fx = std::floor(x), fy = std::floor(y);
  double       sum = 0.0;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
    {
      const double  wx = a ? x - fx : 1.0 - (x - fx), wy = b ? y - fy : 1.0 - (y - fy);
      const int64_t ix = std::clamp<int64_t>(static_cast<int64_t>(fx) + a, 0, W - 1);
      const int64_t iy = std::clamp<int64_t>(static_cast<int64_t>(fy) + b, 0, H - 1);
      sum += wx * wy * v[iy][ix];
    }
  return sum;
}

} // namespace

TEST(PictureStages, CoarseGridSharesTheLowerEdgesAndMapsBothWays)
{
  const agcl::ModelConfig     config = PictureConfig();
  const std::array<double, 2> spacing{ 0.8, 1.3 };
  const auto                  grid = agcl::CoarseGridOfPicture(23, 31, spacing, config);
  // ceil(extent / coarse spacing): x 31 * 0.8 / 3 = 8.27 -> 9, y 23 * 1.3 / 2 = 14.95 -> 15.
  EXPECT_EQ(grid.size, (std::array<int64_t, 3>{ 1, 15, 9 }));
  const double s[3] = { 1.0, spacing[1], spacing[0] }, sc[3] = { 1.0, 2.0, 3.0 };
  for (int a = 1; a < 3; ++a)
    for (int j = 0; j < 5; ++j)
    {
      // Coarse voxel j's centre at (j + 1/2) sc from the common lower edge: picture index c with
      // (c + 1/2) s equal to it.
      const double c = (j + 0.5) * sc[a] / s[a] - 0.5;
      EXPECT_NEAR(grid.fromPicture[a].scale * j + grid.fromPicture[a].offset, c, 1e-12);
      EXPECT_NEAR(grid.toPicture[a].scale * c + grid.toPicture[a].offset, j, 1e-12);
    }
}

TEST(PictureStages, PatchesAreTheNormalisedBilinearPictureAndTheNearestAttention)
{
  agcl::ModelConfig             config = PictureConfig();
  const std::array<double, 2>   spacing{ 0.8, 1.3 };
  const int64_t                 H = 23, W = 31, P = config.patch_size;
  const agcl::Picture           picture{ RandomPicture(H, W, 3), spacing };
  const torch::Tensor           attention = agcl::AttentionOfClasses(Blobs(H, W), 2, spacing, config.margin_mm);
  std::vector<agcl::PatchFrame> frames = agcl::PicturePatchFrames(attention, spacing, config, 5, 7);
  ASSERT_EQ(frames.size(), 10u);
  agcl::PatchFrame outside; // partly outside the picture, corner at (-3.2, -2.6)
  outside.first = { -3.2, -2.6, 0.0 };
  outside.column = { 0.7 / 0.8, 0.0, 0.0 };
  outside.row = { 0.0, 0.7 / 1.3, 0.0 };
  outside.organ = 1;
  outside.planar = true;
  frames.push_back(outside);
  const torch::Tensor patches = agcl::SamplePicturePatches(picture, attention, frames, config);
  ASSERT_EQ(patches.sizes(), (std::vector<int64_t>{ 11, 4, P, P }));
  const auto att = attention.accessor<bool, 3>();
  const auto out = patches.accessor<float, 4>();
  int        outsidePixels = 0;
  for (size_t n = 0; n < frames.size(); ++n)
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
      {
        const auto & f = frames[n];
        const double x = f.first[0] + q * f.column[0] + r * f.row[0], y = f.first[1] + q * f.column[1] + r * f.row[1];
        const bool   in =
          std::floor(x + 0.5) >= 0 && std::floor(x + 0.5) < W && std::floor(y + 0.5) >= 0 && std::floor(y + 0.5) < H;
        outsidePixels += in ? 0 : 1;
        for (int c = 0; c < 3; ++c)
        {
          const torch::Tensor channel =
            ((picture.pixels[c].to(torch::kDouble) - config.channel_mean[c]) / config.channel_std[c]);
          EXPECT_NEAR(out[n][c][r][q], ReferenceValue(channel, x, y), 2e-5)
            << "patch " << n << " (" << q << ", " << r << ")";
        }
        const bool attended =
          in && att[f.organ][static_cast<int64_t>(std::floor(y + 0.5))][static_cast<int64_t>(std::floor(x + 0.5))];
        EXPECT_EQ(out[n][3][r][q], attended ? 1.0f : 0.0f);
      }
  EXPECT_GT(outsidePixels, 0); // the border rule was exercised
  // Without statistics the channels are clipped to the window and scaled to 0..1.
  config.channel_mean.clear();
  config.channel_std.clear();
  config.window_low = 50;
  config.window_high = 200;
  const torch::Tensor windowed = agcl::SamplePicturePatches(picture, attention, frames, config);
  const auto &        f = frames[0];
  const double        x = f.first[0] + 3 * f.column[0], y = f.first[1] + 2 * f.row[1];
  const torch::Tensor channel = ((picture.pixels[1].to(torch::kDouble) - 50.0) / 150.0).clamp(0.0, 1.0);
  EXPECT_NEAR(windowed[0][1][2][3].item<double>(), ReferenceValue(channel, x, y), 2e-6);
}

TEST(PictureStages, AttentionIsEveryPixelWithinTheMarginOfItsClass)
{
  const std::array<double, 2> spacing{ 0.8, 1.3 };
  const torch::Tensor         classes = Blobs(23, 31);
  const double                margin = 2.5;
  const torch::Tensor         attention = agcl::AttentionOfClasses(classes, 2, spacing, margin);
  const auto                  c = classes.accessor<int64_t, 2>();
  const auto                  a = attention.accessor<bool, 3>();
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t y = 0; y < 23; ++y)
      for (int64_t x = 0; x < 31; ++x)
      {
        double nearest = 1e300;
        for (int64_t v = 0; v < 23; ++v)
          for (int64_t u = 0; u < 31; ++u)
            if (c[v][u] == o + 1)
              nearest = std::min(nearest, std::hypot((x - u) * spacing[0], (y - v) * spacing[1]));
        EXPECT_EQ(a[o][y][x], nearest <= margin + 1e-6) << "organ " << o << " at (" << x << ", " << y << ")";
      }
}

TEST(PictureStages, InferenceTilesCoverEveryAttentionPixelAndTrainingCentresLieInIt)
{
  agcl::ModelConfig config = PictureConfig();
  for (const std::array<double, 2> spacing : { std::array<double, 2>{ 1.0, 1.0 }, std::array<double, 2>{ 0.5, 2.0 } })
  {
    const torch::Tensor attention = agcl::AttentionOfClasses(Blobs(23, 31), 2, spacing, 1.0);
    const auto          a = attention.accessor<bool, 3>();
    const auto          tiles = agcl::PicturePatchFrames(attention, spacing, config, 0, 0, 0.25);
    const double        P = config.patch_size;
    for (int64_t o = 0; o < 2; ++o)
      for (int64_t y = 0; y < 23; ++y)
        for (int64_t x = 0; x < 31; ++x)
        {
          if (!a[o][y][x])
            continue;
          bool covered = false;
          for (const auto & f : tiles)
          {
            const double q = (x - f.first[0]) / f.column[0], r = (y - f.first[1]) / f.row[1];
            covered |= f.organ == o && q >= -0.5 && q < P - 0.5 && r >= -0.5 && r < P - 0.5;
          }
          EXPECT_TRUE(covered) << "organ " << o << " pixel (" << x << ", " << y << ")";
        }
    const auto training = agcl::PicturePatchFrames(attention, spacing, config, 6, 11);
    ASSERT_EQ(training.size(), 12u);
    for (const auto & f : training)
    {
      // The centre pixel (P/2 steps from the first) is an attention pixel of the frame's organ.
      const double x = f.first[0] + (config.patch_size / 2) * f.column[0];
      const double y = f.first[1] + (config.patch_size / 2) * f.row[1];
      ASSERT_NEAR(x, std::round(x), 1e-9);
      ASSERT_NEAR(y, std::round(y), 1e-9);
      EXPECT_TRUE(a[f.organ][std::lround(y)][std::lround(x)]);
      EXPECT_NEAR(f.column[0] * spacing[0], config.patch_spacing_mm, 1e-12);
      EXPECT_NEAR(f.row[1] * spacing[1], config.patch_spacing_mm, 1e-12);
    }
    const auto again = agcl::PicturePatchFrames(attention, spacing, config, 6, 11);
    const auto other = agcl::PicturePatchFrames(attention, spacing, config, 6, 12);
    bool       same = true, differs = false;
    for (size_t n = 0; n < training.size(); ++n)
    {
      same &= again[n].first == training[n].first;
      differs |= other[n].first != training[n].first;
    }
    EXPECT_TRUE(same);
    EXPECT_TRUE(differs);
  }
  // Shapes that do not fit are refused.
  EXPECT_THROW(agcl::PicturePatchFrames(torch::zeros({ 3, 5, 5 }, torch::kBool), { 1.0, 1.0 }, config, 0, 0),
               std::invalid_argument);
}

TEST(PictureStages, MasksMarkTheOrganAndIgnoreVoidAndOutside)
{
  const int64_t H = 12, W = 14, P = 6;
  torch::manual_seed(5);
  torch::Tensor labels = torch::randint(0, 3, { H, W }, torch::kByte);
  labels.index_put_({ torch::indexing::Slice(2, 5), torch::indexing::Slice(3, 9) }, 255);
  std::vector<agcl::PatchFrame> frames(3);
  frames[0].first = { 1.3, 0.6, 0 };
  frames[0].column = { 1.1, 0, 0 };
  frames[0].row = { 0, 0.9, 0 };
  frames[0].organ = 0;
  frames[1] = frames[0];
  frames[1].first = { 10.2, 8.7, 0 }; // runs past the right and bottom edges
  frames[1].organ = 1;
  frames[2] = frames[0];
  frames[2].first = { -2.0, -1.4, 0 };
  const torch::Tensor masks = agcl::SamplePictureMasks(labels, frames, P, { 1, 2 }, 255);
  ASSERT_EQ(masks.sizes(), (std::vector<int64_t>{ 3, P, P }));
  const auto l = labels.accessor<uint8_t, 2>();
  const auto m = masks.accessor<int64_t, 3>();
  int        counts[3] = { 0, 0, 0 };
  for (int n = 0; n < 3; ++n)
    for (int r = 0; r < P; ++r)
      for (int q = 0; q < P; ++q)
      {
        const double x = frames[n].first[0] + q * 1.1, y = frames[n].first[1] + r * 0.9;
        const long   ix = std::lround(std::floor(x + 0.5)), iy = std::lround(std::floor(y + 0.5));
        int64_t      expected;
        if (ix < 0 || ix >= W || iy < 0 || iy >= H || l[iy][ix] == 255)
          expected = -1;
        else
          expected = l[iy][ix] == (n == 1 ? 2 : 1) ? 1 : 0;
        EXPECT_EQ(m[n][r][q], expected) << n << " " << q << " " << r;
        ++counts[expected + 1];
      }
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(PictureStages, SegmentPictureLabelsExactlyTheAttendedPixelsAtThresholdZero)
{
  // An untrained model: its decisions are arbitrary, but with every organ's threshold at 0 each
  // pixel that some organ attends (and that a tile covers: all of them) must get an organ, a
  // pixel no organ attends stays background, and at threshold 1 nothing is labelled.
  agcl::ModelConfig config = PictureConfig();
  config.patch_size = 16;
  config.patch_spacing_mm = 0.0;
  config.threshold = 0.0;
  torch::manual_seed(1);
  agcl::AGCLModel     model(config);
  const agcl::Picture picture{ RandomPicture(40, 52, 9), { 1.0, 1.0 } };
  const auto          coarse = agcl::CoarsePicture(model, picture, torch::kCPU);
  ASSERT_EQ(coarse.attention.sizes(), (std::vector<int64_t>{ 2, 40, 52 }));
  ASSERT_GT(coarse.attention.sum().item<int64_t>(), 0) << "the untrained coarse network attends nothing";
  // The coarse classes are the network's classes on the coarse grid, brought back by nearest
  // neighbour: pixel centre (i + 1/2) lies in coarse voxel floor((i + 1/2) / sc).
  const torch::Tensor onGrid = model.PredictCoarseClasses(agcl::PictureOnCoarseGrid(picture, config), torch::kCPU);
  const auto          g = onGrid.accessor<uint8_t, 3>();
  const auto          k = coarse.classes.accessor<uint8_t, 2>();
  for (int64_t y = 0; y < 40; ++y)
    for (int64_t x = 0; x < 52; ++x)
      ASSERT_EQ(k[y][x], g[0][static_cast<int64_t>((y + 0.5) / 2.0)][static_cast<int64_t>((x + 0.5) / 3.0)]);

  const auto result = agcl::SegmentPicture(model, picture, torch::kCPU);
  ASSERT_EQ(result.labels.sizes(), (std::vector<int64_t>{ 40, 52 }));
  EXPECT_GT(result.patches, 0);
  const torch::Tensor attended = coarse.attention.any(0);
  EXPECT_TRUE(torch::equal(result.labels.ne(0), attended));
  // Each labelled pixel is attended by its organ.
  const auto l = result.labels.accessor<uint8_t, 2>();
  const auto a = coarse.attention.accessor<bool, 3>();
  for (int64_t y = 0; y < 40; ++y)
    for (int64_t x = 0; x < 52; ++x)
      if (l[y][x] != 0)
        ASSERT_TRUE(a[l[y][x] - 1][y][x]);

  config.threshold = 1.0; // an untrained decoder's softmax is never exactly 1
  torch::manual_seed(1);
  agcl::AGCLModel strict(config);
  EXPECT_EQ(agcl::SegmentPicture(strict, picture, torch::kCPU).labels.count_nonzero().item<int64_t>(), 0);

  // A 3D model or a picture with the wrong channels is refused.
  EXPECT_THROW(agcl::SegmentPicture(model, agcl::Picture{ torch::zeros({ 1, 8, 8 }) }, torch::kCPU),
               std::invalid_argument);
  agcl::AGCLModel volumeModel(agcl::test::TinyModelConfig());
  EXPECT_THROW(agcl::SegmentPicture(volumeModel, picture, torch::kCPU), std::invalid_argument);
}
