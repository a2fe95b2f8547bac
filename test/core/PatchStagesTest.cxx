/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PatchStages.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

// The references below work voxel by voxel in double precision from the definitions (corner
// sums with clamped neighbour indices, per-pixel accumulation loops), not with the tensor code's
// formulation (lerps over clamped bases, index_add).
namespace {

using Frames = std::vector<agcl::PatchFrame>;

std::vector<c10::Device>
Devices()
{
  std::vector<c10::Device> devices{ c10::Device(c10::kCPU) };
  if (torch::cuda::is_available())
    devices.emplace_back(c10::kCUDA, 0);
  return devices;
}

// A frame with columns along +x and rows along +y at spacing s (voxels), or rotated by `angle`
// in the x-y plane and tilted by `tilt` toward z.
agcl::PatchFrame
Frame(std::array<double, 3> first, double s, double angle, double tilt, int64_t organ, bool planar)
{
  agcl::PatchFrame f;
  f.first = first;
  f.column = { s * std::cos(angle), s * std::sin(angle), 0.0 };
  f.row = { -s * std::sin(angle) * std::cos(tilt), s * std::cos(angle) * std::cos(tilt), s * std::sin(tilt) };
  f.organ = organ;
  f.planar = planar;
  return f;
}

// Volume value at (x, y, z) interpolated as the sum over the 8 corners of floor(c) (each index
// clamped to the buffer) of the product of the 1-D weights; weights and corners of an axis whose
// position is below 0 collapse to voxel 0 (ITK's base-index clamp).
double
ReferenceValue(const torch::Tensor & volume, std::array<double, 3> c)
{
  const auto                   v = volume.accessor<float, 3>();
  const std::array<int64_t, 3> n{ volume.size(2), volume.size(1), volume.size(0) };
  double                       sum = 0.0;
  for (int corner = 0; corner < 8; ++corner)
  {
    std::array<int64_t, 3> at{};
    double                 weight = 1.0;
    for (int i = 0; i < 3; ++i)
    {
      const double position = std::max(c[i], 0.0);
      const double base = std::floor(position), t = position - base;
      const bool   up = (corner >> i & 1) != 0;
      at[i] = std::min<int64_t>(static_cast<int64_t>(base) + (up ? 1 : 0), n[i] - 1);
      weight *= up ? t : 1.0 - t;
    }
    sum += weight * v[at[2]][at[1]][at[0]];
  }
  return sum;
}

TEST(PatchStages, SampledPatchesEqualAPerPixelReference)
{
  std::mt19937                           rng(7);
  const int64_t                          Z = 6, Y = 13, X = 17, O = 3, P = 8;
  auto                                   volume = torch::rand({ Z, Y, X }, torch::kFloat) * 2000.0 - 1000.0;
  auto                                   attention = torch::rand({ O, Z, Y, X }) > 0.5;
  Frames                                 frames;
  std::uniform_real_distribution<double> position(-6.0, 18.0), zpos(-1.5, 6.5), angle(-3.2, 3.2);
  for (int k = 0; k < 40; ++k)
  {
    const bool            aligned = k % 2 == 0;
    const bool            planar = k % 4 == 0;
    std::array<double, 3> first{ position(rng), position(rng), planar ? std::round(zpos(rng)) + 1e-8 : zpos(rng) };
    frames.push_back(Frame(first,
                           aligned ? 0.5 + 0.25 * (k % 5) : 0.8,
                           aligned ? 0.0 : angle(rng),
                           aligned ? 0.0 : 0.3 * angle(rng),
                           k % O,
                           planar));
  }
  // Pixels exactly on half voxels and on the buffer's edges.
  frames.push_back(Frame({ -0.5, -0.5, 0.0 }, 0.5, 0.0, 0.0, 0, true));
  frames.push_back(Frame({ 12.5, 8.5, 5.0 }, 1.0, 0.0, 0.0, 1, true));
  frames.push_back(Frame({ 3.0, 2.0, 5.25 }, 1.0, 0.0, 0.0, 2, false));
  const double low = -160.0, high = 240.0;
  for (const auto & device : Devices())
  {
    SCOPED_TRACE(device.str());
    const auto out = agcl::SampleQueryPatches(volume.to(device), attention.to(device), frames, P, low, high).cpu();
    ASSERT_EQ(out.sizes(), (torch::IntArrayRef{ static_cast<int64_t>(frames.size()), 2, P, P }));
    const auto o = out.accessor<float, 4>();
    const auto mask = attention.accessor<bool, 4>();
    int64_t    insideCount = 0, outsideCount = 0, setCount = 0;
    for (size_t n = 0; n < frames.size(); ++n)
      for (int64_t r = 0; r < P; ++r)
        for (int64_t q = 0; q < P; ++q)
        {
          const auto &                 f = frames[n];
          std::array<double, 3>        c{};
          bool                         inside = true;
          std::array<int64_t, 3>       nearest{};
          const std::array<int64_t, 3> size{ X, Y, Z };
          for (int i = 0; i < 3; ++i)
          {
            c[i] = f.first[i] + q * f.column[i] + r * f.row[i];
            nearest[i] = static_cast<int64_t>(std::floor(c[i] + 0.5));
            inside = inside && nearest[i] >= 0 && nearest[i] < size[i];
          }
          if (f.planar)
            c[2] = static_cast<double>(nearest[2]);
          const double expected = inside ? std::clamp((ReferenceValue(volume, c) - low) / (high - low), 0.0, 1.0) : 0.0;
          ASSERT_NEAR(o[n][0][r][q], expected, 1e-6) << "patch " << n << " pixel " << q << ", " << r;
          const bool set = inside && mask[f.organ][nearest[2]][nearest[1]][nearest[0]];
          ASSERT_EQ(o[n][1][r][q], set ? 1.0f : 0.0f) << "patch " << n << " pixel " << q << ", " << r;
          (inside ? insideCount : outsideCount) += 1;
          setCount += set;
        }
    // The same patches when the volume is a slab starting at voxel (5, -3, 2) of the frames' grid.
    Frames shifted = frames;
    for (auto & f : shifted)
      for (int i = 0; i < 3; ++i)
        f.first[i] += std::array<double, 3>{ 5.0, -3.0, 2.0 }[i];
    const auto again =
      agcl::SampleQueryPatches(volume.to(device), attention.to(device), shifted, P, low, high, { 5, -3, 2 }).cpu();
    EXPECT_TRUE(torch::allclose(again, out, 0.0, 1e-6));
    // The axis-aligned patches alone (their chunk then works on rows and columns: [n, P, 1] and
    // [n, 1, P] coordinates) give the same pixels as among the oblique ones.
    Frames               aligned;
    std::vector<int64_t> where;
    for (size_t k = 0; k < frames.size(); ++k)
      if (frames[k].column[1] == 0.0 && frames[k].row[0] == 0.0 && frames[k].row[2] == 0.0)
      {
        aligned.push_back(frames[k]);
        where.push_back(static_cast<int64_t>(k));
      }
    ASSERT_GT(aligned.size(), 10u);
    const auto alone = agcl::SampleQueryPatches(volume.to(device), attention.to(device), aligned, P, low, high).cpu();
    EXPECT_TRUE(torch::equal(alone, out.index_select(0, torch::tensor(where))));
    // The frames reach both inside and outside the buffer, and the masks are used.
    EXPECT_GT(insideCount, 500);
    EXPECT_GT(outsideCount, 1000);
    EXPECT_GT(setCount, 200);
  }
}

TEST(PatchStages, FusedScoresEqualAPerSubPixelReference)
{
  std::mt19937                rng(11);
  const int64_t               P = 6, O = 2;
  std::vector<agcl::VoxelBox> boxes(3);
  boxes[0] = { { 2, 1, 0 }, { 9, 7, 4 } };
  boxes[1] = { { 0, 0, 1 }, { 14, 12, 2 } };
  boxes[2] = { { 0, 0, 0 }, { 0, 0, 0 } }; // an organ without attention
  (void)O;
  Frames                                 frames;
  std::uniform_real_distribution<double> position(-3.0, 12.0), zpos(-0.8, 4.6), angle(-3.2, 3.2);
  for (int k = 0; k < 30; ++k)
  {
    const bool aligned = k % 3 != 0;
    frames.push_back(Frame({ position(rng), position(rng), zpos(rng) },
                           aligned ? 1.0 : 1.7,
                           aligned ? 0.0 : angle(rng),
                           aligned ? 0.0 : 0.2 * angle(rng),
                           k % 2,
                           false));
  }
  frames.push_back(Frame({ 2.0, 1.0, 0.0 }, 1.0, 0.0, 0.0, 2, false)); // organ 2: empty box, ignored
  const auto probabilities = torch::rand({ static_cast<int64_t>(frames.size()), 1, P, P }, torch::kFloat);
  // A coarse vote for organ 1: a 5 x 4 x 3 grid at twice the voxel spacing, shifted.
  const auto       coarse = torch::rand({ 3, 4, 5 }, torch::kFloat);
  agcl::CoarseVote vote;
  vote.probability = coarse;
  vote.toCoarse = { { { 0.5, 0.0, 0.0, -0.3 }, { 0.0, 0.5, 0.1, 0.2 }, { 0.0, 0.0, 0.5, -0.6 } } };
  vote.scale = 1.25;
  for (const bool gaussian : { false, true })
    for (const std::array<int64_t, 2> k : { std::array<int64_t, 2>{ 1, 1 }, std::array<int64_t, 2>{ 3, 2 } })
      for (const double w : { 0.0, 0.4 })
        for (const auto & device : Devices())
        {
          SCOPED_TRACE(device.str() + (gaussian ? " gaussian" : " flat") + " k " + std::to_string(k[0]) + "x" +
                       std::to_string(k[1]) + " w " + std::to_string(w));
          agcl::FusionOptions options;
          options.gaussianWeighting = gaussian;
          options.subdivisions = k;
          options.coarseWeight = w;
          std::vector<agcl::CoarseVote> votes(3);
          votes[1] = vote;
          votes[1].probability = coarse.to(device);
          const auto scores = agcl::FusePatchScores(probabilities.to(device), frames, boxes, options, votes);
          ASSERT_EQ(scores.size(), 3u);
          EXPECT_FALSE(scores[2].defined());
          const auto p = probabilities.accessor<float, 4>();
          for (int64_t o = 0; o < 2; ++o)
          {
            const auto &        b = boxes[o];
            std::vector<double> sum(b.Count(), 0.0), weight(b.Count(), 0.0);
            for (size_t n = 0; n < frames.size(); ++n)
            {
              if (frames[n].organ != o)
                continue;
              for (int64_t r = 0; r < P; ++r)
                for (int64_t q = 0; q < P; ++q)
                {
                  const double d2 = (q - P / 2.0) * (q - P / 2.0) + (r - P / 2.0) * (r - P / 2.0);
                  const double pw = gaussian ? std::exp(-d2 / (2.0 * (P / 4.0) * (P / 4.0))) : 1.0;
                  for (int64_t bb = 0; bb < k[1]; ++bb)
                    for (int64_t aa = 0; aa < k[0]; ++aa)
                    {
                      const double u = q - 0.5 + (aa + 0.5) / k[0], v = r - 0.5 + (bb + 0.5) / k[1];
                      int64_t      offset = 0;
                      bool         in = true;
                      for (int i = 2; i >= 0; --i)
                      {
                        const auto index = static_cast<int64_t>(
                          std::floor(frames[n].first[i] + u * frames[n].column[i] + v * frames[n].row[i] + 0.5));
                        in = in && index >= b.start[i] && index < b.start[i] + b.size[i];
                        offset = offset * b.size[i] + (index - b.start[i]);
                      }
                      if (!in)
                        continue;
                      sum[offset] += pw / (k[0] * k[1]) * p[n][0][r][q];
                      weight[offset] += pw / (k[0] * k[1]);
                    }
                }
            }
            const auto s = scores[o].cpu();
            ASSERT_EQ(s.sizes(), (torch::IntArrayRef{ b.size[2], b.size[1], b.size[0] }));
            const auto a = s.accessor<float, 3>();
            int64_t    covered = 0;
            for (int64_t z = 0; z < b.size[2]; ++z)
              for (int64_t y = 0; y < b.size[1]; ++y)
                for (int64_t x = 0; x < b.size[0]; ++x)
                {
                  const int64_t v = (z * b.size[1] + y) * b.size[0] + x;
                  double        expected = weight[v] > 0 ? sum[v] / weight[v] : 0.0;
                  covered += weight[v] > 0;
                  if (o == 1 && w > 0)
                  {
                    // The coarse value: corners of the clamped continuous index (clamped indices).
                    const std::array<double, 3>  index{ static_cast<double>(x + b.start[0]),
                                                       static_cast<double>(y + b.start[1]),
                                                       static_cast<double>(z + b.start[2]) };
                    const std::array<int64_t, 3> n{ 5, 4, 3 };
                    std::array<double, 3>        c{};
                    for (int i = 0; i < 3; ++i)
                    {
                      c[i] = vote.toCoarse[i][3];
                      for (int j = 0; j < 3; ++j)
                        c[i] += vote.toCoarse[i][j] * index[j];
                      c[i] = std::clamp(c[i], 0.0, static_cast<double>(n[i] - 1));
                    }
                    const auto cv = coarse.accessor<float, 3>();
                    double     value = 0.0;
                    for (int corner = 0; corner < 8; ++corner)
                    {
                      double                 factor = 1.0;
                      std::array<int64_t, 3> at{};
                      for (int i = 0; i < 3; ++i)
                      {
                        const bool up = (corner >> i & 1) != 0;
                        at[i] = std::min<int64_t>(static_cast<int64_t>(std::floor(c[i])) + up, n[i] - 1);
                        factor *= up ? c[i] - std::floor(c[i]) : 1.0 - (c[i] - std::floor(c[i]));
                      }
                      value += factor * cv[at[2]][at[1]][at[0]];
                    }
                    expected = (1.0 - w) * expected + w * vote.scale * value;
                  }
                  ASSERT_NEAR(a[z][y][x], expected, 2e-6) << "organ " << o << " voxel " << x << ", " << y << ", " << z;
                }
            EXPECT_GT(covered, 40) << "organ " << o; // the patches reach a good part of each box
          }
        }
}

TEST(PatchStages, TheDecisionTakesTheLargestMarginInsideTheAttention)
{
  const int64_t               Z = 3, Y = 5, X = 7, O = 3;
  std::vector<agcl::VoxelBox> boxes{ { { 0, 0, 0 }, { 7, 5, 3 } },
                                     { { 2, 1, 0 }, { 4, 3, 2 } },
                                     { { 1, 1, 1 }, { 5, 4, 2 } } };
  const std::vector<double>   thresholds{ 0.5, 0.3, 0.5 };
  auto                        attention = torch::rand({ O, Z, Y, X }) > 0.2;
  std::vector<at::Tensor>     scores;
  for (const auto & b : boxes)
    // Quantised to 1/8 so that ties and exact thresholds occur.
    scores.push_back(torch::floor(torch::rand({ b.size[2], b.size[1], b.size[0] }) * 8.0) / 8.0);
  for (const auto & device : Devices())
  {
    SCOPED_TRACE(device.str());
    std::vector<at::Tensor> onDevice;
    for (const auto & s : scores)
      onDevice.push_back(s.to(device));
    const auto             decision = agcl::DecideLabels(onDevice, boxes, attention.to(device), thresholds);
    const auto             labels = decision.labels.cpu();
    const auto             score = decision.score.cpu();
    const auto             l = labels.accessor<int, 3>();
    const auto             sc = score.accessor<uint8_t, 3>();
    const auto             mask = attention.accessor<bool, 4>();
    std::array<int64_t, 4> seen{};
    for (int64_t z = 0; z < Z; ++z)
      for (int64_t y = 0; y < Y; ++y)
        for (int64_t x = 0; x < X; ++x)
        {
          int    expected = 0;
          double best = 0.0, bestScore = 0.0;
          for (int64_t o = 0; o < O; ++o)
          {
            const auto & b = boxes[o];
            if (x < b.start[0] || x >= b.start[0] + b.size[0] || y < b.start[1] || y >= b.start[1] + b.size[1] ||
                z < b.start[2] || z >= b.start[2] + b.size[2] || !mask[o][z][y][x])
              continue;
            const double s = scores[o].accessor<float, 3>()[z - b.start[2]][y - b.start[1]][x - b.start[0]];
            if (s - thresholds[o] >= 0.0 && (expected == 0 || s - thresholds[o] > best))
            {
              expected = static_cast<int>(o + 1);
              best = s - thresholds[o];
              bestScore = s;
            }
          }
          ASSERT_EQ(l[z][y][x], expected) << x << ", " << y << ", " << z;
          const long q = expected ? std::clamp<long>(std::lround(255.0 * bestScore), 1, 255) : 0;
          ASSERT_EQ(sc[z][y][x], q) << x << ", " << y << ", " << z;
          ++seen[expected];
        }
    for (int o = 0; o <= O; ++o)
      EXPECT_GT(seen[o], 0) << "label " << o;
    // Boxes given in a larger grid whose slab starts at (4, 0, 9): the same decision.
    auto moved = boxes;
    for (auto & b : moved)
      b.start = { b.start[0] + 4, b.start[1], b.start[2] + 9 };
    const auto same = agcl::DecideLabels(onDevice, moved, attention.to(device), thresholds, { 4, 0, 9 });
    EXPECT_TRUE(torch::equal(same.labels.cpu(), labels));
    EXPECT_TRUE(torch::equal(same.score.cpu(), score));
    // Quantised probability maps.
    const auto map = agcl::QuantisedProbability(onDevice[1], boxes[1], attention[1].to(device)).cpu();
    const auto m = map.accessor<uint8_t, 3>();
    for (int64_t z = 0; z < Z; ++z)
      for (int64_t y = 0; y < Y; ++y)
        for (int64_t x = 0; x < X; ++x)
        {
          const auto & b = boxes[1];
          long         expected = 0;
          if (x >= b.start[0] && x < b.start[0] + b.size[0] && y >= b.start[1] && y < b.start[1] + b.size[1] &&
              z >= b.start[2] && z < b.start[2] + b.size[2] && mask[1][z][y][x])
            expected = std::lround(
              std::clamp(scores[1].accessor<float, 3>()[z - b.start[2]][y - b.start[1]][x - b.start[0]], 0.0f, 1.0f) *
              255.0f);
          ASSERT_EQ(m[z][y][x], expected);
        }
  }
}

TEST(PatchStages, BadArgumentsAreRejected)
{
  const auto volume = torch::zeros({ 2, 3, 4 });
  const auto attention = torch::zeros({ 1, 2, 3, 4 }, torch::kBool);
  Frames     frames{ Frame({ 0, 0, 0 }, 1.0, 0.0, 0.0, 0, false) };
  EXPECT_THROW(agcl::SampleQueryPatches(volume, torch::zeros({ 1, 2, 3, 5 }, torch::kBool), frames, 4, 0, 1),
               std::invalid_argument);
  EXPECT_THROW(agcl::SampleQueryPatches(volume, attention, frames, 0, 0, 1), std::invalid_argument);
  EXPECT_THROW(agcl::SampleQueryPatches(volume, attention, frames, 4, 1, 1), std::invalid_argument);
  EXPECT_THROW(agcl::SampleQueryPatches(volume.to(torch::kLong), attention, frames, 4, 0, 1), std::invalid_argument);
  frames[0].organ = 1;
  EXPECT_THROW(agcl::SampleQueryPatches(volume, attention, frames, 4, 0, 1), std::invalid_argument);
  frames[0].organ = 0;
  frames[0].first[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(agcl::SampleQueryPatches(volume, attention, frames, 4, 0, 1), std::invalid_argument);
  frames[0].first[1] = 0.0;
  std::vector<agcl::VoxelBox> boxes{ { { 0, 0, 0 }, { 4, 3, 2 } } };
  agcl::FusionOptions         options;
  EXPECT_THROW(agcl::FusePatchScores(torch::zeros({ 2, 1, 4, 4 }), frames, boxes, options), std::invalid_argument);
  options.subdivisions = { 0, 1 };
  EXPECT_THROW(agcl::FusePatchScores(torch::zeros({ 1, 1, 4, 4 }), frames, boxes, options), std::invalid_argument);
  options.subdivisions = { 1, 1 };
  options.coarseWeight = 1.5;
  EXPECT_THROW(agcl::FusePatchScores(torch::zeros({ 1, 1, 4, 4 }), frames, boxes, options), std::invalid_argument);
  std::vector<at::Tensor> scores{ torch::zeros({ 2, 3, 4 }) };
  EXPECT_THROW(agcl::DecideLabels(scores, boxes, attention, { 0.5, 0.5 }), std::invalid_argument);
  std::vector<agcl::VoxelBox> outside{ { { 1, 0, 0 }, { 4, 3, 2 } } };
  EXPECT_THROW(agcl::DecideLabels(scores, outside, attention, { 0.5 }), std::invalid_argument);
}

// The committed phantom (test/data/phantom-tensors/, made and checked by the ITK test
// PhantomTensors.TheCommittedFilesAreWhatTheITKPathGives): the tensor functions on it give the
// ITK loops' label map (QueryPatchSamplerFilter, a stand-in network, LabelFusionFilter), on every
// device present; the test a GPU machine without ITK runs. Float32 sums in another order may
// move a voxel across a threshold: fewer than 0.01 % of the voxels may differ (none so far).
std::string
ReadBytes(const std::filesystem::path & path)
{
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Frames
FramesFrom(const nlohmann::json & list)
{
  Frames frames;
  for (const auto & f : list)
  {
    agcl::PatchFrame frame;
    frame.first = f.at("first").get<std::array<double, 3>>();
    frame.column = f.at("column").get<std::array<double, 3>>();
    frame.row = f.at("row").get<std::array<double, 3>>();
    frame.organ = f.at("organ").get<int64_t>();
    frame.planar = f.at("planar").get<bool>();
    frames.push_back(frame);
  }
  return frames;
}

TEST(PatchStages, TheCommittedPhantomGivesTheITKLoopsLabels)
{
  const std::filesystem::path folder = std::filesystem::path(AGCL_TEST_DATA_DIR) / "phantom-tensors";
  const nlohmann::json        meta = nlohmann::json::parse(ReadBytes(folder / "meta.json"));
  const auto                  zyx = meta.at("size_zyx").get<std::vector<int64_t>>();
  const int64_t               voxels = zyx[0] * zyx[1] * zyx[2];
  const int64_t               O = static_cast<int64_t>(meta.at("organs").size());
  std::string                 ct = ReadBytes(folder / "ct.i16"), attention = ReadBytes(folder / "attention.u8"),
              labels = ReadBytes(folder / "labels.u8");
  ASSERT_EQ(ct.size(), static_cast<size_t>(voxels) * 2);
  ASSERT_EQ(attention.size(), static_cast<size_t>(voxels * O));
  ASSERT_EQ(labels.size(), static_cast<size_t>(voxels));
  const auto   volume = torch::from_blob(ct.data(), { zyx[0], zyx[1], zyx[2] }, torch::kShort).to(torch::kFloat);
  const auto   masks = torch::from_blob(attention.data(), { O, zyx[0], zyx[1], zyx[2] }, torch::kByte).clone();
  const auto   reference = torch::from_blob(labels.data(), { zyx[0], zyx[1], zyx[2] }, torch::kByte).to(torch::kInt);
  const Frames sampling = FramesFrom(meta.at("sampling_frames")), fusion = FramesFrom(meta.at("fusion_frames"));
  std::vector<agcl::VoxelBox> boxes;
  for (const auto & b : meta.at("boxes"))
    boxes.push_back({ b.at("start").get<std::array<int64_t, 3>>(), b.at("size").get<std::array<int64_t, 3>>() });
  agcl::FusionOptions options;
  options.gaussianWeighting = meta.at("gaussian_weighting").get<bool>();
  options.subdivisions = meta.at("subdivisions").get<std::array<int64_t, 2>>();
  const std::vector<double> thresholds(O, meta.at("threshold").get<double>());
  const auto                window = meta.at("window").get<std::array<double, 2>>();
  ASSERT_GT(sampling.size(), 20u);
  EXPECT_GT(reference.gt(0).sum().item<int64_t>(), 500);
  for (const auto & device : Devices())
  {
    SCOPED_TRACE(device.str());
    const auto images = agcl::SampleQueryPatches(
      volume.to(device), masks.to(device), sampling, meta.at("patch_size").get<int64_t>(), window[0], window[1]);
    // The stand-in network of the ITK test: attention x sigmoid(8 CT - 4).
    const auto    probability = (images.select(1, 1) * torch::sigmoid(images.select(1, 0) * 8.0 - 4.0)).unsqueeze(1);
    const auto    scores = agcl::FusePatchScores(probability, fusion, boxes, options);
    const auto    decision = agcl::DecideLabels(scores, boxes, masks.to(device), thresholds);
    const int64_t differing = decision.labels.cpu().ne(reference).sum().item<int64_t>();
    EXPECT_LT(differing, std::max<int64_t>(1, voxels / 10000)) << differing << " voxels differ";
  }
}

} // namespace
