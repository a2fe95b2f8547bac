/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AttentionMap.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {
// The reference: for every voxel, the smallest squared distance in mm to any mask voxel, by
// brute force in double precision, and the filter's rule (distance <= margin + 1e-6 mm).
std::vector<uint8_t>
BruteForce(const std::vector<uint8_t> &   mask,
           const std::array<int64_t, 3> & size,
           const std::array<double, 3> &  spacing,
           double                         margin)
{
  std::vector<std::array<int64_t, 3>> organ;
  for (int64_t z = 0; z < size[0]; ++z)
    for (int64_t y = 0; y < size[1]; ++y)
      for (int64_t x = 0; x < size[2]; ++x)
        if (mask[(z * size[1] + y) * size[2] + x] != 0)
          organ.push_back({ z, y, x });
  std::vector<uint8_t> inside(mask.size(), 0);
  for (int64_t z = 0; z < size[0]; ++z)
    for (int64_t y = 0; y < size[1]; ++y)
      for (int64_t x = 0; x < size[2]; ++x)
      {
        double best = std::numeric_limits<double>::infinity();
        for (const auto & u : organ)
        {
          const double dz = (z - u[0]) * spacing[0], dy = (y - u[1]) * spacing[1], dx = (x - u[2]) * spacing[2];
          best = std::min(best, dz * dz + dy * dy + dx * dx);
        }
        inside[(z * size[1] + y) * size[2] + x] = std::sqrt(best) <= margin + 1e-6 ? 1 : 0;
      }
  return inside;
}

torch::Tensor
AsTensor(const std::vector<uint8_t> & values, const std::array<int64_t, 3> & size)
{
  return torch::from_blob(const_cast<uint8_t *>(values.data()), { size[0], size[1], size[2] }, torch::kUInt8).clone();
}
} // namespace

TEST(AttentionMap, GrowByMarginEqualsBruteForceDistances)
{
  // Sparse random masks (a few voxels, some at the borders) on anisotropic grids, margins from 0
  // to beyond the volume: the grown region equals the brute-force one voxel for voxel.
  std::mt19937 random(11);
  // (Equal H and W spacings take the CPU loop's 16-bit integer plane; the others its doubles.)
  const std::vector<std::array<double, 3>> spacings{
    { 2.5, 0.8, 1.1 }, { 1.0, 1.0, 1.0 }, { 0.7, 3.0, 0.7 }, { 2.5, 0.7, 0.7 }
  };
  const std::vector<double>    margins{ 0.0, 0.75, 1.0, 2.6, 5.0, 40.0 };
  const std::array<int64_t, 3> size{ 7, 9, 11 };
  int64_t                      checked = 0, grown = 0;
  for (int trial = 0; trial < 6; ++trial)
  {
    std::vector<uint8_t> mask(size[0] * size[1] * size[2], 0);
    const int            count = 1 + trial % 4;
    for (int i = 0; i < count; ++i)
      mask[random() % mask.size()] = 1;
    if (trial == 5)
      mask[0] = 1; // a corner voxel: the grown box is clipped by the volume
    for (const auto & spacing : spacings)
      for (const double margin : margins)
      {
        const std::vector<uint8_t> expected = BruteForce(mask, size, spacing, margin);
        for (const auto kernels : { agcl::MarginKernels::TensorOps, agcl::MarginKernels::CpuLoop })
        {
          const torch::Tensor got = agcl::GrowByMargin(AsTensor(mask, size), spacing, margin, kernels);
          ASSERT_EQ(got.scalar_type(), torch::kBool);
          ASSERT_TRUE(torch::equal(got, AsTensor(expected, size).to(torch::kBool)))
            << "trial " << trial << ", spacing " << spacing[0] << " " << spacing[1] << " " << spacing[2] << ", margin "
            << margin << ", kernels " << static_cast<int>(kernels);
          checked += 1;
        }
        const torch::Tensor got = agcl::GrowByMargin(AsTensor(mask, size), spacing, margin);
        grown += got.sum().item<int64_t>() - AsTensor(mask, size).ne(0).sum().item<int64_t>();
      }
  }
  EXPECT_EQ(checked, 2 * 6 * 4 * 6);
  EXPECT_GT(grown, 1000); // the margins did grow the masks
}

