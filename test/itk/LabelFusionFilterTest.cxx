/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkLabelFusionFilter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

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
}
