/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_ReadImage_h
#define agcl_apps_ReadImage_h

// Reading an image file for the agcl commands: any format ITK reads, or a folder holding a DICOM
// series; every failure an InputError (exit code 1) naming the file and what it was meant to be.

#include "Subcommands.h"

#include "itkGDCMImageIO.h"
#include "itkGDCMSeriesFileNames.h"
#include "itkImageFileReader.h"
#include "itkImageSeriesReader.h"
#include "itkReadLabelMap.h"

#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

namespace agcl::cli {

template <typename TImage>
typename TImage::Pointer
ReadImage(const std::string & file, const std::string & what)
{
  if (!std::filesystem::exists(file))
  {
    throw InputError(what + " '" + file + "': no such file");
  }
  try
  {
    // Label maps: every voxel checked (a 16-bit 257 must not become label 1).
    if constexpr (std::is_same_v<typename TImage::PixelType, unsigned char>)
      return itk::ReadLabelMap<TImage>(file);
    auto reader = itk::ImageFileReader<TImage>::New();
    reader->SetFileName(file);
    reader->Update();
    typename TImage::Pointer image = reader->GetOutput();
    image->DisconnectPipeline();
    return image;
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError("cannot read " + what + " '" + file + "': " + e.GetDescription());
  }
  catch (const std::invalid_argument & e)
  {
    throw InputError(what + ": " + e.what());
  }
}

/** Reads the DICOM series in `folder` (the one with the most files when there are several). */
template <typename TImage>
typename TImage::Pointer
ReadDicomSeries(const std::string & folder, const std::string & what)
{
  try
  {
    auto names = itk::GDCMSeriesFileNames::New();
    names->SetUseSeriesDetails(true);
    names->SetDirectory(folder);
    std::vector<std::string> files;
    for (const auto & uid : names->GetSeriesUIDs())
    {
      const auto candidate = names->GetFileNames(uid);
      if (candidate.size() > files.size())
        files = candidate;
    }
    if (files.empty())
    {
      throw InputError(what + " '" + folder + "': a folder without a DICOM series");
    }
    auto reader = itk::ImageSeriesReader<TImage>::New();
    reader->SetImageIO(itk::GDCMImageIO::New());
    reader->SetFileNames(files);
    reader->Update();
    typename TImage::Pointer image = reader->GetOutput();
    image->DisconnectPipeline();
    return image;
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError("cannot read " + what + " '" + folder + "': " + e.GetDescription());
  }
}

} // namespace agcl::cli

#endif