TEST(AttentionMap, GrowByMarginOfOrganShapedBlobsEqualsBruteForce)
{
  // Larger masks shaped like organs (a lumpy ellipsoid with a hole) on a CT-like grid and on grids
  // whose in-plane reach exceeds the integer plane's 90 voxels (the CPU loop's doubles then): the
  // region equals the brute-force one.
  struct Case
  {
    std::array<int64_t, 3> size;
    std::array<double, 3>  spacing;
    double                 margin;
  };
  const std::vector<Case> cases{ { { 14, 40, 44 }, { 2.5, 0.7, 0.7 }, 10.0 },
                                 { { 14, 40, 44 }, { 2.5, 0.7, 0.7 }, 4.2 },
                                 { { 4, 6, 200 }, { 1.0, 0.1, 0.1 }, 9.5 },
                                 { { 4, 200, 6 }, { 1.0, 0.1, 0.1 }, 9.5 } };
  agcl::MarginWorkspace   workspace; // shared by all cases (sizes grow and shrink): the same regions
  torch::Tensor           previous;
  for (const auto & c : cases)
  {
    std::vector<uint8_t> mask(c.size[0] * c.size[1] * c.size[2], 0);
    for (int64_t z = 0; z < c.size[0]; ++z)
      for (int64_t y = 0; y < c.size[1]; ++y)
        for (int64_t x = 0; x < c.size[2]; ++x)
        {
          const double u = (z - 0.45 * c.size[0]) / (0.3 * c.size[0]), v = (y - 0.5 * c.size[1]) / (0.25 * c.size[1]),
                       w = (x - 0.4 * c.size[2]) / (0.2 * c.size[2]);
          const double r = u * u + v * v + w * w, lump = 0.15 * std::sin(3.0 * y + 2.0 * x);
          mask[(z * c.size[1] + y) * c.size[2] + x] = r <= 1.0 + lump && r > 0.1 ? 1 : 0;
        }
    const torch::Tensor expected = AsTensor(BruteForce(mask, c.size, c.spacing, c.margin), c.size).to(torch::kBool);
    ASSERT_GT(AsTensor(mask, c.size).sum().item<int64_t>(), 0);
    for (const auto kernels : { agcl::MarginKernels::CpuLoop, agcl::MarginKernels::TensorOps })
    {
      const torch::Tensor got = agcl::GrowByMargin(AsTensor(mask, c.size), c.spacing, c.margin, kernels);
      EXPECT_TRUE(torch::equal(got, expected))
        << "size " << c.size[0] << "x" << c.size[1] << "x" << c.size[2] << ", margin " << c.margin << ", kernels "
        << static_cast<int>(kernels) << ": " << got.ne(expected).sum().item<int64_t>() << " voxels differ";
    }
    const torch::Tensor reused =
      agcl::GrowByMargin(AsTensor(mask, c.size), c.spacing, c.margin, agcl::MarginKernels::CpuLoop, &workspace);
    EXPECT_TRUE(torch::equal(reused, expected)) << "with a workspace, margin " << c.margin;
    EXPECT_TRUE(reused.is_same(workspace.region));
    if (previous.defined()) // the previous case's copy is untouched by this call
      EXPECT_GT(previous.sum().item<int64_t>(), 0);
    previous = reused.clone();
    EXPECT_GT(expected.sum().item<int64_t>(), AsTensor(mask, c.size).ne(0).sum().item<int64_t>());
  }
}

TEST(AttentionMap, GrowByMarginKeepsExactTiesAndTheMaskItself)
{
  // Unit spacing, margin 5: the voxel at offset (3, 4, 0) is at exactly 5 mm (in), (1, 5, 0) at
  // sqrt(26) mm (out); with margin 0 only the mask itself.
  torch::Tensor mask = torch::zeros({ 11, 11, 11 }, torch::kBool);
  mask[5][5][5] = true;
  const torch::Tensor grown = agcl::GrowByMargin(mask, { 1.0, 1.0, 1.0 }, 5.0);
  EXPECT_TRUE(torch::equal(agcl::GrowByMargin(mask, { 1.0, 1.0, 1.0 }, 5.0, agcl::MarginKernels::TensorOps), grown));
  EXPECT_TRUE(grown[8][9][5].item<bool>());
  EXPECT_TRUE(grown[5][0][5].item<bool>());
  EXPECT_FALSE(grown[6][0][5].item<bool>());
  EXPECT_TRUE(torch::equal(agcl::GrowByMargin(mask, { 1.0, 1.0, 1.0 }, 0.0), mask));
  // 515 lattice points lie within radius 5 of a point (a count independent of the code).
  EXPECT_EQ(grown.sum().item<int64_t>(), 515);
}

TEST(AttentionMap, GrowByMarginOfNothingIsEmptyAndBadInputIsNamed)
{
  const torch::Tensor empty = agcl::GrowByMargin(torch::zeros({ 4, 5, 6 }, torch::kFloat), { 1, 1, 1 }, 3.0);
  EXPECT_EQ(empty.sizes(), (std::vector<int64_t>{ 4, 5, 6 }));
  EXPECT_EQ(empty.sum().item<int64_t>(), 0);
  EXPECT_EQ(agcl::GrowByMargin(torch::zeros({ 0, 5, 6 }), { 1, 1, 1 }, 3.0).numel(), 0);
  const torch::Tensor one = torch::ones({ 2, 2, 2 });
  EXPECT_THROW(agcl::GrowByMargin(torch::ones({ 2, 2 }), { 1, 1, 1 }, 1.0), std::invalid_argument);
  EXPECT_THROW(agcl::GrowByMargin(torch::Tensor(), { 1, 1, 1 }, 1.0), std::invalid_argument);
  EXPECT_THROW(agcl::GrowByMargin(one, { 1, 0, 1 }, 1.0), std::invalid_argument);
  EXPECT_THROW(agcl::GrowByMargin(one, { 1, std::nan(""), 1 }, 1.0), std::invalid_argument);
  EXPECT_THROW(agcl::GrowByMargin(one, { 1, 1, 1 }, -1.0), std::invalid_argument);
  EXPECT_THROW(agcl::GrowByMargin(one, { 1, 1, 1 }, std::numeric_limits<double>::infinity()), std::invalid_argument);
}
