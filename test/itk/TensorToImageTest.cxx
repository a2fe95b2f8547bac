/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkImageToTensor.h"
#include "itkTensorToImage.h"
#include "itkVectorImage.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace {
using FloatImage = itk::Image<float, 3>;

FloatImage::Pointer
MakeReference()
{
  auto image = FloatImage::New();
  image->SetRegions(FloatImage::SizeType{ { 6, 5, 4 } });
  const double spacing[3] = { 0.7, 0.8, 2.5 };
  const double origin[3] = { -120.0, 35.5, 10.0 };
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  FloatImage::DirectionType direction; // 30 degrees about z, then z flipped
  const double              a = M_PI / 6;
  direction(0, 0) = std::cos(a);
  direction(0, 1) = -std::sin(a);
  direction(0, 2) = 0;
  direction(1, 0) = std::sin(a);
  direction(1, 1) = std::cos(a);
  direction(1, 2) = 0;
  direction(2, 0) = 0;
  direction(2, 1) = 0;
  direction(2, 2) = -1;
  image->SetDirection(direction);
  image->Allocate();
  for (long z = 0; z < 4; ++z)
    for (long y = 0; y < 5; ++y)
      for (long x = 0; x < 6; ++x)
        image->SetPixel({ { x, y, z } }, 0.25f * x + 3.0f * y - 7.0f * z);
  return image;
}
} // namespace

TEST(TensorToImage, RoundTripKeepsPixelsAndGeometry)
{
  auto             reference = MakeReference();
  const at::Tensor tensor = itk::ImageToTensor<FloatImage>::Copy(reference);
  auto             image = itk::TensorToImage<FloatImage>::Convert(tensor * 2.0, reference);
  EXPECT_EQ(image->GetLargestPossibleRegion(), reference->GetLargestPossibleRegion());
  EXPECT_EQ(image->GetSpacing(), reference->GetSpacing());
  EXPECT_EQ(image->GetOrigin(), reference->GetOrigin());
  EXPECT_EQ(image->GetDirection(), reference->GetDirection());
  for (long z = 0; z < 4; ++z)
    for (long y = 0; y < 5; ++y)
      for (long x = 0; x < 6; ++x)
        ASSERT_FLOAT_EQ(image->GetPixel({ { x, y, z } }), 2.0f * (0.25f * x + 3.0f * y - 7.0f * z));
}

TEST(TensorToImage, NonContiguousTensorIsReadInLogicalOrder)
{
  auto reference = MakeReference();
  // [Z, Y, X] values z*100 + y*10 + x, built in [X, Y, Z] order and transposed (non-contiguous).
  const at::Tensor xyz =
    at::arange(6).view({ 6, 1, 1 }) + 10 * at::arange(5).view({ 1, 5, 1 }) + 100 * at::arange(4).view({ 1, 1, 4 });
  const at::Tensor zyx = xyz.permute({ 2, 1, 0 }).to(at::kFloat);
  ASSERT_FALSE(zyx.is_contiguous());
  auto image = itk::TensorToImage<FloatImage>::Convert(zyx, reference);
  EXPECT_FLOAT_EQ(image->GetPixel({ { 5, 1, 3 } }), 315.0f);
  EXPECT_FLOAT_EQ(image->GetPixel({ { 2, 4, 0 } }), 42.0f);
}

TEST(TensorToImage, SubRegionKeepsPhysicalPositions)
{
  auto                   reference = MakeReference();
  FloatImage::RegionType region({ { 2, 1, 1 } }, { { 3, 2, 2 } });
  const at::Tensor       patch = itk::ImageToTensor<FloatImage>::Copy(reference, region);
  auto                   image = itk::TensorToImage<FloatImage>::Convert(patch, reference, region);
  EXPECT_EQ(image->GetLargestPossibleRegion(), region);
  const FloatImage::IndexType index{ { 3, 2, 2 } };
  FloatImage::PointType       p1, p2;
  reference->TransformIndexToPhysicalPoint(index, p1);
  image->TransformIndexToPhysicalPoint(index, p2);
  EXPECT_EQ(p1, p2);
  EXPECT_FLOAT_EQ(image->GetPixel(index), reference->GetPixel(index));
}

