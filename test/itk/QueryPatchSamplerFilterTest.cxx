/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkQueryPatchSamplerFilter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace {
using Source = itk::AbdominalPhantomImageSource;
using CT = Source::CTImageType;
using Labels = Source::LabelImageType;
using Sampler = itk::QueryPatchSamplerFilter<CT, Labels>;
using Attention = itk::CoarseAttentionFilter<CT, Labels>;

struct Fixture
{
  Source::Pointer    source;
  Attention::Pointer attention;
};

Fixture &
Data()
{
  static Fixture f;
  if (!f.source)
  {
    f.source = Source::New();
    Source::SizeType size{ { 96, 96, 40 } };
    f.source->SetSize(size);
    f.source->SetSeed(33);
    f.source->Update();
    f.attention = Attention::New();
    f.attention->SetInput(f.source->GetOutput());
    f.attention->SetCoarseLabelMap(f.source->GetLabelOutput());
    f.attention->SetMarginMM(8.0);
    f.attention->Update();
  }
  return f;
}

Sampler::Pointer
MakeSampler(const CT * image, std::vector<unsigned char> organs, const std::vector<const Labels *> & maps)
{
  auto sampler = Sampler::New();
  sampler->SetInput(image);
  for (size_t i = 0; i < organs.size(); ++i)
    sampler->SetAttentionMap(organs[i], maps[i]);
  sampler->SetPatchSize(32);
  return sampler;
}

// Windowed value of the CT voxel at `index`.
float
Windowed(const CT * image, const CT::IndexType & index)
{
  return static_cast<float>(std::clamp((image->GetPixel(index) + 175.0) / 450.0, 0.0, 1.0));
}
} // namespace

TEST(QueryPatchSamplerFilter, TrainingPatchesAreCentredInTheAttentionAndMatchTheVolumes)
{
  auto &       d = Data();
  const CT *   image = d.source->GetOutput();
  const auto * labels = d.source->GetLabelOutput();
  auto         sampler =
    MakeSampler(image,
                { 1, 6, 12 },
                { d.attention->GetAttentionMap(1), d.attention->GetAttentionMap(6), d.attention->GetAttentionMap(12) });
  sampler->SetMode(Sampler::ModeEnum::Training);
  sampler->SetPatchesPerOrgan(5);
  sampler->SetLabelMap(labels);
  sampler->SetModality(1);
  sampler->Update();
  const auto * out = sampler->GetOutput();
  ASSERT_EQ(out->GetNumberOfItems(), 15);
  const at::Tensor patches = out->GetTensor("image");
  const at::Tensor labelPatches = out->GetTensor("label");
  EXPECT_EQ(patches.sizes().vec(), (std::vector<int64_t>{ 15, 2, 32, 32 }));
  const auto s = image->GetSpacing();
  for (int64_t n = 0; n < 15; ++n)
  {
    const auto & m = out->GetMetadata()[n];
    EXPECT_EQ(m.modality, 1);
    // Native spacing: patch pixels sit on voxel centres; pixel (r, q) is voxel first + (q, r).
    ASSERT_DOUBLE_EQ(m.spacing[0], std::min(s[0], s[1]));
    const Labels * map = d.attention->GetAttentionMap(static_cast<unsigned char>(m.organ));
    CT::IndexType  centre{ { m.index[0] + 16, m.index[1] + 16, m.index[2] } };
    EXPECT_EQ(map->GetPixel(centre), 1) << "patch " << n << " centre outside the attention of organ " << m.organ;
    EXPECT_EQ(m.slice, centre[2]);
    for (int64_t r = 0; r < 32; r += 3)
      for (int64_t q = 0; q < 32; q += 5)
      {
        const CT::IndexType index{ { m.index[0] + q, m.index[1] + r, m.index[2] } };
        if (!image->GetLargestPossibleRegion().IsInside(index))
          continue;
        EXPECT_NEAR(patches[n][0][r][q].item<float>(), Windowed(image, index), 1e-5);
        EXPECT_EQ(patches[n][1][r][q].item<float>(), map->GetPixel(index) ? 1.0f : 0.0f);
        EXPECT_EQ(labelPatches[n][0][r][q].item<uint8_t>(), labels->GetPixel(index) == m.organ ? 1 : 0);
      }
  }
}

