/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkLabelBoundingBoxes.h"

#include "agcl/AttentionMap.h"
#include "agcl/GridResample.h"
#include "agcl/ModelConfig.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace {
using Source = itk::AbdominalPhantomImageSource;
using CT = Source::CTImageType;
using Labels = Source::LabelImageType;
using Filter = itk::CoarseAttentionFilter<CT, Labels>;

Source::Pointer
Phantom()
{
  static Source::Pointer source;
  if (!source)
  {
    source = Source::New();
    Source::SizeType size{ { 96, 96, 40 } }; // 3.65 x 3.65 x 6.25 mm: anisotropic
    source->SetSize(size);
    source->SetSeed(21);
    source->Update();
  }
  return source;
}

// Brute-force distance (mm) from voxel `index` to the nearest voxel labelled `organ`.
double
Distance(const Labels * labels, const Labels::IndexType & index, unsigned char organ)
{
  const auto   size = labels->GetLargestPossibleRegion().GetSize();
  const auto   s = labels->GetSpacing();
  const auto * buffer = labels->GetBufferPointer();
  double       best = 1e18;
  for (long k = 0; k < static_cast<long>(size[2]); ++k)
    for (long j = 0; j < static_cast<long>(size[1]); ++j)
      for (long i = 0; i < static_cast<long>(size[0]); ++i)
        if (buffer[(k * size[1] + j) * size[0] + i] == organ)
        {
          const double dx = (i - index[0]) * s[0], dy = (j - index[1]) * s[1], dz = (k - index[2]) * s[2];
          best = std::min(best, dx * dx + dy * dy + dz * dz);
        }
  return std::sqrt(best);
}
} // namespace

TEST(CoarseAttentionFilter, AttentionIsTheOrganDilatedByTheMarginInMillimetres)
{
  auto source = Phantom();
  auto filter = Filter::New();
  filter->SetInput(source->GetOutput());
  filter->SetCoarseLabelMap(source->GetLabelOutput());
  filter->SetMarginMM(8.0);
  filter->Update();
  ASSERT_EQ(filter->GetNumberOfIndexedOutputs(), 13u);
  const Labels * labels = source->GetLabelOutput();
  std::mt19937   rng(5);
  for (unsigned char organ : { 1, 4, 8, 12 })
  {
    const Labels * attention = filter->GetAttentionMap(organ);
    EXPECT_EQ(attention->GetSpacing(), labels->GetSpacing());
    EXPECT_EQ(attention->GetLargestPossibleRegion(), labels->GetLargestPossibleRegion());
    // Every organ voxel is attended.
    const auto * a = attention->GetBufferPointer();
    const auto * l = labels->GetBufferPointer();
    const auto   n = labels->GetLargestPossibleRegion().GetNumberOfPixels();
    for (size_t v = 0; v < n; ++v)
      if (l[v] == organ)
        ASSERT_EQ(a[v], 1);
    // Random voxels: attended exactly when the brute-force distance is within the margin.
    const auto size = labels->GetLargestPossibleRegion().GetSize();
    int        checkedNear = 0;
    for (int trial = 0; trial < 400; ++trial)
    {
      // Sample around the organ's attention region so that both sides of the boundary are hit.
      Labels::IndexType index;
      size_t            v = 0;
      do
      {
        v = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
      } while (a[v] == 0 && std::uniform_int_distribution<int>(0, 9)(rng) != 0);
      index[0] = v % size[0];
      index[1] = (v / size[0]) % size[1];
      index[2] = v / (size[0] * size[1]);
      const double d = Distance(labels, index, organ);
      if (std::abs(d - 8.0) < 1e-3)
        continue; // on the margin itself: either answer is right
      EXPECT_EQ(a[v] == 1, d <= 8.0) << "organ " << int(organ) << " voxel " << index << " distance " << d;
      checkedNear += d > 0 && d <= 8.0;
    }
    EXPECT_GT(checkedNear, 0) << "no sampled voxel in the margin band of organ " << int(organ);
  }
}

