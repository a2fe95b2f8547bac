/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkImageToTensor.h"
#include "itkVectorImage.h"
#include "itkVector.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace {
using ShortImage = itk::Image<short, 3>;

// Pixel value at ITK index (x, y, z): a formula independent of any tensor code.
short
Expected(long x, long y, long z)
{
  return static_cast<short>(x + 10 * y + 100 * z - 300);
}

ShortImage::Pointer
MakeShortImage(unsigned long sx = 5, unsigned long sy = 4, unsigned long sz = 3)
{
  auto image = ShortImage::New();
  image->SetRegions(ShortImage::SizeType{ { sx, sy, sz } });
  image->Allocate();
  for (unsigned long z = 0; z < sz; ++z)
    for (unsigned long y = 0; y < sy; ++y)
      for (unsigned long x = 0; x < sx; ++x)
      {
        const ShortImage::IndexType index{ { long(x), long(y), long(z) } };
        image->SetPixel(index, Expected(x, y, z));
      }
  return image;
}

template <typename T>
T
At(const at::Tensor & t, std::initializer_list<int64_t> indices)
{
  at::Tensor v = t;
  for (int64_t i : indices)
  {
    v = v.select(0, i);
  }
  return v.item<T>();
}
} // namespace

TEST(ImageToTensor, ViewHasReversedIndexOrderAndThePixelValues)
{
  auto             image = MakeShortImage();
  const at::Tensor view = itk::ImageToTensor<ShortImage>::View(image);
  ASSERT_EQ(view.sizes().vec(), (std::vector<int64_t>{ 3, 4, 5 }));
  EXPECT_EQ(view.scalar_type(), at::kShort);
  for (long z = 0; z < 3; ++z)
    for (long y = 0; y < 4; ++y)
      for (long x = 0; x < 5; ++x)
        ASSERT_EQ(At<int16_t>(view, { z, y, x }), Expected(x, y, z)) << x << "," << y << "," << z;
}

TEST(ImageToTensor, ViewIsZeroCopyWritesReachTheImage)
{
  auto       image = MakeShortImage();
  at::Tensor view = itk::ImageToTensor<ShortImage>::View(image);
  EXPECT_EQ(view.data_ptr(), static_cast<void *>(image->GetBufferPointer()));
  view.select(0, 2).select(0, 1).select(0, 4).fill_(1234); // (z=2, y=1, x=4)
  EXPECT_EQ(image->GetPixel({ { 4, 1, 2 } }), 1234);
  image->SetPixel({ { 0, 3, 1 } }, -77);
  EXPECT_EQ(At<int16_t>(view, { 1, 3, 0 }), -77);
}

TEST(ImageToTensor, ViewKeepsTheBufferAliveAfterTheImageIsGone)
{
  at::Tensor view;
  {
    auto image = MakeShortImage();
    view = itk::ImageToTensor<ShortImage>::View(image);
  }                              // the image is destroyed here; the view holds its pixel container
  auto other = MakeShortImage(); // reuse freed memory, if any, with different values
  other->FillBuffer(0);
  for (long z = 0; z < 3; ++z)
    for (long x = 0; x < 5; ++x)
      ASSERT_EQ(At<int16_t>(view, { z, 2, x }), Expected(x, 2, z));
}

TEST(ImageToTensor, SubRegionViewIsStridedIntoTheSameBuffer)
{
  auto                   image = MakeShortImage(6, 5, 4);
  ShortImage::RegionType region({ { 1, 2, 1 } }, { { 3, 2, 2 } });
  at::Tensor             view = itk::ImageToTensor<ShortImage>::View(image, region);
  ASSERT_EQ(view.sizes().vec(), (std::vector<int64_t>{ 2, 2, 3 }));
  EXPECT_FALSE(view.is_contiguous());
  // First element is the region's first pixel inside the whole buffer.
  const auto offset = image->ComputeOffset(region.GetIndex());
  EXPECT_EQ(view.data_ptr(), static_cast<void *>(image->GetBufferPointer() + offset));
  for (long z = 0; z < 2; ++z)
    for (long y = 0; y < 2; ++y)
      for (long x = 0; x < 3; ++x)
        ASSERT_EQ(At<int16_t>(view, { z, y, x }), Expected(x + 1, y + 2, z + 1));
  view.fill_(7);
  EXPECT_EQ(image->GetPixel({ { 1, 2, 1 } }), 7);
  EXPECT_EQ(image->GetPixel({ { 3, 3, 2 } }), 7);
  EXPECT_EQ(image->GetPixel({ { 0, 2, 1 } }), Expected(0, 2, 1)); // just outside: untouched
  EXPECT_EQ(image->GetPixel({ { 4, 3, 2 } }), Expected(4, 3, 2));
}

