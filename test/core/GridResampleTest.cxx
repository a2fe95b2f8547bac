/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/GridResample.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <vector>

namespace {
using Mapping = std::array<agcl::AxisMapping, 3>;
using Size = std::array<int64_t, 3>;

// The references, voxel by voxel in double precision, from the definitions: trilinear = the sum
// over the 8 neighbours (clamped to the edge) of the product of the 1-D weights; nearest = the
// index rounded half up. Outside [-0.5, n - 0.5) on an axis: the fill value.
double
ReferenceLinear(const torch::Tensor & v, const Mapping & m, int64_t z, int64_t y, int64_t x, double fill)
{
  const std::array<int64_t, 3> j{ z, y, x };
  std::array<double, 3>        position{};
  for (int a = 0; a < 3; ++a)
  {
    position[a] = m[a].scale * j[a] + m[a].offset;
    if (!(position[a] >= -0.5 && position[a] < v.size(a) - 0.5))
      return fill;
  }
  const auto accessor = v.accessor<double, 3>();
  double     sum = 0.0;
  for (int corner = 0; corner < 8; ++corner)
  {
    std::array<int64_t, 3> index{};
    double                 weight = 1.0;
    for (int a = 0; a < 3; ++a)
    {
      const double base = std::floor(position[a]), t = position[a] - base;
      const bool   up = (corner >> a & 1) != 0;
      weight *= up ? t : 1.0 - t;
      index[a] = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(base) + (up ? 1 : 0), 0), v.size(a) - 1);
    }
    sum += weight * accessor[index[0]][index[1]][index[2]];
  }
  return sum;
}

int64_t
ReferenceNearest(const torch::Tensor & v, const Mapping & m, int64_t z, int64_t y, int64_t x, int64_t fill)
{
  const std::array<int64_t, 3> j{ z, y, x };
  std::array<int64_t, 3>       index{};
  for (int a = 0; a < 3; ++a)
  {
    const double position = m[a].scale * j[a] + m[a].offset;
    if (!(position >= -0.5 && position < v.size(a) - 0.5))
      return fill;
    index[a] = std::min<int64_t>(static_cast<int64_t>(std::floor(position + 0.5)), v.size(a) - 1);
  }
  return v.accessor<int64_t, 3>()[index[0]][index[1]][index[2]];
}

// The coarse grid's mapping onto a finer one and back (lower voxel edges coincide, as
// CoarseAttentionFilter places the coarse grid): fine index = (j + 0.5) coarse / fine - 0.5.
agcl::AxisMapping
Edges(double outputSpacing, double inputSpacing)
{
  return { outputSpacing / inputSpacing, 0.5 * outputSpacing / inputSpacing - 0.5 };
}
} // namespace

TEST(GridResample, LinearEqualsTheTrilinearDefinition)
{
  torch::manual_seed(3);
  const torch::Tensor                         volume = torch::randn({ 6, 7, 9 }, torch::kDouble) * 100.0;
  const std::vector<std::pair<Mapping, Size>> cases{
    // To a coarse grid and a small shifted one (fewer output voxels than input: the neighbours
    // gathered), to a finer grid and a larger shifted one (more: one axis at a time).
    { { Edges(4.0, 2.5), Edges(4.0, 0.8), Edges(4.0, 0.8) }, { 4, 2, 2 } },
    { { agcl::AxisMapping{ 1.5, -1.2 }, agcl::AxisMapping{ 2.0, -0.9 }, agcl::AxisMapping{ 2.5, 1.0 } }, { 4, 4, 4 } },
    { { Edges(0.7, 2.5), Edges(0.5, 0.8), Edges(1.3, 0.8) }, { 22, 12, 6 } },
    { { agcl::AxisMapping{ 1.0, -1.0 }, agcl::AxisMapping{ 0.9, -0.7 }, agcl::AxisMapping{ -1.0, 8.6 } },
      { 8, 10, 11 } },
  };
  for (const auto & [mapping, size] : cases)
    for (const auto dtype : { torch::kDouble, torch::kFloat })
    {
      const torch::Tensor got = agcl::ResampleLinear(volume.to(dtype), mapping, size, -7.5).to(torch::kDouble);
      ASSERT_EQ(got.sizes(), (std::vector<int64_t>{ size[0], size[1], size[2] }));
      const auto g = got.accessor<double, 3>();
      int64_t    filled = 0;
      for (int64_t z = 0; z < size[0]; ++z)
        for (int64_t y = 0; y < size[1]; ++y)
          for (int64_t x = 0; x < size[2]; ++x)
          {
            const double expected = ReferenceLinear(volume, mapping, z, y, x, -7.5);
            filled += expected == -7.5 ? 1 : 0;
            EXPECT_NEAR(g[z][y][x], expected, dtype == torch::kDouble ? 1e-10 : 1e-3) << z << " " << y << " " << x;
          }
      if (&mapping == &cases[1].first || &mapping == &cases[3].first)
        EXPECT_GT(filled, 0); // these reach outside the input
    }
}

