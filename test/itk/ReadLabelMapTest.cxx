/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkImageFileWriter.h"
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
