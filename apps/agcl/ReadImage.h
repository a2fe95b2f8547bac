/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_ReadImage_h
#define agcl_apps_ReadImage_h

// Reading an image file for the agcl commands: any format ITK reads, every failure an InputError
// (exit code 1) naming the file and what it was meant to be.

#include "Subcommands.h"

#include "itkImageFileReader.h"

#include <filesystem>
#include <string>

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
}

} // namespace agcl::cli

#endif