TEST(CoarseAttentionFilter, AbsentOrganGivesAnEmptyMapAndUnknownLabelsAreBackground)
{
  auto source = Phantom();
  // A coarse map with the adrenal (12) removed and an extra label (13, e.g. a left adrenal) added.
  auto coarse = Labels::New();
  coarse->Graft(source->GetLabelOutput());
  auto copy = Labels::New();
  copy->CopyInformation(coarse);
  copy->SetRegions(coarse->GetLargestPossibleRegion());
  copy->Allocate();
  const auto n = coarse->GetLargestPossibleRegion().GetNumberOfPixels();
  for (size_t v = 0; v < n; ++v)
  {
    const unsigned char l = coarse->GetBufferPointer()[v];
    copy->GetBufferPointer()[v] = l == 12 ? 13 : l;
  }
  auto filter = Filter::New();
  filter->SetInput(source->GetOutput());
  filter->SetCoarseLabelMap(copy);
  filter->Update();
  const auto * adrenal = filter->GetAttentionMap(12)->GetBufferPointer();
  EXPECT_TRUE(std::all_of(adrenal, adrenal + n, [](unsigned char v) { return v == 0; }));
  const auto * out = filter->GetCoarseLabelOutput()->GetBufferPointer();
  EXPECT_TRUE(std::none_of(out, out + n, [](unsigned char v) { return v == 13; }));
  EXPECT_THROW(filter->GetAttentionMap(13), itk::ExceptionObject);
}

TEST(CoarseAttentionFilter, MismatchedGeometryMissingMapAndBadMarginAreRefused)
{
  auto             source = Phantom();
  auto             other = Source::New();
  Source::SizeType size{ { 64, 64, 40 } };
  other->SetSize(size);
  other->Update();
  auto filter = Filter::New();
  filter->SetInput(source->GetOutput());
  filter->SetCoarseLabelMap(other->GetLabelOutput());
  EXPECT_THROW(filter->Update(), itk::ExceptionObject);

  auto noMap = Filter::New();
  noMap->SetInput(source->GetOutput());
  try
  {
    noMap->Update();
    ADD_FAILURE() << "no exception without a coarse map";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("no coarse label map and no model"), std::string::npos)
      << e.GetDescription();
  }

  auto badMargin = Filter::New();
  badMargin->SetInput(source->GetOutput());
  badMargin->SetCoarseLabelMap(source->GetLabelOutput());
  badMargin->SetMarginMM(-1.0);
  EXPECT_THROW(badMargin->Update(), itk::ExceptionObject);
  EXPECT_THROW(badMargin->SetOrganLabels({ 1, 1 }), itk::ExceptionObject);
}