TEST(ImageToTensor, BufferedRegionWithNonZeroStartIndex)
{
  auto                   image = ShortImage::New();
  ShortImage::RegionType buffered({ { 10, 20, 30 } }, { { 4, 3, 2 } });
  image->SetRegions(buffered);
  image->Allocate();
  for (long z = 0; z < 2; ++z)
    for (long y = 0; y < 3; ++y)
      for (long x = 0; x < 4; ++x)
        image->SetPixel({ { 10 + x, 20 + y, 30 + z } }, Expected(x, y, z));
  ShortImage::RegionType region({ { 11, 21, 31 } }, { { 2, 2, 1 } });
  const at::Tensor       view = itk::ImageToTensor<ShortImage>::View(image, region);
  EXPECT_EQ(At<int16_t>(view, { 0, 0, 0 }), Expected(1, 1, 1));
  EXPECT_EQ(At<int16_t>(view, { 0, 1, 1 }), Expected(2, 2, 1));
  const at::Tensor copy = itk::ImageToTensor<ShortImage>::Copy(image, region);
  EXPECT_TRUE(at::equal(copy, view));
}

TEST(ImageToTensor, TwoDimensionalImage)
{
  using Image2D = itk::Image<float, 2>;
  auto image = Image2D::New();
  image->SetRegions(Image2D::SizeType{ { 7, 3 } });
  image->Allocate();
  for (long y = 0; y < 3; ++y)
    for (long x = 0; x < 7; ++x)
      image->SetPixel({ { x, y } }, 0.5f * x - 2.0f * y);
  const at::Tensor view = itk::ImageToTensor<Image2D>::View(image);
  ASSERT_EQ(view.sizes().vec(), (std::vector<int64_t>{ 3, 7 }));
  EXPECT_FLOAT_EQ(At<float>(view, { 2, 5 }), 0.5f * 5 - 2.0f * 2);
  // Scalar pixels get a size-1 channel axis on request.
  EXPECT_EQ(itk::ImageToTensor<Image2D>::View(image, itk::TensorComponentAxisEnum::First).sizes().vec(),
            (std::vector<int64_t>{ 1, 3, 7 }));
  EXPECT_EQ(itk::ImageToTensor<Image2D>::View(image, itk::TensorComponentAxisEnum::Last).sizes().vec(),
            (std::vector<int64_t>{ 3, 7, 1 }));
}

TEST(ImageToTensor, VectorPixelsGiveAChannelAxisLastOrFirst)
{
  using VectorImage2D = itk::Image<itk::Vector<float, 3>, 2>;
  auto image = VectorImage2D::New();
  image->SetRegions(VectorImage2D::SizeType{ { 4, 2 } });
  image->Allocate();
  for (long y = 0; y < 2; ++y)
    for (long x = 0; x < 4; ++x)
    {
      itk::Vector<float, 3> v;
      for (unsigned c = 0; c < 3; ++c)
        v[c] = 100.0f * c + 10.0f * y + x;
      image->SetPixel({ { x, y } }, v);
    }
  const at::Tensor last = itk::ImageToTensor<VectorImage2D>::View(image);
  ASSERT_EQ(last.sizes().vec(), (std::vector<int64_t>{ 2, 4, 3 }));
  const at::Tensor first = itk::ImageToTensor<VectorImage2D>::View(image, itk::TensorComponentAxisEnum::First);
  ASSERT_EQ(first.sizes().vec(), (std::vector<int64_t>{ 3, 2, 4 }));
  EXPECT_EQ(first.data_ptr(), last.data_ptr()); // still a view
  for (long c = 0; c < 3; ++c)
    for (long y = 0; y < 2; ++y)
      for (long x = 0; x < 4; ++x)
      {
        EXPECT_FLOAT_EQ(At<float>(last, { y, x, c }), 100.0f * c + 10.0f * y + x);
        EXPECT_FLOAT_EQ(At<float>(first, { c, y, x }), 100.0f * c + 10.0f * y + x);
      }
  const at::Tensor copy =
    itk::ImageToTensor<VectorImage2D>::Copy(image, c10::Device("cpu"), itk::TensorComponentAxisEnum::First);
  EXPECT_TRUE(copy.is_contiguous());
  EXPECT_TRUE(at::equal(copy, first));
}

TEST(ImageToTensor, VectorImageWithRuntimeComponentCount)
{
  using VImage = itk::VectorImage<double, 3>;
  auto image = VImage::New();
  image->SetRegions(VImage::SizeType{ { 3, 2, 2 } });
  image->SetNumberOfComponentsPerPixel(4);
  image->Allocate();
  itk::VariableLengthVector<double> v(4);
  for (long z = 0; z < 2; ++z)
    for (long y = 0; y < 2; ++y)
      for (long x = 0; x < 3; ++x)
      {
        for (unsigned c = 0; c < 4; ++c)
          v[c] = 1000.0 * c + 100.0 * z + 10.0 * y + x;
        image->SetPixel({ { x, y, z } }, v);
      }
  const at::Tensor first = itk::ImageToTensor<VImage>::View(image, itk::TensorComponentAxisEnum::First);
  ASSERT_EQ(first.sizes().vec(), (std::vector<int64_t>{ 4, 2, 2, 3 }));
  EXPECT_DOUBLE_EQ(At<double>(first, { 3, 1, 0, 2 }), 3000.0 + 100.0 + 2);
  EXPECT_DOUBLE_EQ(At<double>(first, { 1, 0, 1, 1 }), 1000.0 + 10.0 + 1);
}

