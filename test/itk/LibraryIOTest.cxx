/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The library's IO (itkReadVolume.h, itkWriteImageAtomically.h, itkLabelDescriptions.h) and its
// one conversion of LibTorch and core errors (itkConvertTorchErrors.h).
#include "itkConvertTorchErrors.h"
#include "itkGDCMImageIO.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkImageSeriesWriter.h"
#include "itkLabelDescriptions.h"
#include "itkMetaDataObject.h"
#include "itkReadVolume.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace {
namespace fs = std::filesystem;
using CT = itk::Image<short, 3>;
using Labels = itk::Image<unsigned char, 3>;

fs::path
FreshFolder(const std::string & name)
{
  const fs::path folder = fs::temp_directory_path() / ("agcl-io-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

// A 5 x 4 x `slices` CT whose voxel (x, y, z) holds base + x + 10 y + 100 z.
CT::Pointer
Ramp(unsigned int slices, short base)
{
  auto            image = CT::New();
  CT::SizeType    size = { { 5, 4, slices } };
  CT::SpacingType spacing;
  spacing[0] = 0.8;
  spacing[1] = 0.8;
  spacing[2] = 2.5;
  image->SetRegions(size);
  image->SetSpacing(spacing);
  image->Allocate();
  for (itk::ImageRegionIteratorWithIndex<CT> it(image, image->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    it.Set(static_cast<short>(base + i[0] + 10 * i[1] + 100 * i[2]));
  }
  return image;
}

// Writes `image` as a DICOM series of its own series UID into `folder` (files <prefix>NNN.dcm).
void
WriteSeries(const CT * image, const fs::path & folder, const std::string & prefix, const std::string & seriesUID)
{
  const unsigned int                     slices = image->GetLargestPossibleRegion().GetSize(2);
  std::vector<itk::MetaDataDictionary>   dictionaries(slices);
  std::vector<itk::MetaDataDictionary *> pointers;
  std::vector<std::string>               files;
  for (unsigned int k = 0; k < slices; ++k)
  {
    auto & d = dictionaries[k];
    auto   set = [&d](const char * tag, const std::string & value) {
      itk::EncapsulateMetaData<std::string>(d, tag, value);
    };
    std::ostringstream position;
    position << "0\\0\\" << 2.5 * k;
    set("0008|0060", "CT");
    set("0020|000d", "1.2.826.0.1.3680043.10.1078.9");
    set("0020|000e", seriesUID);
    set("0008|0018", seriesUID + "." + std::to_string(k + 1));
    set("0020|0013", std::to_string(k + 1));
    set("0020|0032", position.str());
    set("0020|0037", "1\\0\\0\\0\\1\\0");
    set("0028|0030", "0.8\\0.8");
    set("0018|0050", "2.5");
    pointers.push_back(&d);
    char name[32];
    std::snprintf(name, sizeof(name), "%03u.dcm", k + 1);
    files.push_back((folder / (prefix + name)).string());
  }
  auto io = itk::GDCMImageIO::New();
  io->KeepOriginalUIDOn();
  auto writer = itk::ImageSeriesWriter<CT, itk::Image<short, 2>>::New();
  writer->SetInput(image);
  writer->SetImageIO(io);
  writer->SetFileNames(files);
  writer->SetMetaDataDictionaryArray(&pointers);
  writer->Update();
}

template <typename TImage>
void
ExpectSameVoxels(const TImage * expected, const TImage * actual)
{
  ASSERT_EQ(expected->GetLargestPossibleRegion().GetSize(), actual->GetLargestPossibleRegion().GetSize());
  const auto n = expected->GetLargestPossibleRegion().GetNumberOfPixels();
  size_t     differ = 0;
  for (size_t i = 0; i < n; ++i)
    differ += expected->GetBufferPointer()[i] != actual->GetBufferPointer()[i];
  EXPECT_EQ(differ, 0u);
}

template <typename TWork>
std::string
DescriptionOf(TWork work)
{
  try
  {
    work();
  }
  catch (const itk::ExceptionObject & e)
  {
    return e.GetDescription();
  }
  return "no itk::ExceptionObject";
}
} // namespace

TEST(ReadVolume, ReadsTheLargestDicomSeriesOfAFolderWithoutMixingSeries)
{
  const fs::path folder = FreshFolder("dicom");
  const auto     large = Ramp(6, 0), small = Ramp(4, 5000);
  WriteSeries(large, folder, "a", "1.2.826.0.1.3680043.10.1078.9.1");
  WriteSeries(small, folder, "b", "1.2.826.0.1.3680043.10.1078.9.2");
  const auto read = itk::ReadVolume<CT>(folder.string(), "CT");
  ExpectSameVoxels<CT>(large, read);
  EXPECT_NEAR(read->GetSpacing()[2], 2.5, 1e-3);
  EXPECT_NEAR(read->GetSpacing()[0], 0.8, 1e-6);
  fs::remove_all(folder);
}

TEST(ReadVolume, ReadsAFileInAnyFormatAndLabelMapsChecked)
{
  const fs::path folder = FreshFolder("file");
  const auto     ct = Ramp(3, -1000);
  for (const char * extension : { ".nii.gz", ".nrrd", ".mha" })
  {
    const fs::path file = folder / (std::string("ct") + extension);
    auto           writer = itk::ImageFileWriter<CT>::New();
    writer->SetInput(ct);
    writer->SetFileName(file.string());
    writer->Update();
    ExpectSameVoxels<CT>(ct, itk::ReadVolume<CT>(file.string()));
  }
  // Read as a label map, a CT's values are refused with the voxel and the file named.
  const std::string refused =
    DescriptionOf([&] { itk::ReadVolume<Labels>((folder / "ct.nrrd").string(), "label map"); });
  EXPECT_NE(refused.find("label map"), std::string::npos) << refused;
  EXPECT_NE(refused.find("ct.nrrd"), std::string::npos) << refused;
  EXPECT_NE(refused.find("whole numbers in 0..255"), std::string::npos) << refused;
  fs::remove_all(folder);
}

TEST(ReadVolume, FailuresNameWhatAndWhere)
{
  const fs::path    folder = FreshFolder("fail");
  const std::string missing = DescriptionOf([&] { itk::ReadVolume<CT>((folder / "none.nii.gz").string(), "CT"); });
  EXPECT_EQ(missing, "CT '" + (folder / "none.nii.gz").string() + "': no such file");
  const std::string empty = DescriptionOf([&] { itk::ReadVolume<CT>(folder.string(), "CT"); });
  EXPECT_EQ(empty, "CT '" + folder.string() + "': a folder without a DICOM series");
  std::ofstream(folder / "text.nii.gz") << "not an image";
  const std::string garbage = DescriptionOf([&] { itk::ReadVolume<CT>((folder / "text.nii.gz").string(), "CT"); });
  EXPECT_EQ(garbage.rfind("cannot read CT '" + (folder / "text.nii.gz").string() + "': ", 0), 0u) << garbage;
  fs::remove_all(folder);
}

TEST(WriteImageAtomically, WritesWholeOrLeavesTheTargetAsItWas)
{
  const fs::path folder = FreshFolder("write");
  const auto     ct = Ramp(3, 7);
  itk::WriteImageAtomically(ct.GetPointer(), folder / "ct.nii.gz");
  ExpectSameVoxels<CT>(ct, itk::ReadVolume<CT>((folder / "ct.nii.gz").string()));

  // No ITK writer for the extension: the old target is untouched and no temporary is left.
  std::ofstream(folder / "old.nope") << "old content";
  const std::string error = DescriptionOf([&] { itk::WriteImageAtomically(ct.GetPointer(), folder / "old.nope"); });
  EXPECT_EQ(error.rfind("cannot write '" + (folder / "old.nope").string() + "': ", 0), 0u) << error;
  std::ifstream     in(folder / "old.nope");
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "old content");
  std::vector<std::string> names;
  for (const auto & entry : fs::directory_iterator(folder))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{ "ct.nii.gz", "old.nope" }));

  // A folder that does not exist.
  const std::string noFolder =
    DescriptionOf([&] { itk::WriteImageAtomically(ct.GetPointer(), folder / "missing" / "ct.nii.gz"); });
  EXPECT_NE(noFolder.find((folder / "missing" / "ct.nii.gz").string()), std::string::npos) << noFolder;
  fs::remove_all(folder);
}

