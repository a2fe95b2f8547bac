/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkImageRegionIteratorWithIndex.h"
#include "itkSegmentationMetrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace {
using Labels = itk::Image<unsigned char, 3>;
using Metrics = itk::SegmentationMetrics<Labels>;

Labels::Pointer
Empty(const double spacing[3])
{
  auto image = Labels::New();
  image->SetRegions(Labels::SizeType{ { 24, 20, 12 } });
  image->SetSpacing(spacing);
  image->Allocate();
  image->FillBuffer(0);
  return image;
}

// Two overlapping ellipsoids, one per image, plus noise voxels, all with label `organ`.
void
Blob(Labels * image, unsigned char organ, double cx, double cy, double cz, double r, std::mt19937 & rng)
{
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (itk::ImageRegionIteratorWithIndex<Labels> it(image, image->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    const auto   i = it.GetIndex();
    const double x = (i[0] - cx) / r, y = (i[1] - cy) / (0.8 * r), z = (i[2] - cz) / (0.4 * r);
    if (x * x + y * y + z * z <= 1.0 + 0.3 * unit(rng))
      it.Set(organ);
  }
}

struct Brute
{
  double dice, iou, msd, hd, hd95;
};

// Brute force in double: surface voxels by their 6 neighbours, all pairwise distances in mm.
Brute
BruteForce(const Labels * a, const Labels * b, unsigned char organ)
{
  const auto region = a->GetBufferedRegion();
  const auto s = a->GetSpacing();
  auto       surface = [&](const Labels * image) {
    std::vector<Labels::IndexType> out;
    for (itk::ImageRegionConstIteratorWithIndex<Labels> it(image, region); !it.IsAtEnd(); ++it)
    {
      if (it.Get() != organ)
        continue;
      bool edge = false;
      for (int d = 0; d < 3; ++d)
        for (int step : { -1, 1 })
        {
          auto n = it.GetIndex();
          n[d] += step;
          edge = edge || !region.IsInside(n) || image->GetPixel(n) != organ;
        }
      if (edge)
        out.push_back(it.GetIndex());
    }
    return out;
  };
  const auto sa = surface(a), sb = surface(b);
  double     na = 0, nb = 0, both = 0;
  for (itk::ImageRegionConstIteratorWithIndex<Labels> it(a, region); !it.IsAtEnd(); ++it)
  {
    const bool inA = it.Get() == organ, inB = b->GetPixel(it.GetIndex()) == organ;
    na += inA;
    nb += inB;
    both += inA && inB;
  }
  std::vector<double> distances;
  for (const auto & [from, to] : { std::make_pair(&sa, &sb), std::make_pair(&sb, &sa) })
    for (const auto & p : *from)
    {
      double best = 1e300;
      for (const auto & q : *to)
      {
        double d2 = 0;
        for (int d = 0; d < 3; ++d)
          d2 += std::pow((p[d] - q[d]) * s[d], 2);
        best = std::min(best, d2);
      }
      distances.push_back(std::sqrt(best));
    }
  std::sort(distances.begin(), distances.end());
  double sum = 0;
  for (double v : distances)
    sum += v;
  const double pos = 0.95 * (distances.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, distances.size() - 1);
  return { 2 * both / (na + nb),
           both / (na + nb - both),
           sum / distances.size(),
           distances.back(),
           distances[lo] + (pos - lo) * (distances[hi] - distances[lo]) };
}
} // namespace

TEST(SegmentationMetrics, AnisotropicDistancesMatchABruteForceComputation)
{
  const double spacing[3] = { 0.8, 1.3, 3.0 };
  std::mt19937 rng(3);
  auto         reference = Empty(spacing), prediction = Empty(spacing);
  Blob(reference, 6, 11, 9, 5, 7, rng);
  Blob(prediction, 6, 13, 10, 6, 6, rng);
  Blob(reference, 1, 3, 3, 2, 2.5, rng);
  Blob(prediction, 1, 20, 16, 9, 2.5, rng);   // far apart: large Hausdorff
  prediction->SetPixel({ { 0, 19, 11 } }, 6); // a stray voxel at the image corner
  const auto metrics = Metrics::Compute(reference, prediction, { 6, 1 });
  ASSERT_EQ(metrics.size(), 2u);
  for (const auto & m : metrics)
  {
    const Brute expected = BruteForce(reference, prediction, m.label);
    ASSERT_EQ(m.status, Metrics::StatusEnum::Ok);
    EXPECT_NEAR(*m.dice, expected.dice, 1e-12) << int(m.label);
    EXPECT_NEAR(*m.iou, expected.iou, 1e-12) << int(m.label);
    EXPECT_NEAR(*m.msd, expected.msd, 1e-4) << int(m.label);
    EXPECT_NEAR(*m.hd, expected.hd, 1e-4) << int(m.label);
    EXPECT_NEAR(*m.hd95, expected.hd95, 1e-4) << int(m.label);
    EXPECT_GT(*m.hd, *m.hd95);
  }
  EXPECT_GT(*metrics[1].hd, 20.0); // the two organ-1 blobs are far apart
}

TEST(SegmentationMetrics, IdenticalMapsGiveDiceOneAndZeroDistances)
{
  const double spacing[3] = { 1.0, 1.0, 2.5 };
  std::mt19937 rng(4);
  auto         reference = Empty(spacing);
  Blob(reference, 2, 12, 10, 6, 5, rng);
  const auto m = Metrics::Compute(reference, reference, { 2 }).front();
  EXPECT_EQ(*m.dice, 1.0);
  EXPECT_EQ(*m.iou, 1.0);
  EXPECT_EQ(*m.msd, 0.0);
  EXPECT_EQ(*m.hd, 0.0);
}

TEST(SegmentationMetrics, EmptyOrgansAreReportedNotHidden)
{
  const double spacing[3] = { 1.0, 1.0, 1.0 };
  std::mt19937 rng(5);
  auto         reference = Empty(spacing), prediction = Empty(spacing);
  Blob(reference, 3, 8, 8, 5, 3, rng);
  Blob(prediction, 4, 8, 8, 5, 3, rng);
  const auto metrics = Metrics::Compute(reference, prediction, { 3, 4, 5 });
  EXPECT_EQ(metrics[0].status, Metrics::StatusEnum::PredictionEmpty);
  EXPECT_EQ(*metrics[0].dice, 0.0);
  EXPECT_FALSE(metrics[0].hd.has_value());
  EXPECT_GT(metrics[0].referenceVoxels, 0u);
  EXPECT_EQ(metrics[1].status, Metrics::StatusEnum::ReferenceEmpty);
  EXPECT_EQ(metrics[2].status, Metrics::StatusEnum::BothEmpty);
  EXPECT_FALSE(metrics[2].dice.has_value());
  EXPECT_EQ(Metrics::StatusName(metrics[2].status), "both_empty");

  const double other[3] = { 1.0, 1.0, 2.0 };
  EXPECT_THROW(Metrics::Compute(reference, Empty(other), { 3 }), itk::ExceptionObject);
}
