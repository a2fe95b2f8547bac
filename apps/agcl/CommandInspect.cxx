/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl inspect IMAGE: geometry of an image file and per-channel statistics
// computed by LibTorch on the chosen device (through the image<->tensor bridge).

#include "Subcommands.h"

#include "agcl/Device.h"
#include "itkImageFileReader.h"
#include "itkImageIOFactory.h"
#include "itkImageToTensor.h"
#include "itkVectorImage.h"

#include <ATen/core/Tensor.h>

#include <iomanip>
#include <iostream>
#include <memory>

namespace agcl::cli {

namespace {
struct InspectOptions
{
  std::string image;
  std::string device = "cpu";
};

template <unsigned int VDimension>
int
InspectImage(const InspectOptions & options, const itk::ImageIOBase * io)
{
  using ImageType = itk::VectorImage<float, VDimension>;
  auto reader = itk::ImageFileReader<ImageType>::New();
  reader->SetFileName(options.image);
  try
  {
    reader->Update();
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError("cannot read image '" + options.image + "': " + e.GetDescription());
  }
  typename ImageType::Pointer image = reader->GetOutput();
  const c10::Device           device = agcl::ParseDevice(options.device);

  // [C, (Z,) Y, X] on the device; statistics per channel in double precision.
  const at::Tensor tensor =
    itk::ImageToTensor<ImageType>::Copy(image, device, itk::TensorComponentAxisEnum::First).to(at::kDouble);

  std::cout << "file: " << options.image << "\n";
  std::cout << "dimension: " << VDimension << "\n";
  std::cout << "stored pixel type: " << itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType()) << " x "
            << io->GetNumberOfComponents() << "\n";
  std::cout << "size:";
  for (unsigned int d = 0; d < VDimension; ++d)
  {
    std::cout << " " << image->GetLargestPossibleRegion().GetSize(d);
  }
  std::cout << "\nspacing:";
  for (unsigned int d = 0; d < VDimension; ++d)
  {
    std::cout << " " << image->GetSpacing()[d];
  }
  std::cout << "\norigin:";
  for (unsigned int d = 0; d < VDimension; ++d)
  {
    std::cout << " " << image->GetOrigin()[d];
  }
  std::cout << "\ndirection:";
  for (unsigned int r = 0; r < VDimension; ++r)
  {
    for (unsigned int c = 0; c < VDimension; ++c)
    {
      std::cout << " " << image->GetDirection()[r][c];
    }
  }
  std::cout << "\ntensor: [";
  for (int64_t d = 0; d < tensor.dim(); ++d)
  {
    std::cout << (d ? ", " : "") << tensor.size(d);
  }
  std::cout << "] on " << device.str() << "\n";
  std::cout << std::setprecision(6);
  for (int64_t c = 0; c < tensor.size(0); ++c)
  {
    const at::Tensor channel = tensor.select(0, c);
    std::cout << "channel " << c << ": min " << channel.min().item<double>() << " max " << channel.max().item<double>()
              << " mean " << channel.mean().item<double>() << " std " << channel.std().item<double>() << "\n";
  }
  return kSuccess;
}

int
RunInspect(const InspectOptions & options)
{
  itk::ImageIOBase::Pointer io =
    itk::ImageIOFactory::CreateImageIO(options.image.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
  if (!io)
  {
    throw InputError("cannot read image '" + options.image +
                     "': no ITK image IO recognises this file (missing file or unknown format)");
  }
  io->SetFileName(options.image);
  try
  {
    io->ReadImageInformation();
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError("cannot read image '" + options.image + "': " + e.GetDescription());
  }
  switch (io->GetNumberOfDimensions())
  {
    case 2:
      return InspectImage<2>(options, io);
    case 3:
      return InspectImage<3>(options, io);
    default:
      throw InputError("image '" + options.image + "' has " + std::to_string(io->GetNumberOfDimensions()) +
                       " dimensions; expected 2 or 3");
  }
}
} // namespace

void
RegisterInspect(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<InspectOptions>();
  CLI::App * sub = app.add_subcommand("inspect", "Print an image's geometry and per-channel statistics");
  sub->add_option("image", options->image, "Image file (any format ITK reads: NIfTI, NRRD, MetaImage, PNG, ...)")
    ->required();
  sub->add_option("--device", options->device, "Device for the statistics: cpu, cuda or cuda:N")->capture_default_str();
  sub->callback([&runner, options]() { runner = [options]() { return RunInspect(*options); }; });
}

} // namespace agcl::cli