TEST(CoarseAttentionFilter, AttentionFromACoarseSeedEqualsTheDilationOfTheWholeResampledSeed)
{
  // A seed on the 8 mm coarse grid (the phantom's labels resampled there), grown into the
  // fine grid by ComputeAttentionFromSeed (which resamples only around the seed), against the
  // reference: the whole seed resampled to the fine grid, then ComputeAttentionMap.
  auto              source = Phantom();
  const CT *        ct = source->GetOutput();
  agcl::ModelConfig config;
  config.coarse_spacing_mm = { 8.0, 8.0, 8.0 };
  const auto coarse = Filter::ResampleToCoarseGrid(ct, config);
  const auto coarseLabels =
    Filter::ResampleLabels(source->GetLabelOutput(), coarse, coarse->GetLargestPossibleRegion());
  const auto whole = ct->GetLargestPossibleRegion();
  for (unsigned char organ : { 1, 3, 6 })
  {
    auto seed = Filter::ResampleLabels(coarseLabels, coarseLabels, coarseLabels->GetLargestPossibleRegion());
    for (auto *v = seed->GetBufferPointer(), *e = v + seed->GetLargestPossibleRegion().GetNumberOfPixels(); v != e; ++v)
      *v = *v == organ ? organ : 0;
    auto newMap = [&](const Labels::RegionType & region) {
      auto map = Labels::New();
      map->CopyInformation(ct);
      map->SetRegions(region);
      map->Allocate();
      map->FillBuffer(0);
      return map;
    };
    const auto fine = Filter::ResampleLabels(seed, ct, whole);
    const auto boxes = itk::LabelBoundingBoxes(fine.GetPointer(), whole);
    ASSERT_EQ(boxes.count(organ), 1u) << "organ " << int(organ) << " vanished on the coarse grid";
    auto expected = newMap(whole);
    Filter::ComputeAttentionMap(fine, organ, boxes.at(organ), 10.0, expected);
    auto got = newMap(whole);
    Filter::ComputeAttentionFromSeed(seed, organ, ct, whole, 10.0, got);
    const auto n = whole.GetNumberOfPixels();
    EXPECT_TRUE(std::equal(got->GetBufferPointer(), got->GetBufferPointer() + n, expected->GetBufferPointer()))
      << "organ " << int(organ);
    EXPECT_GT(std::count(got->GetBufferPointer(), got->GetBufferPointer() + n, 1), 0);
    // A slab (as AGCLSegmentationFilter uses it): slices 14..21 of a region grown by 3 slices.
    auto slab = whole, grown = whole;
    slab.SetIndex(2, 14);
    slab.SetSize(2, 8);
    grown.SetIndex(2, 11);
    grown.SetSize(2, 14);
    auto part = newMap(slab);
    Filter::ComputeAttentionFromSeed(seed, organ, ct, grown, 10.0, part);
    for (itk::ImageRegionConstIteratorWithIndex<Labels> it(part, slab); !it.IsAtEnd(); ++it)
      ASSERT_EQ(it.Get(), expected->GetPixel(it.GetIndex())) << "organ " << int(organ) << " at " << it.GetIndex();
  }
  // An empty seed writes nothing.
  auto empty = Labels::New();
  empty->CopyInformation(coarseLabels);
  empty->SetRegions(coarseLabels->GetLargestPossibleRegion());
  empty->Allocate();
  empty->FillBuffer(0);
  auto untouched = Labels::New();
  untouched->CopyInformation(ct);
  untouched->SetRegions(whole);
  untouched->Allocate();
  untouched->FillBuffer(7);
  Filter::ComputeAttentionFromSeed(empty, 1, ct, whole, 10.0, untouched);
  EXPECT_EQ(std::count(untouched->GetBufferPointer(), untouched->GetBufferPointer() + whole.GetNumberOfPixels(), 7),
            static_cast<long>(whole.GetNumberOfPixels()));
}

TEST(CoarseAttentionFilter, TheCoreTensorStagesEqualTheITKPath)
{
  // Issue 17: the core's tensor functions against this filter's ITK implementation (the
  // reference), on the anisotropic phantom: each organ's attention (organ + margin, Maurer's
  // distance map here, separable minima there) voxel for voxel, and the coarse grid (linear
  // resampling, then the window) to float precision.
  auto                         source = Phantom();
  const Labels *               labels = source->GetLabelOutput();
  const auto                   size = labels->GetLargestPossibleRegion().GetSize();
  const auto                   spacing = labels->GetSpacing();
  const std::array<int64_t, 3> shape{ static_cast<int64_t>(size[2]),
                                      static_cast<int64_t>(size[1]),
                                      static_cast<int64_t>(size[0]) };
  const torch::Tensor          labelTensor = torch::from_blob(
    const_cast<unsigned char *>(labels->GetBufferPointer()), { shape[0], shape[1], shape[2] }, torch::kUInt8);
  const auto boxes = itk::LabelBoundingBoxes(labels, labels->GetLargestPossibleRegion());
  int64_t    attended = 0;
  for (const double margin : { 8.0, 10.0 })
    for (unsigned char organ = 1; organ <= 12; ++organ)
    {
      auto attention = Labels::New();
      attention->CopyInformation(labels);
      attention->SetRegions(labels->GetLargestPossibleRegion());
      attention->Allocate();
      attention->FillBuffer(0);
      ASSERT_NE(boxes.find(organ), boxes.end()) << "organ " << int(organ);
      Filter::ComputeAttentionMap(labels, organ, boxes.at(organ), margin, attention);
      const torch::Tensor reference =
        torch::from_blob(attention->GetBufferPointer(), { shape[0], shape[1], shape[2] }, torch::kUInt8).ne(0);
      const torch::Tensor got =
        agcl::GrowByMargin(labelTensor.eq(organ), { spacing[2], spacing[1], spacing[0] }, margin);
      EXPECT_TRUE(torch::equal(got, reference)) << "organ " << int(organ) << ", margin " << margin << ": "
                                                << got.ne(reference).sum().item<int64_t>() << " voxels differ";
      attended += reference.sum().item<int64_t>();
    }
  EXPECT_GT(attended, 0);

  // The coarse grid: ITK's resampling + window against ResampleLinear + the same window.
  agcl::ModelConfig config;
  config.coarse_spacing_mm = { 4.0, 4.0, 5.0 };
  const CT *          ct = source->GetOutput();
  const auto          coarse = Filter::ResampleToCoarseGrid(ct, config);
  const auto          coarseSize = coarse->GetLargestPossibleRegion().GetSize();
  const torch::Tensor image = torch::from_blob(const_cast<CT::PixelType *>(ct->GetBufferPointer()),
                                               { shape[0], shape[1], shape[2] },
                                               c10::CppTypeToScalarType<CT::PixelType>::value)
                                .to(torch::kFloat);
  std::array<agcl::AxisMapping, 3> mapping;
  for (unsigned int d = 0; d < 3; ++d) // lower edges coincide: index = (j + 0.5) coarse / fine - 0.5
  {
    const double ratio = config.coarse_spacing_mm[d] / spacing[d];
    mapping[2 - d] = agcl::AxisMapping{ ratio, 0.5 * ratio - 0.5 };
  }
  const std::array<int64_t, 3> coarseShape{ static_cast<int64_t>(coarseSize[2]),
                                            static_cast<int64_t>(coarseSize[1]),
                                            static_cast<int64_t>(coarseSize[0]) };
  const double                 low = config.coarse_window_low, width = config.coarse_window_high - low;
  const torch::Tensor          tensorCoarse =
    agcl::ResampleLinear(image, mapping, coarseShape, low).sub(low).div(width).clamp(0.0, 1.0);
  const torch::Tensor itkCoarse =
    torch::from_blob(coarse->GetBufferPointer(), { coarseShape[0], coarseShape[1], coarseShape[2] }, torch::kFloat);
  EXPECT_LT((tensorCoarse - itkCoarse).abs().max().item<double>(), 1e-5);
  EXPECT_GT(itkCoarse.std().item<double>(), 0.1); // the phantom's tissues, not a constant
}