TEST(LabelDescriptions, BothFilesListEveryLabelWithItsNameAndColour)
{
  const fs::path                           folder = FreshFolder("labels");
  const std::vector<itk::LabelDescription> labels = { { 1, "spleen", { 220, 20, 60 } },
                                                      { 13, "adrenal_left", { 1, 2, 3 } } };
  itk::WriteLabelDescriptions(folder, labels, "test");
  // Slicer: "index name R G B A", background first.
  std::ifstream            ctbl(folder / "labels.ctbl");
  std::vector<std::string> rows;
  for (std::string line; std::getline(ctbl, line);)
    if (!line.empty() && line[0] != '#')
      rows.push_back(line);
  EXPECT_EQ(
    rows, (std::vector<std::string>{ "0 background 0 0 0 0", "1 spleen 220 20 60 255", "13 adrenal_left 1 2 3 255" }));
  // ITK-SNAP: IDX R G B A VIS MSH "LABEL", whitespace-separated.
  std::ifstream            snap(folder / "labels.itksnap.txt");
  std::vector<std::string> parsed;
  for (std::string line; std::getline(snap, line);)
  {
    if (line.empty() || line[0] == '#')
      continue;
    std::istringstream fields(line);
    int                idx, r, g, b, vis, msh;
    double             alpha;
    std::string        name;
    fields >> idx >> r >> g >> b >> alpha >> vis >> msh;
    std::getline(fields >> std::ws, name);
    std::ostringstream os;
    os << idx << " " << r << " " << g << " " << b << " " << alpha << " " << vis << " " << msh << " " << name;
    parsed.push_back(os.str());
  }
  EXPECT_EQ(parsed,
            (std::vector<std::string>{
              "0 0 0 0 0 0 0 \"Clear Label\"", "1 220 20 60 1 1 1 \"spleen\"", "13 1 2 3 1 1 1 \"adrenal_left\"" }));
  fs::remove_all(folder);
}

