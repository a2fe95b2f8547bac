/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkLabelFusionFilter.h"

#include "itkImageRegionIteratorWithIndex.h"
#include "itkLinearInterpolateImageFunction.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

namespace {
using Labels = itk::Image<unsigned char, 3>;
using Fusion = itk::LabelFusionFilter<Labels>;

Labels::Pointer
Volume(unsigned char fill, unsigned long slices = 2)
{
  auto image = Labels::New();
  image->SetRegions(Labels::SizeType{ { 32, 32, slices } });
  const double spacing[3] = { 1.5, 1.5, 4.0 };
  const double origin[3] = { -10.0, 5.0, 0.0 };
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->Allocate();
  image->FillBuffer(fill);
  return image;
}

// A 16 x 16 patch of constant probability whose first pixel is voxel (i, j, k).
itk::TensorItemMetadata
Patch(const Labels * reference, int organ, long i, long j, long k)
{
  itk::TensorItemMetadata m;
  m.organ = organ;
  Labels::PointType p;
  reference->TransformIndexToPhysicalPoint({ { i, j, k } }, p);
  m.origin = { p[0], p[1], p[2] };
  m.index = { i, j, k };
  m.slice = k;
  m.spacing = { 1.5, 1.5 };
  m.axes = { 1, 0, 0, 0, 1, 0 };
  return m;
}

itk::TensorDataObject::Pointer
Patches(const std::vector<itk::TensorItemMetadata> & metadata, const std::vector<float> & values)
{
  auto       data = itk::TensorDataObject::New();
  at::Tensor p = at::empty({ static_cast<int64_t>(values.size()), 1, 16, 16 });
  for (size_t n = 0; n < values.size(); ++n)
    p[n].fill_(values[n]);
  data->SetTensor("probability", p);
  data->SetMetadata(metadata);
  return data;
}
} // namespace

TEST(LabelFusionFilter, OverlapsAreAveragedThenThresholdTiesAndAttentionDecide)
{
  auto reference = Volume(0);
  auto everywhere = Volume(1);
  auto leftHalf = Volume(0); // organ 3 may only appear at x index < 16
  for (long k = 0; k < 2; ++k)
    for (long j = 0; j < 32; ++j)
      for (long i = 0; i < 16; ++i)
        leftHalf->SetPixel({ { i, j, k } }, 1);
  // Organ 1: 0.9 at (0..15, 0..15) and 0.5 at (8..23, 0..15): overlap (8..15) averages to 0.7.
  // Organ 2: 0.4 at (0..15, 16..31): below the threshold.
  // Organ 2: 0.8 and organ 3: 0.8 at (16..31, 16..31): a tie -> organ 2 (listed first);
  // organ 3 is also outside its attention there.
  // Organ 3: 0.95 at (0..15, 16..31) on slice 1 only, inside its attention.
  std::vector<itk::TensorItemMetadata> meta = { Patch(reference, 1, 0, 0, 0),   Patch(reference, 1, 8, 0, 0),
                                                Patch(reference, 2, 0, 16, 0),  Patch(reference, 2, 16, 16, 0),
                                                Patch(reference, 3, 16, 16, 0), Patch(reference, 3, 0, 16, 1) };
  auto                                 patches = Patches(meta, { 0.9f, 0.5f, 0.4f, 0.8f, 0.8f, 0.95f });
  auto                                 fusion = Fusion::New();
  fusion->SetPatches(patches);
  fusion->SetReferenceImage(reference);
  fusion->SetAttentionMap(1, everywhere);
  fusion->SetAttentionMap(2, everywhere);
  fusion->SetAttentionMap(3, leftHalf);
  fusion->PostProcessingOff();
  fusion->ProbabilityMapsOn();
  fusion->Update();
  const Labels * out = fusion->GetOutput();
  EXPECT_EQ(out->GetSpacing(), reference->GetSpacing());
  EXPECT_EQ(out->GetOrigin(), reference->GetOrigin());
  EXPECT_FLOAT_EQ(fusion->GetProbabilityMap(1)->GetPixel({ { 10, 5, 0 } }), 0.7f);
  EXPECT_FLOAT_EQ(fusion->GetProbabilityMap(1)->GetPixel({ { 3, 5, 0 } }), 0.9f);
  EXPECT_FLOAT_EQ(fusion->GetProbabilityMap(1)->GetPixel({ { 20, 5, 0 } }), 0.5f);
  EXPECT_EQ(out->GetPixel({ { 3, 5, 0 } }), 1);
  EXPECT_EQ(out->GetPixel({ { 10, 5, 0 } }), 1);  // 0.7 >= 0.5
  EXPECT_EQ(out->GetPixel({ { 20, 5, 0 } }), 1);  // 0.5 == threshold
  EXPECT_EQ(out->GetPixel({ { 28, 5, 0 } }), 0);  // no patch
  EXPECT_EQ(out->GetPixel({ { 5, 20, 0 } }), 0);  // organ 2 at 0.4 < 0.5
  EXPECT_EQ(out->GetPixel({ { 20, 20, 0 } }), 2); // tie 0.8 / 0.8 (and organ 3 outside its attention)
  EXPECT_EQ(out->GetPixel({ { 5, 20, 1 } }), 3);  // organ 3 inside its attention
  EXPECT_EQ(out->GetPixel({ { 5, 5, 1 } }), 0);   // slice 1 has no organ-1 patch
}