TEST(CoarseAttentionFilter, TheTensorFunctionsWriteTheITKPathsVoxels)
{
  // Issue 17: ComputeAttentionFromSeedTensor / ComputeAttentionMapTensor (the core's
  // ResampleNearest + GrowByMargin) against the ITK functions (the reference), for every organ:
  // seeds on three coarse grids, the whole volume and a slab inside a grown region, and a CT
  // whose direction flips and swaps axes (the seed grid shares it) or is rotated against the seed
  // (the ITK resampling then). Every voxel equal; the count and the written box true.
  auto               source = Phantom();
  const CT *         ct = source->GetOutput();
  const Labels *     labels = source->GetLabelOutput();
  const auto         whole = ct->GetLargestPossibleRegion();
  Labels::RegionType slab = whole, grown = whole;
  slab.SetIndex(2, 14);
  slab.SetSize(2, 8);
  grown.SetIndex(2, 11);
  grown.SetSize(2, 14);
  auto newMap = [&](const itk::ImageBase<3> * like, const Labels::RegionType & region) {
    auto map = Labels::New();
    map->CopyInformation(like);
    map->SetRegions(region);
    map->Allocate();
    map->FillBuffer(0);
    return map;
  };
  auto expectSame = [&](const Labels *             got,
                        const Labels *             expected,
                        int64_t                    count,
                        const Labels::RegionType & box,
                        const std::string &        what) {
    int64_t ones = 0, outside = 0, differ = 0;
    for (itk::ImageRegionConstIteratorWithIndex<Labels> it(got, got->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    {
      differ += it.Get() != expected->GetPixel(it.GetIndex());
      ones += it.Get() == 1;
      outside += it.Get() != 0 && !box.IsInside(it.GetIndex());
    }
    EXPECT_EQ(differ, 0) << what;
    EXPECT_EQ(ones, count) << what;
    EXPECT_EQ(outside, 0) << what;
    return ones;
  };
  int64_t attended = 0;
  for (const std::array<double, 3> spacing : { std::array<double, 3>{ 8.0, 8.0, 8.0 },
                                               std::array<double, 3>{ 4.0, 4.0, 5.0 },
                                               std::array<double, 3>{ 6.0, 6.0, 8.0 } })
  {
    agcl::ModelConfig config;
    config.coarse_spacing_mm = spacing;
    const auto coarse = Filter::ResampleToCoarseGrid(ct, config);
    const auto seeds = Filter::ResampleLabels(labels, coarse, coarse->GetLargestPossibleRegion());
    for (unsigned char organ = 1; organ <= 12; ++organ)
      for (const auto & [region, within] : { std::pair{ whole, whole }, std::pair{ slab, grown } })
      {
        const std::string what = "organ " + std::to_string(organ) + ", coarse " + std::to_string(spacing[0]) +
                                 ", region from slice " + std::to_string(region.GetIndex(2));
        auto expected = newMap(ct, region), got = newMap(ct, region);
        Filter::ComputeAttentionFromSeed(seeds, organ, ct, within, 10.0, expected);
        Labels::RegionType box;
        const int64_t      count = Filter::ComputeAttentionFromSeedTensor(seeds, organ, ct, within, 10.0, got, &box);
        attended += expectSame(got, expected, count, box, "seed, " + what);
        // The fine map's own function: the phantom's labels, margin 8 mm.
        const auto boxes = itk::LabelBoundingBoxes(labels, within);
        if (spacing[0] != 8.0 || boxes.count(organ) == 0)
          continue;
        auto expectedMap = newMap(ct, region), gotMap = newMap(ct, region);
        Filter::ComputeAttentionMap(labels, organ, boxes.at(organ), 8.0, expectedMap);
        const int64_t n = Filter::ComputeAttentionMapTensor(labels, organ, boxes.at(organ), within, 8.0, gotMap, &box);
        // (In the slab the ITK function also reads labels beyond `within`, all farther than the margin.)
        attended += expectSame(gotMap, expectedMap, n, box, "map, " + what);
      }
  }
  EXPECT_GT(attended, 100000);

  // Other directions: axes flipped and swapped (the coarse grid shares it: the tensor mapping),
  // and a seed grid rotated by 30 degrees about z against the CT (the ITK resampling fallback).
  auto turned = CT::New();
  turned->Graft(ct);
  CT::DirectionType flip;
  flip.Fill(0.0);
  flip(0, 1) = -1.0;
  flip(1, 0) = 1.0;
  flip(2, 2) = -1.0;
  turned->SetDirection(flip);
  turned->SetOrigin(ct->GetOrigin() + CT::PointType::VectorType(7.3));
  auto turnedLabels = Labels::New();
  turnedLabels->Graft(labels);
  turnedLabels->SetDirection(flip);
  turnedLabels->SetOrigin(turned->GetOrigin());
  agcl::ModelConfig config;
  config.coarse_spacing_mm = { 4.0, 4.0, 5.0 };
  const auto coarse = Filter::ResampleToCoarseGrid(turned, config);
  const auto seeds = Filter::ResampleLabels(turnedLabels, coarse, coarse->GetLargestPossibleRegion());
  auto       rotatedSeeds = Labels::New();
  rotatedSeeds->Graft(seeds);
  Labels::DirectionType rotation;
  rotation.SetIdentity();
  rotation(0, 0) = rotation(1, 1) = std::cos(M_PI / 6);
  rotation(0, 1) = -std::sin(M_PI / 6);
  rotation(1, 0) = std::sin(M_PI / 6);
  rotatedSeeds->SetDirection(rotation * flip);
  for (const Labels * seedGrid : { static_cast<const Labels *>(seeds), static_cast<const Labels *>(rotatedSeeds) })
    for (unsigned char organ : { 1, 2, 5, 11 })
    {
      auto expected = newMap(turned, whole), got = newMap(turned, whole);
      Filter::ComputeAttentionFromSeed(seedGrid, organ, turned, whole, 10.0, expected);
      Labels::RegionType box;
      const int64_t count = Filter::ComputeAttentionFromSeedTensor(seedGrid, organ, turned, whole, 10.0, got, &box);
      EXPECT_GT(expectSame(got, expected, count, box, "turned grid, organ " + std::to_string(organ)), 0);
    }
}

TEST(CoarseAttentionFilter, TensorStagesOnAndOffGiveTheSameOutputs)
{
  // The filter with a given coarse map: every output equal with the tensor stages and without.
  auto                         source = Phantom();
  std::vector<Labels::Pointer> outputs[2];
  for (const bool tensor : { false, true })
  {
    auto filter = Filter::New();
    filter->SetInput(source->GetOutput());
    filter->SetCoarseLabelMap(source->GetLabelOutput());
    filter->SetMarginMM(9.0);
    filter->SetTensorStages(tensor);
    filter->Update();
    for (unsigned int i = 0; i < filter->GetNumberOfIndexedOutputs(); ++i)
    {
      Labels::Pointer output = filter->GetOutput(i);
      output->DisconnectPipeline();
      outputs[tensor].push_back(output);
    }
  }
  ASSERT_EQ(outputs[0].size(), 13u);
  for (size_t i = 0; i < outputs[0].size(); ++i)
  {
    const auto n = outputs[0][i]->GetLargestPossibleRegion().GetNumberOfPixels();
    EXPECT_TRUE(std::equal(
      outputs[0][i]->GetBufferPointer(), outputs[0][i]->GetBufferPointer() + n, outputs[1][i]->GetBufferPointer()))
      << "output " << i;
    EXPECT_GT(std::count(outputs[1][i]->GetBufferPointer(), outputs[1][i]->GetBufferPointer() + n, 0), 0);
  }
}

TEST(LabelBoundingBoxes, EqualABruteForceScanForAnyRowLengthAndSubregion)
{
  // The row scan skips background 64 values at a time: random sparse and clustered labels in
  // rows shorter, equal to and longer than a block (and not multiples of it), whole images and
  // sub-regions, per label and merged, against a voxel-by-voxel scan with indices.
  std::mt19937 random(5);
  auto         check = [&](auto pixel) {
    using Pixel = decltype(pixel);
    using Wide = itk::Image<Pixel, 3>;
    for (const long width : { 7L, 63L, 64L, 65L, 150L, 300L })
      for (int trial = 0; trial < 3; ++trial)
      {
        auto image = Wide::New();
        image->SetRegions(typename Wide::SizeType{ { static_cast<unsigned long>(width), 9, 5 } });
        image->Allocate();
        image->FillBuffer(0);
        const int count = 1 + trial * 6;
        for (int i = 0; i < count; ++i)
        {
          typename Wide::IndexType at{
            { static_cast<long>(random() % width), static_cast<long>(random() % 9), static_cast<long>(random() % 5) }
          };
          const auto label = static_cast<Pixel>(1 + random() % 3 + (trial == 2 ? 200 : 0));
          for (long run = 0; run < 1 + static_cast<long>(random() % 70) && at[0] < width; ++run, ++at[0])
            image->SetPixel(at, label);
        }
        auto sub = image->GetLargestPossibleRegion();
        if (trial == 1)
        {
          sub.SetIndex({ { width / 3, 2, 1 } });
          sub.SetSize({ { static_cast<unsigned long>(width - width / 3), 5, 3 } });
        }
        for (const bool merge : { false, true })
        {
          std::map<Pixel, std::pair<typename Wide::IndexType, typename Wide::IndexType>> expected;
          for (itk::ImageRegionConstIteratorWithIndex<Wide> it(image, sub); !it.IsAtEnd(); ++it)
          {
            if (it.Get() == 0)
              continue;
            const Pixel key = merge ? Pixel{ 1 } : it.Get();
            auto        found = expected.find(key);
            if (found == expected.end())
              found = expected.emplace(key, std::make_pair(it.GetIndex(), it.GetIndex())).first;
            for (unsigned int d = 0; d < 3; ++d)
            {
              found->second.first[d] = std::min(found->second.first[d], it.GetIndex()[d]);
              found->second.second[d] = std::max(found->second.second[d], it.GetIndex()[d]);
            }
          }
          const auto got = itk::LabelBoundingBoxes(image.GetPointer(), sub, merge);
          ASSERT_EQ(got.size(), expected.size()) << "width " << width << ", trial " << trial;
          for (const auto & [key, corners] : expected)
          {
            ASSERT_EQ(got.count(key), 1u);
            EXPECT_EQ(got.at(key).GetIndex(), corners.first) << "width " << width << ", label " << int(key);
            EXPECT_EQ(got.at(key).GetUpperIndex(), corners.second) << "width " << width << ", label " << int(key);
          }
        }
      }
  };
  check(static_cast<unsigned char>(0));
  check(static_cast<unsigned short>(0));
}
