/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkReadPicture_h
#define itkReadPicture_h

#include "agcl/PictureStages.h"
#include "itkImage.h"
#include "itkImageFileReader.h"
#include "itkImageIOFactory.h"
#include "itkReadVolume.h"
#include "itkVectorImage.h"

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <string>

namespace itk {

/** A 2D picture read for a 2D model. */
struct PictureFile
{
  /** Pixels [C, H, W] float32 (the file's values: 0..255 for 8-bit photographs; C = the file's
   *  components), spacing 1 x 1: a 2D model works in pixels (its configuration's coarse spacing,
   *  patch spacing and margin are pixel lengths), because the spacing photographs carry (JPEG
   *  and PNG resolution tags) says nothing about the scene. */
  agcl::Picture picture;
  /** The file's grid (size, spacing, origin, direction; no pixels): the outputs' geometry, and
   *  areas in mm^2 where the file has a spacing. */
  Image<unsigned char, 2>::Pointer geometry;
};

/** The ImageIO of a 2D picture file with its header read, checked as ReadPicture checks it (from the
 *  header alone: a cohort's files can be checked before anything is read or written). With
 *  `channels` > 0 the file must have that many components per pixel (the model's image.channels).
 *  \ingroup AGCLSegmentation */
inline ImageIOBase::Pointer
ReadPictureHeader(const std::string & file, const std::string & what = "picture", unsigned int channels = 0)
{
  using namespace agcl_read_volume_detail;
  if (!std::filesystem::exists(file))
    throw ExceptionObject(__FILE__, __LINE__, what + " '" + file + "': no such file", ITK_LOCATION);
  ImageIOBase::Pointer io = ImageIOFactory::CreateImageIO(file.c_str(), ImageIOFactory::IOFileModeEnum::ReadMode);
  if (!io)
    throw ExceptionObject(
      __FILE__, __LINE__, "cannot read " + what + " '" + file + "': no ITK reader for this file", ITK_LOCATION);
  Phrased(what, file, [&] {
    io->SetFileName(file);
    io->ReadImageInformation();
    return 0;
  });
  const unsigned int dims = io->GetNumberOfDimensions();
  for (unsigned int d = 2; d < dims; ++d)
    if (io->GetDimensions(d) != 1)
      throw ExceptionObject(__FILE__,
                            __LINE__,
                            what + " '" + file + "': a " + std::to_string(dims) +
                              "D image with more than one slice; the model is for 2D pictures ('image.dimensions' 2)",
                            ITK_LOCATION);
  const unsigned int components = io->GetNumberOfComponents();
  if (components < 1 || components > 16)
    throw ExceptionObject(__FILE__,
                          __LINE__,
                          what + " '" + file + "': " + std::to_string(components) +
                            " components per pixel; expected 1 to 16 (grey, RGB, RGBA, ...)",
                          ITK_LOCATION);
  if (channels > 0 && components != channels)
    throw ExceptionObject(__FILE__,
                          __LINE__,
                          what + " '" + file + "': " + std::to_string(components) +
                            " channel(s) per pixel; the model reads " + std::to_string(channels) +
                            " (its image.channels)",
                          ITK_LOCATION);
  return io;
}

/** Reads a 2D picture (JPEG, PNG, BMP, TIFF, MetaImage, NRRD, ... : whatever ITK reads) with 1 to
 *  16 components per pixel (grey, RGB, RGBA, multi-channel). itk::ExceptionObject names `what`
 *  and the file: no such file, unreadable, not 2D (a volume with more than one slice), too many
 *  components (or not `channels` when > 0), a value that is not finite.
 *  \ingroup AGCLSegmentation */
inline PictureFile
ReadPicture(const std::string & file, const std::string & what = "picture", unsigned int channels = 0)
{
  using namespace agcl_read_volume_detail;
  using VectorType = VectorImage<float, 2>;
  const ImageIOBase::Pointer io = ReadPictureHeader(file, what, channels);
  const VectorType::Pointer  image = Phrased(what, file, [&] {
    auto reader = ImageFileReader<VectorType>::New();
    reader->SetImageIO(io);
    reader->SetFileName(file);
    return Output(reader.GetPointer());
  });
  const auto                 size = image->GetLargestPossibleRegion().GetSize();
  const int64_t              C = image->GetNumberOfComponentsPerPixel(), H = size[1], W = size[0];
  at::Tensor                 pixels = at::empty({ H, W, C }, at::kFloat);
  std::memcpy(pixels.data_ptr<float>(), image->GetBufferPointer(), sizeof(float) * H * W * C);
  if (!at::isfinite(pixels).all().item<bool>())
    throw ExceptionObject(
      __FILE__, __LINE__, what + " '" + file + "': a value that is not finite (NaN or infinite)", ITK_LOCATION);
  PictureFile result;
  result.picture.pixels = pixels.permute({ 2, 0, 1 }).contiguous();
  result.geometry = Image<unsigned char, 2>::New();
  result.geometry->SetRegions(image->GetLargestPossibleRegion());
  result.geometry->SetSpacing(image->GetSpacing());
  result.geometry->SetOrigin(image->GetOrigin());
  result.geometry->SetDirection(image->GetDirection());
  return result;
}

} // namespace itk

#endif