TEST(ConvertTorchErrors, LibTorchAndCoreErrorsBecomeItkExceptionsNamingTheContext)
{
  EXPECT_EQ(itk::ConvertTorchErrors("ctx", [] { return 42; }), 42);
  const std::string torch = DescriptionOf([] { itk::ConvertTorchErrors("Stage", [] { TORCH_CHECK(false, "boom"); }); });
  EXPECT_NE(torch.find("Stage: LibTorch error: "), std::string::npos) << torch;
  EXPECT_NE(torch.find("boom"), std::string::npos) << torch;
  EXPECT_EQ(torch.find("Exception raised from"), std::string::npos) << "no backtrace: " << torch;
  const std::string core =
    DescriptionOf([] { itk::ConvertTorchErrors("Stage", [] { throw std::invalid_argument("bad shape"); }); });
  EXPECT_NE(core.find("Stage: bad shape"), std::string::npos) << core;
  // ITK's own exceptions (an abort included) pass unchanged, type and text.
  EXPECT_THROW(itk::ConvertTorchErrors("Stage", [] { throw itk::ProcessAborted(__FILE__, __LINE__); }),
               itk::ProcessAborted);
  const std::string itkText =
    DescriptionOf([] { itk::ConvertTorchErrors("Stage", [] { itkGenericExceptionMacro(<< "as is"); }); });
  EXPECT_EQ(itkText, "ITK ERROR: as is"); // itkGenericExceptionMacro's own text, no context added
}
