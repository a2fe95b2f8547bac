/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkImageFileWriter.h"
#include "itkPNGImageIO.h"
#include "itkRGBPixel.h"
#include "itkReadLabelMap.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

namespace {
namespace fs = std::filesystem;

// A 3 x 2 x 1 label file of pixel type T holding `values` in buffer order.
template <typename T>
std::string
WriteLabels(const std::string & name, const std::vector<T> & values)
{
  using ImageType = itk::Image<T, 3>;
  auto                         image = ImageType::New();
  typename ImageType::SizeType size = { { 3, 2, 1 } };
  image->SetRegions(size);
  image->Allocate();
  std::copy(values.begin(), values.end(), image->GetBufferPointer());
  const fs::path file = fs::temp_directory_path() / ("agcl-labels-" + std::to_string(::getpid()) + "-" + name);
  auto           writer = itk::ImageFileWriter<ImageType>::New();
  writer->SetInput(image);
  writer->SetFileName(file.string());
  writer->Update();
  return file.string();
}

using LabelImage = itk::Image<unsigned char, 3>;

std::string
ErrorOf(const std::string & file)
{
  try
  {
    itk::ReadLabelMap<LabelImage>(file);
  }
  catch (const std::invalid_argument & e)
  {
    return e.what();
  }
  return "no error";
}
} // namespace

TEST(ReadLabelMap, WholeNumbersIn0To255AreReadAsTheyAre)
{
  const std::string                file = WriteLabels<unsigned short>("ok.nrrd", { 0, 1, 12, 255, 7, 0 });
  const auto                       labels = itk::ReadLabelMap<LabelImage>(file);
  const std::vector<unsigned char> expected = { 0, 1, 12, 255, 7, 0 };
  EXPECT_EQ(std::vector<unsigned char>(labels->GetBufferPointer(), labels->GetBufferPointer() + 6), expected);
  fs::remove(file);
}

TEST(ReadLabelMap, ValuesAnEightBitCastWouldChangeAreRefusedWithTheirVoxel)
{
  // A plain ITK read as unsigned char gives 257 -> 1 (another organ), -1 -> 255, 1.5 -> 1.
  const std::string big = WriteLabels<unsigned short>("big.nrrd", { 0, 1, 2, 3, 257, 0 });
  {
    auto plain = itk::ImageFileReader<LabelImage>::New(); // what the readers did before
    plain->SetFileName(big);
    plain->Update();
    EXPECT_EQ(plain->GetOutput()->GetBufferPointer()[4], 1); // 257 silently became label 1
  }
  EXPECT_NE(ErrorOf(big).find("voxel [1, 1, 0] has the value 257; labels must be whole numbers in 0..255"),
            std::string::npos)
    << ErrorOf(big);
  const std::string negative = WriteLabels<short>("negative.nrrd", { 0, -1, 0, 0, 0, 0 });
  EXPECT_NE(ErrorOf(negative).find("voxel [1, 0, 0] has the value -1"), std::string::npos) << ErrorOf(negative);
  const std::string fraction = WriteLabels<float>("fraction.nrrd", { 0, 0, 1.5f, 0, 0, 0 });
  EXPECT_NE(ErrorOf(fraction).find("voxel [2, 0, 0] has the value 1.5"), std::string::npos) << ErrorOf(fraction);
  for (const auto & file : { big, negative, fraction })
    fs::remove(file);
}

namespace {
// A 2D 4 x 2 PNG of `indices`; with a palette (as VOC's SegmentationClass) when `palette` is given.
std::string
WritePng(const std::string &                  name,
         const std::vector<unsigned char> &   indices,
         const itk::PNGImageIO::PaletteType & palette)
{
  using Image2D = itk::Image<unsigned char, 2>;
  auto              image = Image2D::New();
  Image2D::SizeType size = { { 4, 2 } };
  image->SetRegions(size);
  image->Allocate();
  std::copy(indices.begin(), indices.end(), image->GetBufferPointer());
  const fs::path file = fs::temp_directory_path() / ("agcl-labels-" + std::to_string(::getpid()) + "-" + name);
  auto           io = itk::PNGImageIO::New();
  if (!palette.empty())
  {
    io->SetWritePalette(true);
    io->SetColorPalette(palette);
  }
  auto writer = itk::ImageFileWriter<Image2D>::New();
  writer->SetImageIO(io);
  writer->SetInput(image);
  writer->SetFileName(file.string());
  writer->Update();
  return file.string();
}
} // namespace

TEST(ReadLabelMap, PalettePngIsReadAsItsIndicesNotItsColours)
{
  // Colours unrelated to the indices (index i is drawn as (255 - 3i, 7i mod 256, 100)).
  itk::PNGImageIO::PaletteType palette(256);
  for (unsigned i = 0; i < 256; ++i)
  {
    palette[i].Set(static_cast<unsigned char>(255 - (3 * i) % 256), static_cast<unsigned char>((7 * i) % 256), 100);
  }
  const std::vector<unsigned char> indices = { 0, 1, 15, 255, 20, 0, 3, 255 };
  const std::string                file = WritePng("palette.png", indices, palette);
  {
    // ITK's default read expands the palette: the values are colours, not labels.
    auto plain = itk::ImageFileReader<LabelImage>::New();
    plain->SetFileName(file);
    plain->Update();
    EXPECT_NE(std::vector<unsigned char>(plain->GetOutput()->GetBufferPointer(),
                                         plain->GetOutput()->GetBufferPointer() + indices.size()),
              indices);
  }
  const auto labels = itk::ReadLabelMap<LabelImage>(file);
  ASSERT_EQ(labels->GetLargestPossibleRegion().GetSize(), (LabelImage::SizeType{ { 4, 2, 1 } }));
  EXPECT_EQ(std::vector<unsigned char>(labels->GetBufferPointer(), labels->GetBufferPointer() + indices.size()),
            indices);
  // A single-channel (greyscale) PNG, as SegmentationClassAug ships, is read as it is too.
  const std::string grey = WritePng("grey.png", indices, {});
  const auto        greyLabels = itk::ReadLabelMap<LabelImage>(grey);
  EXPECT_EQ(std::vector<unsigned char>(greyLabels->GetBufferPointer(), greyLabels->GetBufferPointer() + indices.size()),
            indices);
  fs::remove(file);
  fs::remove(grey);
}

TEST(ReadLabelMap, AnRgbPictureOfTheLabelsIsRefusedNamingItsPixelType)
{
  using RGBImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;
  auto               image = RGBImage::New();
  RGBImage::SizeType size = { { 3, 2 } };
  image->SetRegions(size);
  image->Allocate();
  itk::RGBPixel<unsigned char> red;
  red.Set(128, 0, 0);
  image->FillBuffer(red);
  const fs::path file = fs::temp_directory_path() / ("agcl-labels-" + std::to_string(::getpid()) + "-rgb.png");
  auto           writer = itk::ImageFileWriter<RGBImage>::New();
  writer->SetInput(image);
  writer->SetFileName(file.string());
  writer->Update();
  const std::string error = ErrorOf(file.string());
  EXPECT_NE(error.find("label map '" + file.string() + "': 3 components per pixel (rgb)"), std::string::npos) << error;
  fs::remove(file);
}
