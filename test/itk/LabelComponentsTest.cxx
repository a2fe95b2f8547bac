/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// itk::KeepLargestComponentsAndFillHoles (runs and union-find, organs in parallel) against
// the same post-processing done with ITK's own filters, organ after organ: the largest
// component from ConnectedComponentImageFilter (fully connected; ties to the lower id), holes
// from BinaryFillholeImageFilter (fully connected), both on the organ's bounding box.
#include "itkLabelComponents.h"

#include "itkBinaryFillholeImageFilter.h"
#include "itkConnectedComponentImageFilter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkImageRegionIteratorWithIndex.h"

#include <gtest/gtest.h>

#include <random>

namespace {

template <typename TImage>
void
ReferenceOneOrgan(TImage * output, typename TImage::PixelType organ, const typename TImage::RegionType & box)
{
  using LabelType = typename TImage::PixelType;
  constexpr unsigned int D = TImage::ImageDimension;
  using MaskType = itk::Image<unsigned char, D>;
  using ComponentType = itk::Image<unsigned int, D>;
  auto mask = MaskType::New();
  mask->CopyInformation(output);
  mask->SetRegions(box);
  mask->Allocate();
  {
    itk::ImageRegionConstIterator<TImage> in(output, box);
    itk::ImageRegionIterator<MaskType>    out(mask, box);
    for (; !in.IsAtEnd(); ++in, ++out)
      out.Set(in.Get() == organ ? 1 : 0);
  }
  auto components = itk::ConnectedComponentImageFilter<MaskType, ComponentType>::New();
  components->SetInput(mask);
  components->FullyConnectedOn();
  components->Update();
  std::vector<std::size_t>                     sizes(components->GetObjectCount() + 1, 0);
  itk::ImageRegionConstIterator<ComponentType> c(components->GetOutput(), box);
  for (; !c.IsAtEnd(); ++c)
    ++sizes[c.Get()];
  sizes[0] = 0;
  const auto largest = static_cast<unsigned int>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  itk::ImageRegionIterator<MaskType> m(mask, box);
  for (c.GoToBegin(); !c.IsAtEnd(); ++c, ++m)
    m.Set(c.Get() == largest ? 1 : 0);
  auto fill = itk::BinaryFillholeImageFilter<MaskType>::New();
  fill->SetInput(mask);
  fill->SetForegroundValue(1);
  fill->FullyConnectedOn();
  fill->Update();
  itk::ImageRegionConstIterator<MaskType> kept(mask, box);
  itk::ImageRegionConstIterator<MaskType> filled(fill->GetOutput(), box);
  itk::ImageRegionIterator<TImage>        out(output, box);
  for (; !out.IsAtEnd(); ++kept, ++filled, ++out)
  {
    if (out.Get() == organ && !kept.Get())
      out.Set(LabelType{});
    else if (filled.Get() && out.Get() == LabelType{})
      out.Set(organ);
  }
}

template <typename TImage>
void
Reference(TImage * output, const std::vector<typename TImage::PixelType> & organs)
{
  const auto boxes = itk::LabelBoundingBoxes(output, output->GetBufferedRegion());
  for (const auto organ : organs)
    if (boxes.count(organ))
      ReferenceOneOrgan(output, organ, boxes.at(organ));
}

template <typename TImage>
typename TImage::Pointer
Copy(const TImage * image)
{
  auto copy = TImage::New();
  copy->CopyInformation(image);
  copy->SetRegions(image->GetBufferedRegion());
  copy->Allocate();
  std::copy_n(image->GetBufferPointer(), image->GetBufferedRegion().GetNumberOfPixels(), copy->GetBufferPointer());
  return copy;
}

// Random organs: balls (some hollow: holes), shells around other organs, and salt (1-3 voxel
// specks, many components, ragged complements) of labels 1..organs.
template <typename TImage>
typename TImage::Pointer
RandomLabels(const typename TImage::SizeType & size, unsigned int organs, double salt, unsigned int seed)
{
  constexpr unsigned int     D = TImage::ImageDimension;
  auto                       image = TImage::New();
  typename TImage::IndexType start;
  for (unsigned int d = 0; d < D; ++d)
    start[d] = static_cast<long>(d) * 3 - 2; // a buffered region that does not start at 0
  image->SetRegions(typename TImage::RegionType(start, size));
  image->Allocate();
  image->FillBuffer(0);
  std::mt19937 random(seed);
  auto         uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(random); };
  for (unsigned int k = 0; k < 3 * organs; ++k)
  {
    const auto   organ = static_cast<typename TImage::PixelType>(1 + k % organs);
    double       centre[D];
    const double radius = uniform(1.5, 6.0), inner = uniform(0.0, 1.0) < 0.5 ? uniform(0.5, radius - 0.7) : -1.0;
    for (unsigned int d = 0; d < D; ++d)
      centre[d] = start[d] + uniform(0, size[d]);
    for (itk::ImageRegionIteratorWithIndex<TImage> it(image, image->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    {
      double r2 = 0;
      for (unsigned int d = 0; d < D; ++d)
        r2 += (it.GetIndex()[d] - centre[d]) * (it.GetIndex()[d] - centre[d]);
      if (r2 <= radius * radius && r2 > inner * inner)
        it.Set(organ);
    }
  }
  for (itk::ImageRegionIterator<TImage> it(image, image->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    if (uniform(0, 1) < salt)
      it.Set(static_cast<typename TImage::PixelType>(uniform(0, 1) < 0.2 ? 0 : 1 + random() % organs));
  return image;
}

template <typename TImage>
void
ExpectEqualToReference(const TImage * input, const std::vector<typename TImage::PixelType> & organs)
{
  auto expected = Copy(input);
  Reference(expected.GetPointer(), organs);
  auto actual = Copy(input);
  itk::KeepLargestComponentsAndFillHoles(actual.GetPointer(), organs);
  std::size_t differing = 0, changed = 0;
  const auto  n = input->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t i = 0; i < n; ++i)
  {
    differing += expected->GetBufferPointer()[i] != actual->GetBufferPointer()[i];
    changed += expected->GetBufferPointer()[i] != input->GetBufferPointer()[i];
  }
  EXPECT_EQ(differing, 0u) << "of " << n << " voxels; the reference changed " << changed;
}

} // namespace

TEST(LabelComponents, EqualITKsFiltersOnRandomOrgans3D)
{
  using Image = itk::Image<unsigned char, 3>;
  unsigned int seed = 1;
  for (const double salt : { 0.0, 0.02, 0.15 })
    for (const auto & size : { Image::SizeType{ { 31, 27, 19 } }, Image::SizeType{ { 8, 40, 12 } } })
    {
      SCOPED_TRACE(::testing::Message() << "salt " << salt << " size " << size);
      const auto input = RandomLabels<Image>(size, 4, salt, seed++);
      ExpectEqualToReference(input.GetPointer(), { 1, 2, 3, 4 });
      ExpectEqualToReference(input.GetPointer(), { 3, 1 }); // a subset, another order
    }
}

TEST(LabelComponents, EqualITKsFiltersOnRandomOrgans2D)
{
  using Image = itk::Image<short, 2>;
  unsigned int seed = 100;
  for (const double salt : { 0.0, 0.05, 0.2 })
  {
    SCOPED_TRACE(::testing::Message() << "salt " << salt);
    const auto input = RandomLabels<Image>(Image::SizeType{ { 53, 41 } }, 3, salt, seed++);
    ExpectEqualToReference(input.GetPointer(), { 1, 2, 3, 7 }); // 7: not in the image
  }
}

TEST(LabelComponents, HandMadeCases)
{
  using Image = itk::Image<unsigned char, 3>;
  auto image = Image::New();
  image->SetRegions(Image::SizeType{ { 20, 20, 9 } });
  image->Allocate();
  image->FillBuffer(0);
  auto box = [&](unsigned char value, int x0, int x1, int y0, int y1, int z0, int z1) {
    for (int z = z0; z <= z1; ++z)
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x)
          image->SetPixel({ { x, y, z } }, value);
  };
  // Organ 1: two hollow 3x3x3 cubes of 26 voxels each (a tie: the one first in raster order
  // stays); organ 2: a 7x7x7 shell holding organ 3, which holds a background voxel.
  box(1, 1, 3, 1, 3, 1, 3);
  box(0, 2, 2, 2, 2, 2, 2);
  box(1, 14, 16, 1, 3, 1, 3);
  box(0, 15, 15, 2, 2, 2, 2);
  box(2, 6, 12, 10, 16, 1, 7);
  box(0, 7, 11, 11, 15, 2, 6);
  box(3, 8, 10, 12, 14, 3, 5);
  box(0, 9, 9, 13, 13, 4, 4);
  box(2, 18, 18, 18, 18, 8, 8); // a stray voxel of organ 2
  auto out = Copy(image.GetPointer());
  itk::KeepLargestComponentsAndFillHoles(out.GetPointer(), { 1, 2, 3 });
  EXPECT_EQ(out->GetPixel({ { 2, 2, 2 } }), 1);   // the first cube's hole is filled
  EXPECT_EQ(out->GetPixel({ { 15, 2, 2 } }), 0);  // the second cube (the tie's loser) removed
  EXPECT_EQ(out->GetPixel({ { 18, 18, 8 } }), 0); // the stray voxel removed
  EXPECT_EQ(out->GetPixel({ { 7, 11, 2 } }), 2);  // organ 2's hole filled where background,
  EXPECT_EQ(out->GetPixel({ { 9, 12, 3 } }), 3);  // not where organ 3 is,
  EXPECT_EQ(out->GetPixel({ { 9, 13, 4 } }), 2);  // and organ 3's hole with it: organ 2 comes first
  auto reversed = Copy(image.GetPointer());
  itk::KeepLargestComponentsAndFillHoles(reversed.GetPointer(), { 3, 2, 1 });
  EXPECT_EQ(reversed->GetPixel({ { 9, 13, 4 } }), 3); // organ 3 first: its own hole
  EXPECT_EQ(reversed->GetPixel({ { 7, 11, 2 } }), 2);
  ExpectEqualToReference(image.GetPointer(), { 1, 2, 3 });
  ExpectEqualToReference(image.GetPointer(), { 3, 2, 1 });
}

TEST(LabelComponents, TheResultDoesNotDependOnTheNumberOfThreads)
{
  using Image = itk::Image<unsigned char, 3>;
  const auto     input = RandomLabels<Image>(Image::SizeType{ { 33, 30, 17 } }, 6, 0.05, 7);
  const auto     previous = itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads();
  Image::Pointer results[2];
  unsigned int   threads[2] = { 1, 5 };
  for (int k = 0; k < 2; ++k)
  {
    itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(threads[k]);
    results[k] = Copy(input.GetPointer());
    itk::KeepLargestComponentsAndFillHoles(results[k].GetPointer(), { 1, 2, 3, 4, 5, 6 });
  }
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(previous);
  EXPECT_TRUE(std::equal(results[0]->GetBufferPointer(),
                         results[0]->GetBufferPointer() + input->GetBufferedRegion().GetNumberOfPixels(),
                         results[1]->GetBufferPointer()));
  ExpectEqualToReference(input.GetPointer(), { 1, 2, 3, 4, 5, 6 });
}