TEST(TensorToImage, UnsignedShortRoundTripAndRangeCheck)
{
  using UShortImage = itk::Image<unsigned short, 2>;
  auto reference = UShortImage::New();
  reference->SetRegions(UShortImage::SizeType{ { 3, 2 } });
  reference->Allocate();
  reference->FillBuffer(0);
  const at::Tensor values = at::tensor({ 0, 1, 65535, 40000, 2, 3 }, at::kInt).view({ 2, 3 });
  auto             image = itk::TensorToImage<UShortImage>::Convert(values, reference);
  EXPECT_EQ(image->GetPixel({ { 2, 0 } }), 65535);
  EXPECT_EQ(image->GetPixel({ { 0, 1 } }), 40000);
  EXPECT_THROW(itk::TensorToImage<UShortImage>::Convert(values + 1, reference), itk::ExceptionObject); // 65536
  EXPECT_THROW(itk::TensorToImage<UShortImage>::Convert(values - 1, reference), itk::ExceptionObject); // -1
}

TEST(TensorToImage, VectorImageFromChannelsFirstTensor)
{
  using VImage = itk::VectorImage<float, 2>;
  auto reference = FloatImage::New();
  using Ref2D = itk::Image<float, 2>;
  auto ref2 = Ref2D::New();
  ref2->SetRegions(Ref2D::SizeType{ { 4, 3 } });
  const at::Tensor chw = at::arange(2 * 3 * 4, at::kFloat).view({ 2, 3, 4 }); // c*12 + y*4 + x
  auto             image = itk::TensorToImage<VImage>::Convert(chw, ref2, itk::TensorComponentAxisEnum::First);
  ASSERT_EQ(image->GetNumberOfComponentsPerPixel(), 2u);
  const auto pixel = image->GetPixel({ { 3, 2 } });
  EXPECT_FLOAT_EQ(pixel[0], 0 * 12 + 2 * 4 + 3);
  EXPECT_FLOAT_EQ(pixel[1], 1 * 12 + 2 * 4 + 3);
}

TEST(TensorToImage, WrongDtypeShapeOrSizeIsRefused)
{
  using UCharImage = itk::Image<unsigned char, 3>;
  auto reference = MakeReference(); // 6 x 5 x 4
  try
  {
    itk::TensorToImage<UCharImage>::Convert(at::zeros({ 4, 5, 6 }, at::kFloat), reference);
    ADD_FAILURE() << "float tensor accepted for an unsigned char image";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("Float"), std::string::npos) << e.GetDescription();
    EXPECT_NE(std::string(e.GetDescription()).find("Byte"), std::string::npos) << e.GetDescription();
  }
  EXPECT_NO_THROW(itk::TensorToImage<UCharImage>::Convert(at::zeros({ 4, 5, 6 }, at::kByte), reference));
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::zeros({ 5, 6 }), reference), itk::ExceptionObject);
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::zeros({ 6, 5, 4 }), reference), itk::ExceptionObject);
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::zeros({ 1, 4, 5, 6 }), reference), itk::ExceptionObject);
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::Tensor(), reference), itk::ExceptionObject);
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::zeros({ 4, 5, 6 }), nullptr), itk::ExceptionObject);
  FloatImage::RegionType outside({ { 4, 0, 0 } }, { { 4, 5, 4 } });
  EXPECT_THROW(itk::TensorToImage<FloatImage>::Convert(at::zeros({ 4, 5, 4 }), reference, outside),
               itk::ExceptionObject);
  using Vec3Image = itk::Image<itk::Vector<float, 3>, 3>;
  EXPECT_THROW(itk::TensorToImage<Vec3Image>::Convert(at::zeros({ 4, 5, 6, 2 }), reference), itk::ExceptionObject);
  EXPECT_NO_THROW(itk::TensorToImage<Vec3Image>::Convert(at::zeros({ 4, 5, 6, 3 }), reference));
}

TEST(TensorToImage, LibTorchErrorsBecomeItkExceptions)
{
  auto reference = MakeReference();
  // A meta tensor has no data: copying it to the CPU raises c10::Error inside LibTorch.
  const at::Tensor meta = at::empty({ 4, 5, 6 }, at::TensorOptions().dtype(at::kFloat).device(c10::DeviceType::Meta));
  try
  {
    itk::TensorToImage<FloatImage>::Convert(meta, reference);
    ADD_FAILURE() << "no exception for a meta tensor";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("LibTorch error"), std::string::npos) << e.GetDescription();
  }
}
