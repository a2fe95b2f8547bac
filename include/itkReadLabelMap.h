/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkReadLabelMap_h
#define itkReadLabelMap_h

#include "itkImage.h"
#include "itkImageFileReader.h"
#include "itkImageIOFactory.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIterator.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace itk {

/** Reads a label map file into an 8-bit label image, checking every voxel: ITK's reader would
 *  convert a 16-bit label 257 to 1 (another organ) and a floating-point 1.5 to 1 without a word.
 *  The file is read as float (exact for every integer below 2^24), each voxel must be a whole
 *  number in 0..255, and std::invalid_argument names the file, the first offending value and its
 *  voxel index otherwise (itk::ExceptionObject from the reader passes through).
 *  A palette (indexed) PNG, as PASCAL VOC's SegmentationClass ships, is read as its indices, not
 *  expanded to colours (ITK's default); a file with more than one component per pixel (an RGB
 *  picture of the labels) is refused, naming its pixel type. */
template <typename TLabelImage>
typename TLabelImage::Pointer
ReadLabelMap(const std::string & file)
{
  static_assert(std::is_same_v<typename TLabelImage::PixelType, unsigned char>, "an 8-bit label image");
  using FloatImage = Image<float, TLabelImage::ImageDimension>;
  ImageIOBase::Pointer io = ImageIOFactory::CreateImageIO(file.c_str(), ImageIOFactory::IOFileModeEnum::ReadMode);
  if (io) // without one, the reader below raises its own itk::ExceptionObject for the file
  {
    io->SetExpandRGBPalette(false); // palette images: their indices are the labels
    io->SetFileName(file);
    io->ReadImageInformation();
  }
  if (io && io->GetNumberOfComponents() != 1)
  {
    std::ostringstream os;
    os << "label map '" << file << "': " << io->GetNumberOfComponents() << " components per pixel ("
       << ImageIOBase::GetPixelTypeAsString(io->GetPixelType())
       << "); a label map holds one label index per pixel (a palette/indexed or single-channel image)";
    throw std::invalid_argument(os.str());
  }
  auto reader = ImageFileReader<FloatImage>::New();
  if (io)
    reader->SetImageIO(io);
  reader->SetFileName(file);
  reader->Update();
  const FloatImage * values = reader->GetOutput();
  auto               labels = TLabelImage::New();
  labels->CopyInformation(values);
  labels->SetRegions(values->GetLargestPossibleRegion());
  labels->Allocate();
  ImageRegionConstIteratorWithIndex<FloatImage> in(values, values->GetLargestPossibleRegion());
  ImageRegionIterator<TLabelImage>              out(labels, labels->GetLargestPossibleRegion());
  for (; !in.IsAtEnd(); ++in, ++out)
  {
    const float v = in.Get();
    if (!(v >= 0.0f && v <= 255.0f && v == std::floor(v)))
    {
      std::ostringstream os;
      os << "label map '" << file << "': voxel " << in.GetIndex() << " has the value " << v
         << "; labels must be whole numbers in 0..255";
      throw std::invalid_argument(os.str());
    }
    out.Set(static_cast<unsigned char>(v));
  }
  return labels;
}

} // namespace itk

#endif
