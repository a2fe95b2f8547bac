/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_OutputFiles_h
#define agcl_apps_OutputFiles_h

// Output files of the agcl commands: images, texts and label descriptions are written with the
// library's atomic writers (itkWriteImageAtomically.h, itkLabelDescriptions.h, and the core's
// agcl/AtomicFile.h for texts); numbers in tables with Fixed.

#include "itkLabelDescriptions.h"
#include "itkPNGImageIO.h"
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

/** PASCAL VOC's colour map: the bits of the index spread over the three channels, high bit first. */
inline itk::PNGImageIO::PaletteType
VocPalette()
{
  itk::PNGImageIO::PaletteType palette(256);
  for (unsigned i = 0; i < 256; ++i)
  {
    unsigned rgb[3] = { 0, 0, 0 };
    unsigned value = i;
    for (int bit = 7; bit >= 0; --bit)
    {
      for (int c = 0; c < 3; ++c)
        rgb[c] |= ((value >> c) & 1u) << bit;
      value >>= 3;
    }
    palette[i].Set(
      static_cast<unsigned char>(rgb[0]), static_cast<unsigned char>(rgb[1]), static_cast<unsigned char>(rgb[2]));
  }
  return palette;
}

} // namespace agcl::cli

#endif
