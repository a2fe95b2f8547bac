/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkReadVolume_h
#define itkReadVolume_h

#include "itkGDCMImageIO.h"
#include "itkGDCMSeriesFileNames.h"
#include "itkImageFileReader.h"
#include "itkImageSeriesReader.h"
#include "itkReadLabelMap.h"

#include <filesystem>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace itk {

namespace agcl_read_volume_detail {
/** Runs `read()` (returning an image pointer); its failures become one itk::ExceptionObject:
 *  "cannot read <what> '<path>': <ITK's reason>", or "<what>: <reason>" for ReadLabelMap's
 *  refusal of a value (which names the file itself). */
template <typename TRead>
auto
Phrased(const std::string & what, const std::string & path, TRead read)
{
  std::string message;
  try
  {
    return read();
  }
  catch (const ExceptionObject & e)
  {
    message = "cannot read " + what + " '" + path + "': " + e.GetDescription();
  }
  catch (const std::invalid_argument & e)
  {
    message = what + ": " + e.what();
  }
  throw ExceptionObject(__FILE__, __LINE__, message, ITK_LOCATION);
}

template <typename TReader>
typename TReader::OutputImageType::Pointer
Output(TReader * reader)
{
  reader->Update();
  typename TReader::OutputImageType::Pointer image = reader->GetOutput();
  image->DisconnectPipeline();
  return image;
}
} // namespace agcl_read_volume_detail

/** Reads the DICOM series in `folder`. A folder may hold several series (e.g. a scout, a
 *  contrast phase, a reformat): the one with the most files is read, series being told apart by
 *  their UID and details (GDCMSeriesFileNames with UseSeriesDetails), so that slices of two
 *  series never mix. itk::ExceptionObject names `what` and the folder when there is no series
 *  or it cannot be read.
 *  \ingroup AGCLSegmentation */
template <typename TImage>
typename TImage::Pointer
ReadDicomSeriesFolder(const std::string & folder, const std::string & what = "image")
{
  using namespace agcl_read_volume_detail;
  const std::vector<std::string> files = Phrased(what, folder, [&folder] {
    auto names = GDCMSeriesFileNames::New();
    names->SetUseSeriesDetails(true);
    names->SetDirectory(folder);
    std::vector<std::string> largest;
    for (const auto & uid : names->GetSeriesUIDs())
    {
      const auto candidate = names->GetFileNames(uid);
      if (candidate.size() > largest.size())
        largest = candidate;
    }
    return largest;
  });
  if (files.empty())
  {
    throw ExceptionObject(
      __FILE__, __LINE__, what + " '" + folder + "': a folder without a DICOM series", ITK_LOCATION);
  }
  return Phrased(what, folder, [&files] {
    auto reader = ImageSeriesReader<TImage>::New();
    reader->SetImageIO(GDCMImageIO::New());
    reader->SetFileNames(files);
    return Output(reader.GetPointer());
  });
}

/** Reads a volume from `path`: a file in any format ITK reads (NIfTI, NRRD, MetaImage, a
 *  single DICOM file, ...) or a folder holding a DICOM series (ReadDicomSeriesFolder). An 8-bit
 *  image is read as a label map, every voxel checked (ReadLabelMap: a 16-bit 257 must not
 *  become label 1). Every failure is an itk::ExceptionObject whose description names `what`
 *  (e.g. "CT", "label map of subject 'a'") and the path: "... no such file", "cannot read ...",
 *  without ITK's "ITK ERROR:" prefix, so that a front end can show it as it is.
 *  \ingroup AGCLSegmentation */
template <typename TImage>
typename TImage::Pointer
ReadVolume(const std::string & path, const std::string & what = "image")
{
  using namespace agcl_read_volume_detail;
  std::error_code error;
  if (!std::filesystem::exists(path, error))
  {
    throw ExceptionObject(__FILE__, __LINE__, what + " '" + path + "': no such file", ITK_LOCATION);
  }
  if (std::filesystem::is_directory(path, error))
  {
    return ReadDicomSeriesFolder<TImage>(path, what);
  }
  return Phrased(what, path, [&path]() -> typename TImage::Pointer {
    if constexpr (std::is_same_v<typename TImage::PixelType, unsigned char>)
    {
      return ReadLabelMap<TImage>(path);
    }
    else
    {
      auto reader = ImageFileReader<TImage>::New();
      reader->SetFileName(path);
      return Output(reader.GetPointer());
    }
  });
}

} // namespace itk

#endif