TEST(ImageToTensor, UnsignedShortCannotBeViewedButIsCopiedToInt32Exactly)
{
  using UShortImage = itk::Image<unsigned short, 3>;
  static_assert(!itk::ImageToTensor<UShortImage>::CanView(), "LibTorch 1.13 has no uint16");
  auto image = UShortImage::New();
  image->SetRegions(UShortImage::SizeType{ { 4, 3, 2 } });
  image->Allocate();
  for (long z = 0; z < 2; ++z)
    for (long y = 0; y < 3; ++y)
      for (long x = 0; x < 4; ++x)
        image->SetPixel({ { x, y, z } }, static_cast<unsigned short>(65535 - (x + 4 * y + 12 * z) * 1000));
  EXPECT_THROW(itk::ImageToTensor<UShortImage>::View(image), itk::ExceptionObject);
  const at::Tensor copy = itk::ImageToTensor<UShortImage>::Copy(image);
  EXPECT_EQ(copy.scalar_type(), at::kInt);
  EXPECT_EQ(At<int32_t>(copy, { 0, 0, 0 }), 65535);
  EXPECT_EQ(At<int32_t>(copy, { 1, 2, 3 }), 65535 - (3 + 8 + 12) * 1000);
  // A sub-region, converted.
  const at::Tensor part =
    itk::ImageToTensor<UShortImage>::Copy(image, UShortImage::RegionType({ { 1, 1, 1 } }, { { 2, 2, 1 } }));
  ASSERT_EQ(part.sizes().vec(), (std::vector<int64_t>{ 1, 2, 2 }));
  EXPECT_EQ(At<int32_t>(part, { 0, 1, 1 }), 65535 - (2 + 8 + 12) * 1000);
}

TEST(ImageToTensor, UnsignedLongBeyondInt64IsRefusedNotWrapped)
{
  using ULongImage = itk::Image<unsigned long, 2>;
  auto image = ULongImage::New();
  image->SetRegions(ULongImage::SizeType{ { 2, 2 } });
  image->Allocate();
  image->FillBuffer(std::numeric_limits<unsigned long>::max() / 4);
  const at::Tensor ok = itk::ImageToTensor<ULongImage>::Copy(image);
  EXPECT_EQ(At<int64_t>(ok, { 1, 1 }), static_cast<int64_t>(std::numeric_limits<unsigned long>::max() / 4));
  image->SetPixel({ { 1, 0 } }, std::numeric_limits<unsigned long>::max());
  EXPECT_THROW(itk::ImageToTensor<ULongImage>::Copy(image), itk::ExceptionObject);
}

TEST(ImageToTensor, CopyIsIndependentOfTheImage)
{
  auto       image = MakeShortImage();
  at::Tensor copy = itk::ImageToTensor<ShortImage>::Copy(image, c10::Device("cpu"));
  EXPECT_NE(copy.data_ptr(), static_cast<void *>(image->GetBufferPointer()));
  EXPECT_TRUE(copy.is_contiguous());
  EXPECT_EQ(copy.device().type(), c10::DeviceType::CPU);
  copy.fill_(0);
  EXPECT_EQ(image->GetPixel({ { 4, 3, 2 } }), Expected(4, 3, 2));
}

TEST(ImageToTensor, CopyToCudaWhenAvailable)
{
  if (!at::hasCUDA())
  {
    GTEST_SKIP() << "LibTorch has no CUDA here";
  }
  auto             image = MakeShortImage();
  const at::Tensor gpu = itk::ImageToTensor<ShortImage>::Copy(image, c10::Device("cuda"));
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(at::equal(gpu.cpu(), itk::ImageToTensor<ShortImage>::View(image)));
}

TEST(ImageToTensor, BadInputThrowsItkExceptions)
{
  ShortImage * null = nullptr;
  EXPECT_THROW(itk::ImageToTensor<ShortImage>::View(null), itk::ExceptionObject);
  EXPECT_THROW(itk::ImageToTensor<ShortImage>::Copy(null), itk::ExceptionObject);

  auto unallocated = ShortImage::New();
  unallocated->SetRegions(ShortImage::SizeType{ { 4, 4, 4 } });
  EXPECT_THROW(itk::ImageToTensor<ShortImage>::View(unallocated), itk::ExceptionObject);

  auto                   image = MakeShortImage();
  ShortImage::RegionType outside({ { 3, 0, 0 } }, { { 3, 1, 1 } }); // x 3..5 of 0..4
  try
  {
    itk::ImageToTensor<ShortImage>::View(image, outside);
    ADD_FAILURE() << "no exception for a region outside the buffer";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("not inside the buffered region"), std::string::npos)
      << e.GetDescription();
  }
  ShortImage::RegionType empty({ { 0, 0, 0 } }, { { 0, 1, 1 } });
  EXPECT_THROW(itk::ImageToTensor<ShortImage>::Copy(image, empty), itk::ExceptionObject);
}
