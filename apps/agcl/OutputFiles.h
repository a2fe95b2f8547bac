/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_OutputFiles_h
#define agcl_apps_OutputFiles_h

// Output files of the agcl commands: images, texts and label descriptions are written with the
// library's atomic writers (itkWriteImageAtomically.h, itkLabelDescriptions.h, and the core's
// agcl/AtomicFile.h for texts); numbers in tables with Fixed.

#include "itkLabelDescriptions.h"
#include "itkWriteImageAtomically.h"

#include "agcl/AtomicFile.h"

#include <iomanip>
#include <sstream>
#include <string>

namespace agcl::cli {

using agcl::WriteTextAtomically;

/** `value` with `digits` decimals. */
inline std::string
Fixed(double value, int digits)
{
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << value;
  return os.str();
}

} // namespace agcl::cli

#endif