TEST(QueryPatchSamplerFilter, InferenceTilesCoverEveryAttentionVoxel)
{
  auto &     d = Data();
  const CT * image = d.source->GetOutput();
  auto       sampler =
    MakeSampler(image,
                { 4, 8, 11 },
                { d.attention->GetAttentionMap(4), d.attention->GetAttentionMap(8), d.attention->GetAttentionMap(11) });
  sampler->SetMode(Sampler::ModeEnum::Inference);
  sampler->SetOverlap(0.25);
  sampler->Update();
  const auto & meta = sampler->GetOutput()->GetMetadata();
  ASSERT_GT(meta.size(), 0u);
  for (unsigned char organ : { 4, 8, 11 })
  {
    const Labels * map = d.attention->GetAttentionMap(organ);
    int64_t        uncovered = 0, attended = 0;
    for (itk::ImageRegionConstIteratorWithIndex<Labels> it(map, map->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
    {
      if (!it.Get())
        continue;
      ++attended;
      const auto & v = it.GetIndex();
      bool         covered = false;
      for (const auto & m : meta)
        covered = covered || (m.organ == organ && m.index[2] == v[2] && v[0] >= m.index[0] && v[0] < m.index[0] + 32 &&
                              v[1] >= m.index[1] && v[1] < m.index[1] + 32);
      uncovered += !covered;
    }
    EXPECT_GT(attended, 0);
    EXPECT_EQ(uncovered, 0) << "organ " << int(organ);
  }
}

// A sampler run again reuses its output's patch buffer only when nothing else holds it: the
// patches equal a fresh sampler's whether the buffer shrinks or grows, and a tensor a caller kept
// from the previous run is not overwritten.
TEST(QueryPatchSamplerFilter, ReusedPatchBufferNeverOverwritesAHeldOutput)
{
  auto &         d = Data();
  const CT *     image = d.source->GetOutput();
  const Labels * liver = d.attention->GetAttentionMap(8);
  const Labels * kidney = d.attention->GetAttentionMap(4);
  auto           fresh = [&](const Labels * map) {
    auto sampler = MakeSampler(image, { 8 }, { map });
    sampler->SetMode(Sampler::ModeEnum::Inference);
    sampler->Update();
    return sampler->GetOutput()->GetTensor("image").clone();
  };
  const at::Tensor liverPatches = fresh(liver), kidneyPatches = fresh(kidney);
  ASSERT_NE(liverPatches.size(0), kidneyPatches.size(0));

  auto sampler = MakeSampler(image, { 8 }, { liver });
  sampler->SetMode(Sampler::ModeEnum::Inference);
  sampler->Update();
  const void * first = sampler->GetOutput()->GetTensor("image").data_ptr();
  // Nothing held: the next run (another map, another number of patches) writes into the buffer
  // when it is large enough.
  sampler->SetAttentionMap(8, kidney);
  sampler->Update();
  EXPECT_TRUE(sampler->GetOutput()->GetTensor("image").equal(kidneyPatches));
  if (kidneyPatches.size(0) <= liverPatches.size(0))
    EXPECT_EQ(sampler->GetOutput()->GetTensor("image").data_ptr(), first);
  // A caller holds a view of the output's storage: the next run leaves it as it was.
  const at::Tensor view = sampler->GetOutput()->GetTensor("image").slice(0, 1, 2);
  sampler->SetAttentionMap(8, liver);
  sampler->Update();
  EXPECT_TRUE(sampler->GetOutput()->GetTensor("image").equal(liverPatches));
  EXPECT_TRUE(view.equal(kidneyPatches.slice(0, 1, 2)));
  // A caller holds the output tensor itself: the same.
  const at::Tensor held = sampler->GetOutput()->GetTensor("image");
  sampler->SetAttentionMap(8, kidney);
  sampler->Update();
  EXPECT_TRUE(sampler->GetOutput()->GetTensor("image").equal(kidneyPatches));
  EXPECT_TRUE(held.equal(liverPatches));
  EXPECT_NE(sampler->GetOutput()->GetTensor("image").data_ptr(), held.data_ptr());
}

TEST(QueryPatchSamplerFilter, FlippedOrientationGivesTheSamePatches)
{
  auto &     d = Data();
  const CT * image = d.source->GetOutput();
  const auto size = image->GetLargestPossibleRegion().GetSize();
  // The same volume stored with the x axis reversed (RPS-like): same physical space.
  auto flip = [&](auto * in) {
    using ImageType = std::remove_const_t<std::remove_pointer_t<decltype(in)>>;
    auto out = ImageType::New();
    out->SetRegions(in->GetLargestPossibleRegion());
    out->SetSpacing(in->GetSpacing());
    auto direction = in->GetDirection();
    for (unsigned r = 0; r < 3; ++r)
      direction(r, 0) = -direction(r, 0);
    out->SetDirection(direction);
    typename ImageType::PointType origin;
    in->TransformIndexToPhysicalPoint({ { static_cast<long>(size[0]) - 1, 0, 0 } }, origin);
    out->SetOrigin(origin);
    out->Allocate();
    for (itk::ImageRegionConstIteratorWithIndex<ImageType> it(in, in->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
    {
      auto index = it.GetIndex();
      index[0] = static_cast<long>(size[0]) - 1 - index[0];
      out->SetPixel(index, it.Get());
    }
    return out;
  };
  auto flippedImage = flip(image);
  auto flippedMap = flip(d.attention->GetAttentionMap(1));
  auto original = MakeSampler(image, { 1 }, { d.attention->GetAttentionMap(1) });
  auto flipped = MakeSampler(flippedImage, { 1 }, { flippedMap.GetPointer() });
  original->Update();
  flipped->Update();
  const at::Tensor a = original->GetOutput()->GetTensor("image");
  const at::Tensor b = flipped->GetOutput()->GetTensor("image");
  ASSERT_EQ(a.sizes(), b.sizes());
  ASSERT_GT(a.size(0), 0);
  EXPECT_GT(a.select(1, 1).sum().item<float>(), 0.0f); // the spleen's attention is in the patches
  EXPECT_TRUE(at::allclose(a, b, 1e-5, 1e-6));
}

// Inference tiles at a patch spacing between the voxels' on a slab (slices 12..17 of the
// phantom, its own buffer, index not at 0), as the segmentation filter gives them (the liver's
// attention and some at the border): every pixel
// of every patch equals ITK's linear interpolator at the pixel's physical point (window low
// outside the buffer), and the attention channel the map's voxel nearest to it. Axis-aligned,
// turned 180 degrees (both axes reversed: still the axis-aligned path), and rotated 20 degrees
// about z (the general path).
TEST(QueryPatchSamplerFilter, ResampledTilesOnASlabEqualITKsInterpolatorAtEveryPixel)
{
  auto & d = Data();
  // The slab as AGCLSegmentationFilter cuts it (its own ExtractRegion).
  auto extract = [](const auto * in) {
    auto region = in->GetLargestPossibleRegion();
    region.SetIndex(2, 12);
    region.SetSize(2, 6);
    return itk::agcl_segmentation_detail::ExtractRegion(in, region);
  };
  int64_t outside = 0; // pixels outside the slab, over all three
  for (const double angle : { 0.0, 180.0, 20.0 })
  {
    SCOPED_TRACE(::testing::Message() << "rotation " << angle);
    auto slab = extract(d.source->GetOutput());
    auto map = extract(d.attention->GetAttentionMap(6)); // the liver
    ASSERT_EQ(slab->GetLargestPossibleRegion().GetIndex(2), 12);
    for (long z : { 12, 17 }) // attention at the slab's x border and corner: tiles hang outside
      for (long y = 0; y < 6; ++y)
        for (long x = 0; x < 3; ++x)
          map->SetPixel({ { x, 40 + y, z } }, 1), map->SetPixel({ { 95 - x, 90 + y, z } }, 1);
    const double      a = angle * itk::Math::pi / 180.0;
    CT::DirectionType direction;
    direction.SetIdentity();
    const double cs = angle == 180.0 ? -1.0 : std::cos(a), sn = angle == 180.0 ? 0.0 : std::sin(a); // exact flip
    direction(0, 0) = direction(1, 1) = cs;
    direction(0, 1) = -sn;
    direction(1, 0) = sn;
    slab->SetDirection(direction);
    map->SetDirection(direction);
    auto         sampler = MakeSampler(slab, { 6 }, { map.GetPointer() });
    const double s = 0.63 * slab->GetSpacing()[0];
    sampler->SetPatchSize(16);
    sampler->SetPatchSpacingMM(s);
    sampler->SetOverlap(0.75); // tiles every 4 pixels: many tiles, many positions against the voxels
    sampler->Update();
    const auto &     meta = sampler->GetOutput()->GetMetadata();
    const at::Tensor patches = sampler->GetOutput()->GetTensor("image").contiguous();
    ASSERT_GT(meta.size(), 10u);
    auto reference = itk::LinearInterpolateImageFunction<CT, double>::New();
    reference->SetInputImage(slab);
    const auto *  values = patches.data_ptr<float>();
    const int64_t P = 16;
    int64_t       attended = 0, lastSlice = 0, ties = 0, pixels = 0;
    for (size_t n = 0; n < meta.size(); ++n)
    {
      lastSlice += meta[n].slice == 17;
      for (int64_t r = 0; r < P; ++r)
        for (int64_t q = 0; q < P; ++q)
        {
          CT::PointType p;
          for (unsigned int i = 0; i < 3; ++i)
            p[i] = meta[n].origin[i] + (i == 0 ? q * s : 0.0) + (i == 1 ? r * s : 0.0);
          double     hu = -175.0;
          const bool in = reference->IsInsideBuffer(p);
          if (in)
            hu = reference->Evaluate(p);
          outside += !in;
          const double expected = std::clamp((hu + 175.0) / 450.0, 0.0, 1.0);
          const float  got = values[((n * 2) * P + r) * P + q];
          ++pixels;
          ASSERT_NEAR(got, expected, 1e-5) << "patch " << n << " pixel " << r << ", " << q;
          // The nearest voxel; a point half-way between two (to 1e-6 voxel) may go either way
          // (the sampler steps from the patch's first pixel, ITK from the point): not checked.
          const auto continuous = map->TransformPhysicalPointToContinuousIndex<double>(p);
          bool       tie = false;
          for (unsigned int i = 0; i < 3; ++i)
            tie = tie || std::abs(continuous[i] - std::floor(continuous[i]) - 0.5) < 1e-6;
          CT::IndexType index;
          const bool    mapped = map->TransformPhysicalPointToIndex(p, index);
          const float   attention = mapped && map->GetPixel(index) ? 1.0f : 0.0f;
          if (tie)
          {
            ++ties;
            continue;
          }
          ASSERT_EQ(values[((n * 2 + 1) * P + r) * P + q], attention)
            << "patch " << n << " pixel " << r << ", " << q << " index " << index << " continuous " << continuous;
          attended += attention > 0;
        }
    }
    EXPECT_GT(attended, 0);
    EXPECT_GT(lastSlice, 0); // tiles on the slab's last slice
    EXPECT_LT(ties, pixels / 20);
  }
  EXPECT_GT(outside, 0); // some pixels fall outside the slab (ITK's interpolator decides)
}

TEST(QueryPatchSamplerFilter, BadParametersAndGeometryAreRefused)
{
  auto &     d = Data();
  const CT * image = d.source->GetOutput();
  auto       noMaps = Sampler::New();
  noMaps->SetInput(image);
  EXPECT_THROW(noMaps->Update(), itk::ExceptionObject);

  auto badSize = MakeSampler(image, { 1 }, { d.attention->GetAttentionMap(1) });
  badSize->SetPatchSize(40);
  EXPECT_THROW(badSize->Update(), itk::ExceptionObject);

  auto badWindow = MakeSampler(image, { 1 }, { d.attention->GetAttentionMap(1) });
  badWindow->SetWindowLow(300);
  EXPECT_THROW(badWindow->Update(), itk::ExceptionObject);

  auto             other = Source::New();
  Source::SizeType size{ { 64, 64, 40 } };
  other->SetSize(size);
  other->Update();
  auto mismatched = MakeSampler(image, { 1 }, { other->GetLabelOutput() });
  EXPECT_THROW(mismatched->Update(), itk::ExceptionObject);

  // A null map removes the organ's attention (as ITK's SetInput(nullptr)): with none left, an
  // error; with another organ left, only that organ's patches.
  auto nullOnly = MakeSampler(image, { 1 }, { nullptr });
  EXPECT_THROW(nullOnly->Update(), itk::ExceptionObject);
  auto removed = MakeSampler(image, { 4, 8 }, { d.attention->GetAttentionMap(4), d.attention->GetAttentionMap(8) });
  removed->SetMode(Sampler::ModeEnum::Inference);
  removed->SetAttentionMap(8, nullptr);
  removed->Update();
  ASSERT_FALSE(removed->GetOutput()->GetMetadata().empty());
  for (const auto & m : removed->GetOutput()->GetMetadata())
    EXPECT_EQ(m.organ, 4);

  // A tile grid too dense to hold: an itk::ExceptionObject naming the limit.
  auto dense = MakeSampler(image, { 4, 8 }, { d.attention->GetAttentionMap(4), d.attention->GetAttentionMap(8) });
  dense->SetMode(Sampler::ModeEnum::Inference);
  dense->SetPatchSpacingMM(1e-4);
  try
  {
    dense->Update();
    ADD_FAILURE() << "a 1e-4 mm tile grid was accepted";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("at most 10000 per axis"), std::string::npos) << e.GetDescription();
  }
}