TEST(GridResample, NearestEqualsRoundingHalfUpAndIsExact)
{
  const torch::Tensor                         labels = torch::arange(5 * 6 * 7, torch::kLong).reshape({ 5, 6, 7 });
  const std::vector<std::pair<Mapping, Size>> cases{
    { { Edges(0.8, 4.0), Edges(0.8, 4.0), Edges(2.5, 4.0) }, { 25, 30, 11 } },
    { { agcl::AxisMapping{ 0.5, 0.0 }, agcl::AxisMapping{ 0.5, -0.5 }, agcl::AxisMapping{ 1.5, -1.0 } },
      { 10, 13, 6 } },
  };
  for (const auto & [mapping, size] : cases)
  {
    const torch::Tensor got = agcl::ResampleNearest(labels, mapping, size, -1);
    const auto          g = got.accessor<int64_t, 3>();
    for (int64_t z = 0; z < size[0]; ++z)
      for (int64_t y = 0; y < size[1]; ++y)
        for (int64_t x = 0; x < size[2]; ++x)
          ASSERT_EQ(g[z][y][x], ReferenceNearest(labels, mapping, z, y, x, -1)) << z << " " << y << " " << x;
  }
  // Halves round up: position 0.5 takes index 1, -0.5 index 0; below -0.5 is outside.
  const torch::Tensor line = torch::arange(3, torch::kLong).reshape({ 1, 1, 3 });
  const Mapping       half{ agcl::AxisMapping{ 1, 0 }, agcl::AxisMapping{ 1, 0 }, agcl::AxisMapping{ 1.0, -0.5 } };
  EXPECT_TRUE(torch::equal(agcl::ResampleNearest(line, half, { 1, 1, 3 }, 9),
                           torch::tensor({ 0L, 1L, 2L }).reshape({ 1, 1, 3 })));
  const Mapping below{ agcl::AxisMapping{ 1, 0 }, agcl::AxisMapping{ 1, 0 }, agcl::AxisMapping{ 1.0, -0.51 } };
  EXPECT_EQ(agcl::ResampleNearest(line, below, { 1, 1, 3 }, 9)[0][0][0].item<int64_t>(), 9);
}

TEST(GridResample, BadInputIsNamed)
{
  const Mapping identity{};
  EXPECT_THROW(agcl::ResampleLinear(torch::zeros({ 2, 2 }), identity, { 1, 1, 1 }, 0.0), std::invalid_argument);
  EXPECT_THROW(agcl::ResampleLinear(torch::zeros({ 2, 2, 2 }, torch::kLong), identity, { 1, 1, 1 }, 0.0),
               std::invalid_argument);
  EXPECT_THROW(agcl::ResampleNearest(torch::zeros({ 2, 2, 2 }), identity, { 1, -1, 1 }, 0.0), std::invalid_argument);
  const Mapping bad{ agcl::AxisMapping{ std::nan(""), 0.0 }, agcl::AxisMapping{}, agcl::AxisMapping{} };
  EXPECT_THROW(agcl::ResampleNearest(torch::zeros({ 2, 2, 2 }), bad, { 1, 1, 1 }, 0.0), std::invalid_argument);
  EXPECT_EQ(agcl::ResampleLinear(torch::zeros({ 2, 2, 2 }), identity, { 0, 3, 3 }, 0.0).numel(), 0);
}