TEST(LabelFusionFilter, TheCoarseVoteBlendsTheCoarseProbabilityInterpolatedAtEachVoxel)
{
  // Two organs everywhere; the fine stage gives organ 1 0.4 and organ 2 0.6 on a 16 x 16 square
  // of slice 0 and nothing elsewhere. Each organ's coarse probability is random on a coarser,
  // shifted grid that covers the reference (3 mm x 3 mm x 4 mm). Expected score: (1 - w) fine
  // + w coarse, the coarse value from ITK's own linear interpolator at the voxel's centre.
  using Probability = Fusion::ProbabilityImageType;
  auto                                  reference = Volume(0);
  auto                                  everywhere = Volume(1);
  std::mt19937                          random(5);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::map<int, Probability::Pointer>   coarse;
  for (const int organ : { 1, 2 })
  {
    auto map = Probability::New();
    map->SetRegions(Probability::SizeType{ { 18, 18, 3 } });
    const double spacing[3] = { 3.0, 3.0, 4.0 };
    const double origin[3] = { -11.0, 3.5, -2.0 }; // index 0 lies before the reference's first voxel
    map->SetSpacing(spacing);
    map->SetOrigin(origin);
    map->Allocate();
    for (itk::ImageRegionIteratorWithIndex<Probability> it(map, map->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
      it.Set(uniform(random));
    coarse[organ] = map;
  }
  const double w = 0.6;
  auto         fusion = Fusion::New();
  fusion->SetPatches(Patches({ Patch(reference, 1, 0, 0, 0), Patch(reference, 2, 0, 0, 0) }, { 0.4f, 0.6f }));
  fusion->SetReferenceImage(reference);
  for (const int organ : { 1, 2 })
  {
    fusion->SetAttentionMap(organ, everywhere);
    fusion->SetCoarseProbabilityMap(organ, coarse[organ]);
  }
  fusion->SetCoarseWeight(w);
  fusion->PostProcessingOff();
  fusion->ProbabilityMapsOn();
  fusion->Update();

  std::map<int, itk::LinearInterpolateImageFunction<Probability>::Pointer> interpolate;
  for (const int organ : { 1, 2 })
  {
    interpolate[organ] = itk::LinearInterpolateImageFunction<Probability>::New();
    interpolate[organ]->SetInputImage(coarse[organ]);
  }
  int labelled[3] = { 0, 0, 0 };
  for (itk::ImageRegionIteratorWithIndex<Labels> it(reference, reference->GetLargestPossibleRegion()); !it.IsAtEnd();
       ++it)
  {
    const auto        index = it.GetIndex();
    Labels::PointType point;
    reference->TransformIndexToPhysicalPoint(index, point);
    const bool fine = index[0] < 16 && index[1] < 16 && index[2] == 0;
    double     score[3] = { 0.0, 0.0, 0.0 };
    for (const int organ : { 1, 2 })
    {
      ASSERT_TRUE(interpolate[organ]->IsInsideBuffer(point));
      score[organ] = (1 - w) * (fine ? 0.2 + 0.2 * organ : 0.0) + w * interpolate[organ]->Evaluate(point);
      ASSERT_NEAR(fusion->GetProbabilityMap(organ)->GetPixel(index), score[organ], 1e-5) << index;
    }
    if (std::abs(score[1] - score[2]) < 1e-5 || std::abs(std::max(score[1], score[2]) - 0.5) < 1e-5)
      continue; // too close to call in float
    const int expected = std::max(score[1], score[2]) < 0.5 ? 0 : (score[2] > score[1] ? 2 : 1);
    ASSERT_EQ(fusion->GetOutput()->GetPixel(index), expected) << index;
    ++labelled[expected];
  }
  // The vote decides in every way: background, organ 1 against the fine stage, organ 2.
  EXPECT_GT(labelled[0], 100);
  EXPECT_GT(labelled[1], 20); // 55 with this seed
  EXPECT_GT(labelled[2], 100);

  // Weight 0: the coarse maps are ignored.
  fusion->SetCoarseWeight(0.0);
  fusion->Update();
  EXPECT_FLOAT_EQ(fusion->GetProbabilityMap(2)->GetPixel({ { 3, 3, 0 } }), 0.6f);
  EXPECT_EQ(fusion->GetProbabilityMap(2)->GetPixel({ { 20, 20, 0 } }), 0.0f);
  // Out of range, or a map for an organ without attention: refused.
  fusion->SetCoarseWeight(1.5);
  EXPECT_THROW(fusion->Update(), itk::ExceptionObject);
  fusion->SetCoarseWeight(0.5);
  fusion->SetCoarseProbabilityMap(7, coarse[1]);
  EXPECT_THROW(fusion->Update(), itk::ExceptionObject);
  fusion->SetCoarseProbabilityMap(7, nullptr);
  EXPECT_NO_THROW(fusion->Update());
  // A coarse map with NaN or a value outside 0..1: refused, naming the organ.
  for (const float bad : { std::numeric_limits<float>::quiet_NaN(), 1.5f, -0.25f })
  {
    auto copy = Probability::New();
    copy->CopyInformation(coarse[2]);
    copy->SetRegions(coarse[2]->GetLargestPossibleRegion());
    copy->Allocate();
    copy->FillBuffer(0.5f);
    copy->SetPixel({ { 3, 4, 1 } }, bad);
    fusion->SetCoarseProbabilityMap(2, copy);
    try
    {
      fusion->Update();
      ADD_FAILURE() << "a coarse map with " << bad << " was accepted";
    }
    catch (const itk::ExceptionObject & e)
    {
      EXPECT_NE(std::string(e.GetDescription()).find("coarse probability map of organ 2"), std::string::npos)
        << e.GetDescription();
    }
  }
}

TEST(LabelFusionFilter, TheCoarseVoteScaledToPeakDividesEachOrgansProbabilityByItsMaximum)
{
  // Organ 1's coarse probability never exceeds 0.2 (a gland the coarse network is unsure of),
  // organ 2's reaches 0.9. Scaled to the peak, each is divided by its own map's maximum (found
  // here by a separate scan) before the blend; an all-zero map is left as it is.
  using Probability = Fusion::ProbabilityImageType;
  auto                                reference = Volume(0);
  auto                                everywhere = Volume(1);
  std::mt19937                        random(9);
  std::map<int, Probability::Pointer> coarse;
  std::map<int, double>               peak;
  for (const int organ : { 1, 2, 3 })
  {
    std::uniform_real_distribution<float> uniform(0.0f, organ == 1 ? 0.2f : organ == 2 ? 0.9f : 0.0f);
    auto                                  map = Probability::New();
    map->SetRegions(Probability::SizeType{ { 14, 14, 3 } }); // covers the reference
    const double spacing[3] = { 4.0, 4.0, 4.0 };
    const double origin[3] = { -12.0, 3.0, -2.0 };
    map->SetSpacing(spacing);
    map->SetOrigin(origin);
    map->Allocate();
    peak[organ] = 0.0;
    for (itk::ImageRegionIteratorWithIndex<Probability> it(map, map->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
    {
      it.Set(organ == 3 ? 0.0f : uniform(random));
      peak[organ] = std::max(peak[organ], static_cast<double>(it.Get()));
    }
    coarse[organ] = map;
  }
  ASSERT_LE(peak[1], 0.2);
  ASSERT_EQ(peak[3], 0.0);
  const double w = 0.6;
  auto         fusion = Fusion::New();
  fusion->SetPatches(
    Patches({ Patch(reference, 1, 0, 0, 0), Patch(reference, 2, 0, 0, 0), Patch(reference, 3, 0, 0, 0) },
            { 0.9f, 0.5f, 0.95f }));
  fusion->SetReferenceImage(reference);
  for (const int organ : { 1, 2, 3 })
  {
    fusion->SetAttentionMap(organ, everywhere);
    fusion->SetCoarseProbabilityMap(organ, coarse[organ]);
  }
  fusion->SetCoarseWeight(w);
  fusion->PostProcessingOff();
  fusion->ProbabilityMapsOn();
  std::map<int, itk::LinearInterpolateImageFunction<Probability>::Pointer> interpolate;
  for (const int organ : { 1, 2, 3 })
  {
    interpolate[organ] = itk::LinearInterpolateImageFunction<Probability>::New();
    interpolate[organ]->SetInputImage(coarse[organ]);
  }
  long organ1[2] = { 0, 0 };
  for (const bool scaled : { false, true })
  {
    fusion->SetCoarseVoteScaledToPeak(scaled);
    fusion->Update();
    for (itk::ImageRegionIteratorWithIndex<Labels> it(reference, reference->GetLargestPossibleRegion()); !it.IsAtEnd();
         ++it)
    {
      const auto        index = it.GetIndex();
      Labels::PointType point;
      reference->TransformIndexToPhysicalPoint(index, point);
      const bool fine = index[0] < 16 && index[1] < 16 && index[2] == 0;
      for (const int organ : { 1, 2, 3 })
      {
        const double fineValue = fine ? (organ == 1 ? 0.9 : organ == 2 ? 0.5 : 0.95) : 0.0;
        ASSERT_TRUE(interpolate[organ]->IsInsideBuffer(point));
        const double divisor = scaled && peak[organ] > 0.0 ? peak[organ] : 1.0;
        const double expected = (1 - w) * fineValue + w * interpolate[organ]->Evaluate(point) / divisor;
        ASSERT_NEAR(fusion->GetProbabilityMap(organ)->GetPixel(index), expected, 1e-5)
          << index << " organ " << organ << " scaled " << scaled;
      }
      organ1[scaled] += fusion->GetOutput()->GetPixel(index) == 1;
    }
  }
  // Unscaled, organ 1's low coarse probability keeps it below the threshold everywhere
  // (0.4 x 0.9 + 0.6 x 0.2 = 0.48 at most); scaled, it wins voxels.
  EXPECT_EQ(organ1[0], 0);
  EXPECT_GT(organ1[1], 10);
}

TEST(LabelFusionFilter, PostProcessingKeepsTheLargestComponentAndFillsHoles)
{
  auto reference = Volume(0, 5);
  auto everywhere = Volume(1, 5);
  // Organ 1: a 16 x 16 x 3 block (slices 1-3) with an enclosed 3 x 3 hole on slice 2, and a
  // separate small 16 x 4 block on slice 2, four rows away from the large one.
  std::vector<itk::TensorItemMetadata> meta = { Patch(reference, 1, 0, 0, 1),
                                                Patch(reference, 1, 0, 0, 2),
                                                Patch(reference, 1, 0, 0, 3),
                                                Patch(reference, 1, 16, 20, 2) };
  auto                                 patches = Patches(meta, { 0.9f, 0.9f, 0.9f, 0.9f });
  at::Tensor                           p = patches->GetTensor("probability");
  p[1][0].slice(0, 6, 9).slice(1, 6, 9).fill_(0.1f); // the hole
  p[3][0].slice(0, 4, 16).fill_(0.0f);               // the small block keeps rows 20..23
  auto fusion = Fusion::New();
  fusion->SetPatches(patches);
  fusion->SetReferenceImage(reference);
  fusion->SetAttentionMap(1, everywhere);
  fusion->Update();
  const Labels * out = fusion->GetOutput();
  EXPECT_EQ(out->GetPixel({ { 7, 7, 2 } }), 1);   // hole filled
  EXPECT_EQ(out->GetPixel({ { 20, 21, 2 } }), 0); // smaller component removed
  EXPECT_EQ(out->GetPixel({ { 0, 0, 1 } }), 1);
  fusion->PostProcessingOff();
  fusion->Update();
  EXPECT_EQ(fusion->GetOutput()->GetPixel({ { 7, 7, 2 } }), 0);
  EXPECT_EQ(fusion->GetOutput()->GetPixel({ { 20, 21, 2 } }), 1);
}

TEST(LabelFusionFilter, MissingAttentionWrongShapesAndGeometryAreRefused)
{
  auto reference = Volume(0);
  auto everywhere = Volume(1);
  auto fusion = Fusion::New();
  fusion->SetPatches(Patches({ Patch(reference, 5, 0, 0, 0) }, { 0.9f }));
  fusion->SetReferenceImage(reference);
  fusion->SetAttentionMap(1, everywhere);
  EXPECT_THROW(fusion->Update(), itk::ExceptionObject); // organ 5 has no attention map

  auto bad = itk::TensorDataObject::New();
  bad->SetTensor("probability", at::rand({ 1, 2, 16, 16 }));
  bad->SetMetadata({ Patch(reference, 1, 0, 0, 0) });
  fusion->SetPatches(bad);
  EXPECT_THROW(fusion->Update(), itk::ExceptionObject);

  auto other = Labels::New();
  other->SetRegions(Labels::SizeType{ { 16, 16, 2 } });
  other->Allocate();
  auto mismatched = Fusion::New();
  mismatched->SetPatches(Patches({ Patch(reference, 1, 0, 0, 0) }, { 0.9f }));
  mismatched->SetReferenceImage(reference);
  mismatched->SetAttentionMap(1, other);
  EXPECT_THROW(mismatched->Update(), itk::ExceptionObject);
  EXPECT_THROW(mismatched->SetAttentionMap(0, everywhere), itk::ExceptionObject);

  // A null map removes the organ's map (as ITK's SetInput(nullptr)): its patches are refused again.
  auto removed = Fusion::New();
  removed->SetPatches(Patches({ Patch(reference, 1, 0, 0, 0) }, { 0.9f }));
  removed->SetReferenceImage(reference);
  removed->SetAttentionMap(2, everywhere);
  removed->SetAttentionMap(1, everywhere);
  removed->SetAttentionMap(1, nullptr);
  EXPECT_THROW(removed->Update(), itk::ExceptionObject); // organ 1 has no attention map any more
  removed->SetAttentionMap(1, everywhere);
  EXPECT_NO_THROW(removed->Update());

  // An organ's own threshold: a probability, for an organ that has an attention map.
  auto thresholds = Fusion::New();
  EXPECT_THROW(thresholds->SetOrganThreshold(1, 1.5), itk::ExceptionObject);
  EXPECT_THROW(thresholds->SetOrganThreshold(1, std::nan("")), itk::ExceptionObject);
  EXPECT_THROW(thresholds->SetOrganThreshold(0, 0.5), itk::ExceptionObject);
  thresholds->SetPatches(Patches({ Patch(reference, 1, 0, 0, 0) }, { 0.9f }));
  thresholds->SetReferenceImage(reference);
  thresholds->SetAttentionMap(1, everywhere);
  thresholds->SetOrganThreshold(7, 0.4);
  EXPECT_THROW(thresholds->Update(), itk::ExceptionObject); // organ 7 has no attention map
  thresholds->ClearOrganThresholds();
  EXPECT_NO_THROW(thresholds->Update());
}

TEST(LabelFusionFilter, RandomPatchesMatchABruteForceFusionOnAnObliqueGrid)
{
  // Reference: for every voxel, the (Gaussian-)weighted mean over all patch (sub-)pixels whose
  // nearest voxel it is (ITK's own physical-to-index mapping), then the rule, in double.
  // Grids: rotated 0.3 rad in-plane (patch rows and columns cross voxel rows; rows of 1.7 mm
  // split in two), axis-aligned and turned 180 degrees (both axes reversed) with patches finer
  // than the voxels (the filter's axis-aligned path).
  for (const double angle : { 0.3, 0.0, 180.0 })
  {
    SCOPED_TRACE(::testing::Message() << "angle " << angle);
    const bool   oblique = angle == 0.3;
    const double sq = 1.2, sr = oblique ? 1.7 : 1.3; // patch spacing along columns and rows
    auto         reference = Volume(0, 6);
    auto         direction = reference->GetDirection();
    direction(0, 0) = direction(1, 1) = angle == 180.0 ? -1.0 : std::cos(angle);
    direction(0, 1) = angle == 180.0 ? 0.0 : -std::sin(angle);
    direction(1, 0) = angle == 180.0 ? 0.0 : std::sin(angle);
    reference->SetDirection(direction);
    std::mt19937                             rng(7);
    std::uniform_real_distribution<double>   unit(0.0, 1.0);
    std::map<unsigned char, Labels::Pointer> attention;
    for (unsigned char organ : { 1, 2, 3 })
    {
      attention[organ] = Volume(0, 6);
      attention[organ]->SetDirection(direction);
      for (itk::ImageRegionIteratorWithIndex<Labels> it(attention[organ], attention[organ]->GetLargestPossibleRegion());
           !it.IsAtEnd();
           ++it)
      {
        const auto i = it.GetIndex();
        it.Set(i[0] >= 3 * organ && i[0] < 14 + 5 * organ && i[1] >= 2 + organ && i[1] < 30 && i[2] >= 1 ? 1 : 0);
      }
    }
    const int64_t                        N = 30, P = 16;
    std::vector<itk::TensorItemMetadata> metadata;
    at::Tensor                           probability = at::rand({ N, 1, P, P });
    for (int64_t n = 0; n < N; ++n)
    {
      itk::TensorItemMetadata m;
      m.organ = 1 + static_cast<int>(n % 3);
      Labels::PointType               p;
      itk::ContinuousIndex<double, 3> c;
      const double                    low = angle == 180.0 ? 6.0 : -4.0; // turned, a patch runs towards lower indices
      c[0] = low + 30 * unit(rng);
      c[1] = low + 30 * unit(rng);
      c[2] = std::floor(6 * unit(rng));
      reference->TransformContinuousIndexToPhysicalPoint(c, p);
      m.origin = { p[0], p[1], p[2] };
      m.spacing = { sq, sr };
      m.axes = { 1, 0, 0, 0, 1, 0 };
      metadata.push_back(m);
    }
    auto patches = itk::TensorDataObject::New();
    patches->SetTensor("probability", probability);
    patches->SetMetadata(metadata);

    // Plain, Gaussian-weighted, and with organs 1 and 3 on their own thresholds (organ 2 on the
    // common 0.5): then the largest margin above the organ's own threshold wins.
    const std::vector<std::pair<bool, std::map<unsigned char, double>>> cases = {
      { false, {} }, { true, {} }, { false, { { 1, 0.4 }, { 3, 0.6 } } }
    };
    for (const auto & [gaussian, thresholds] : cases)
    {
      auto fusion = Fusion::New();
      fusion->SetPatches(patches);
      fusion->SetReferenceImage(reference);
      for (const auto & [organ, map] : attention)
        fusion->SetAttentionMap(organ, map);
      for (const auto & [organ, threshold] : thresholds)
        fusion->SetOrganThreshold(organ, threshold);
      EXPECT_EQ(fusion->GetOrganThreshold(2), 0.5);
      fusion->SetGaussianWeighting(gaussian);
      fusion->PostProcessingOff();
      fusion->ProbabilityMapsOn();
      fusion->ScoreMapOn();
      fusion->Update();

      std::map<unsigned char, std::vector<double>> sum, weight;
      const size_t                                 voxels = reference->GetLargestPossibleRegion().GetNumberOfPixels();
      for (unsigned char organ : { 1, 2, 3 })
      {
        sum[organ].assign(voxels, 0.0);
        weight[organ].assign(voxels, 0.0);
      }
      const float * prob = probability.data_ptr<float>();
      // Patch rows of 1.7 mm are coarser than the voxels (1.5 mm): each pixel is split into 2 along
      // the rows, each half with half the weight; 1.2 and 1.3 mm are not split.
      const int halves = sr > 1.5 ? 2 : 1;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t r = 0; r < P; ++r)
          for (int64_t q = 0; q < P; ++q)
            for (int half = 0; half < halves; ++half)
            {
              const auto &      m = metadata[n];
              Labels::PointType p;
              p[0] = m.origin[0] + q * sq;
              p[1] = m.origin[1] + (r - 0.5 + (half + 0.5) / halves) * sr;
              p[2] = m.origin[2];
              Labels::IndexType index;
              if (!reference->TransformPhysicalPointToIndex(p, index))
                continue;
              const double w =
                (1.0 / halves) *
                (gaussian ? std::exp(-((q - 8.0) * (q - 8.0) + (r - 8.0) * (r - 8.0)) / (2 * 4.0 * 4.0)) : 1.0);
              const auto offset = reference->ComputeOffset(index);
              sum[m.organ][offset] += w * prob[(n * P + r) * P + q];
              weight[m.organ][offset] += w;
            }
      long labelled = 0, changed = 0;
      for (itk::ImageRegionConstIteratorWithIndex<Labels> it(fusion->GetOutput(),
                                                             reference->GetLargestPossibleRegion());
           !it.IsAtEnd();
           ++it)
      {
        const auto    offset = reference->ComputeOffset(it.GetIndex());
        unsigned char expected = 0, plain = 0;
        double        best = -1.0, plainBest = -1.0, expectedMean = 0.0;
        for (unsigned char organ : { 1, 2, 3 })
        {
          const bool   attended = attention[organ]->GetPixel(it.GetIndex()) != 0;
          const double mean = weight[organ][offset] > 0 ? sum[organ][offset] / weight[organ][offset] : 0.0;
          EXPECT_NEAR(fusion->GetProbabilityMap(organ)->GetPixel(it.GetIndex()), attended ? mean : 0.0, 1e-5)
            << it.GetIndex();
          const double threshold = thresholds.count(organ) ? thresholds.at(organ) : 0.5;
          if (attended && mean - threshold >= 0.0 && mean - threshold > best)
          {
            best = mean - threshold;
            expected = organ;
            expectedMean = mean;
          }
          if (attended && mean >= 0.5 && mean > plainBest)
          {
            plainBest = mean;
            plain = organ;
          }
        }
        changed += expected != plain;
        // The score map: max(1, round(255 x the voxel's organ's mean)), 0 for background (one
        // step allowed: float sums against double at a rounding half).
        const double score = fusion->GetScoreImage()->GetPixel(it.GetIndex());
        if (expected == 0)
          ASSERT_EQ(score, 0.0) << it.GetIndex();
        else
          ASSERT_NEAR(score, std::clamp(std::round(255.0 * expectedMean), 1.0, 255.0), 1.0) << it.GetIndex();
        ASSERT_EQ(it.Get(), expected) << it.GetIndex() << (gaussian ? " gaussian" : "") << " thresholds "
                                      << thresholds.size();
        labelled += expected != 0;
      }
      EXPECT_GT(labelled, 500); // the rule is exercised, not only the background
      if (!thresholds.empty())
        EXPECT_GT(changed, 50); // the organs' own thresholds decide voxels the common one would not
    }
  }
}

TEST(LabelFusionFilter, SubdivisionsFollowThePatchsOwnAxesNotTheFinestSpacing)
{
  // Slices (0.5 mm) thinner than the in-plane voxels (1.5 mm): a patch pixel's step, in voxels
  // along each index axis, is worked out here by hand from the geometry.
  auto                          reference = Volume(0, 8);
  const itk::SpacePrecisionType spacing[3] = { 1.5, 1.5, 0.5 };
  reference->SetSpacing(spacing);
  auto m = Patch(reference, 1, 0, 0, 0);
  auto kOf = [&](double sq, double sr, std::array<double, 6> axes) {
    m.spacing = { sq, sr };
    m.axes = axes;
    const auto frames = Fusion::PatchFrames(*reference, { m });
    return std::make_pair(Fusion::Subdivisions(frames[0].column), Fusion::Subdivisions(frames[0].row));
  };
  // Axial at the in-plane spacing: steps (1, 0, 0) and (0, 1, 0) voxels: not split (the
  // finest-spacing rule this replaced gave ceil(1.5 / 0.5) = 3 along both).
  EXPECT_EQ(kOf(1.5, 1.5, { 1, 0, 0, 0, 1, 0 }), std::make_pair(int64_t{ 1 }, int64_t{ 1 }));
  // Axial at twice the voxels: (2, 0, 0) -> 2; rows of 1.51 mm (1.0067 voxels) -> 2.
  EXPECT_EQ(kOf(3.0, 1.51, { 1, 0, 0, 0, 1, 0 }), std::make_pair(int64_t{ 2 }, int64_t{ 2 }));
  // Rows tilted 45 degrees between y and z at 1.5 mm: (0, 1.5 cos 45 / 1.5, 1.5 sin 45 / 0.5) =
  // (0, 0.707, 2.121) voxels, length 2.236 -> 3; columns along x at 1.5 mm -> 1.
  const double c = std::sqrt(0.5);
  EXPECT_EQ(kOf(1.5, 1.5, { 1, 0, 0, 0, c, c }), std::make_pair(int64_t{ 1 }, int64_t{ 3 }));
  // Along z at 0.5 mm: one slice per pixel -> 1; at 0.6 mm: 1.2 slices -> 2.
  EXPECT_EQ(kOf(0.5, 0.6, { 0, 0, 1, 0, 0, 1 }), std::make_pair(int64_t{ 1 }, int64_t{ 2 }));
  // A pixel longer than 64 voxels, or not finite: refused, not a near-endless painting loop.
  EXPECT_THROW(kOf(1.5 * 65, 1.5, { 1, 0, 0, 0, 1, 0 }), itk::ExceptionObject);
  EXPECT_THROW(kOf(std::nan(""), 1.5, { 1, 0, 0, 0, 1, 0 }), itk::ExceptionObject);
  // ... also from Update (the patches are fused on ITK's threads).
  auto attention = Volume(1, 8);
  attention->SetSpacing(spacing);
  m.spacing = { 1.5 * 65, 1.5 };
  m.axes = { 1, 0, 0, 0, 1, 0 };
  auto fusion = Fusion::New();
  fusion->SetPatches(Patches({ m }, { 0.9f }));
  fusion->SetReferenceImage(reference);
  fusion->SetAttentionMap(1, attention);
  EXPECT_THROW(fusion->Update(), itk::ExceptionObject);
}

TEST(LabelFusionFilter, PatchesCoarserThanTheVoxelsLeaveNoHoles)
{
  // A 16 x 16 patch of 3 mm pixels (twice the 1.5 mm voxels) from voxel (0, 0, 0): its footprint
  // is the whole 32 x 32 slice 0, and every voxel of it must be labelled, not every other one.
  // Slices of 4 mm, and slices thinner than the pixels (0.5 mm: split by the in-plane step, 2).
  for (const double sliceSpacing : { 4.0, 0.5 })
  {
    SCOPED_TRACE(::testing::Message() << "slices of " << sliceSpacing << " mm");
    auto                          reference = Volume(0, 4);
    auto                          attention = Volume(1, 4);
    const itk::SpacePrecisionType spacing[3] = { 1.5, 1.5, sliceSpacing };
    reference->SetSpacing(spacing);
    attention->SetSpacing(spacing);
    auto m = Patch(reference, 1, 0, 0, 0);
    m.spacing = { 3.0, 3.0 };
    auto fusion = Fusion::New();
    fusion->SetPatches(Patches({ m }, { 0.9f }));
    fusion->SetReferenceImage(reference);
    fusion->SetAttentionMap(1, attention);
    fusion->PostProcessingOff();
    fusion->Update();
    long slice0 = 0, others = 0;
    for (itk::ImageRegionConstIteratorWithIndex<Labels> it(fusion->GetOutput(), reference->GetLargestPossibleRegion());
         !it.IsAtEnd();
         ++it)
      (it.GetIndex()[2] == 0 ? slice0 : others) += it.Get() == 1;
    EXPECT_EQ(slice0, 32 * 32);
    EXPECT_EQ(others, 0);
  }
}
