/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Writes the small test images the CLI tests read:
//   ramp.nii.gz   short 3D, 6 x 5 x 4, pixel (x, y, z) = x + 10 y + 100 z, spacing 0.5 1 2.5
//   slice.png     unsigned char 2D, 8 x 4, pixel (x, y) = 30 x + y
//   volume4d.nrrd float 4D, 2 x 2 x 2 x 2 (a dimension agcl refuses)
//   huge_spacing.nii.gz  short 3D, 6 x 5 x 4 of 1e6 mm voxels (a header no CT has)
#include "itkImage.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionIteratorWithIndex.h"

#include <iostream>
#include <string>

template <typename TImage, typename TFunction>
void
Write(const std::string &               file,
      const typename TImage::SizeType & size,
      TFunction                         value,
      const double *                    spacing = nullptr)
{
  auto image = TImage::New();
  image->SetRegions(size);
  if (spacing)
  {
    image->SetSpacing(spacing);
  }
  image->Allocate();
  for (itk::ImageRegionIteratorWithIndex<TImage> it(image, image->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    it.Set(value(it.GetIndex()));
  }
  auto writer = itk::ImageFileWriter<TImage>::New();
  writer->SetInput(image);
  writer->SetFileName(file);
  writer->Update();
}

int
main(int argc, char ** argv)
{
  if (argc != 2)
  {
    std::cerr << "usage: " << argv[0] << " OUTPUT_DIR" << std::endl;
    return 1;
  }
  const std::string dir = argv[1];
  const double      spacing[3] = { 0.5, 1.0, 2.5 };
  using Short3 = itk::Image<short, 3>;
  Write<Short3>(
    dir + "/ramp.nii.gz",
    { { 6, 5, 4 } },
    [](const Short3::IndexType & i) { return short(i[0] + 10 * i[1] + 100 * i[2]); },
    spacing);
  const double hugeSpacing[3] = { 1e6, 1e6, 1e6 };
  Write<Short3>(
    dir + "/huge_spacing.nii.gz", { { 6, 5, 4 } }, [](const Short3::IndexType &) { return short(0); }, hugeSpacing);
  using UChar2 = itk::Image<unsigned char, 2>;
  Write<UChar2>(
    dir + "/slice.png", { { 8, 4 } }, [](const UChar2::IndexType & i) { return (unsigned char)(30 * i[0] + i[1]); });
  using Float4 = itk::Image<float, 4>;
  Write<Float4>(dir + "/volume4d.nrrd", { { 2, 2, 2, 2 } }, [](const Float4::IndexType &) { return 1.0f; });
  return 0;
}
