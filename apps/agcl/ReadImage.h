/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_ReadImage_h
#define agcl_apps_ReadImage_h

// Reading for the agcl commands: the library's itk::ReadVolume (a file or a DICOM series
// folder), with its failures as InputError (exit code 1: the input is at fault).

#include "Subcommands.h"

#include "itkReadVolume.h"

#include <string>

namespace agcl::cli {

template <typename TImage>
typename TImage::Pointer
ReadImage(const std::string & path, const std::string & what)
{
  try
  {
    return itk::ReadVolume<TImage>(path, what);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError(e.GetDescription());
  }
}

} // namespace agcl::cli

#endif
