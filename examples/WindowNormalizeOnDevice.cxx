/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Example: an ITK pipeline step done by LibTorch on the chosen device.
// Reads a CT volume (or makes a synthetic one), moves it to the device through
// the image<->tensor bridge, applies the CT soft-tissue window used for query
// patches (-175..275 HU -> 0..1), and writes the result with the input's geometry.
//
//   WindowNormalizeOnDevice OUTPUT.nii.gz [INPUT] [--device cpu|cuda]
#include "agcl/Device.h"
#include "agcl/Threading.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkImageToTensor.h"
#include "itkTensorToImage.h"

#include <ATen/ATen.h>

#include <cmath>
#include <iostream>
#include <string>

using CTImage = itk::Image<short, 3>;
using FloatImage = itk::Image<float, 3>;

// A 96 x 96 x 40 body-like ellipse of soft tissue (40 HU) with a brighter disc (150 HU) in air (-1000 HU).
static CTImage::Pointer
MakeSyntheticCT()
{
  auto image = CTImage::New();
  image->SetRegions(CTImage::SizeType{ { 96, 96, 40 } });
  const double spacing[3] = { 3.6, 3.6, 6.0 };
  image->SetSpacing(spacing);
  image->Allocate();
  for (itk::ImageRegionIteratorWithIndex<CTImage> it(image, image->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    const double x = (it.GetIndex()[0] - 47.5) / 44.0;
    const double y = (it.GetIndex()[1] - 47.5) / 32.0;
    const double d = std::hypot(it.GetIndex()[0] - 60.0, it.GetIndex()[1] - 50.0);
    short        value = x * x + y * y < 1.0 ? 40 : -1000;
    if (d < 8.0)
    {
      value = 150;
    }
    it.Set(value);
  }
  return image;
}

int
main(int argc, char ** argv)
{
  std::string output;
  std::string input;
  std::string deviceText = "cpu";
  for (int i = 1; i < argc; ++i)
  {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc)
    {
      deviceText = argv[++i];
    }
    else if (output.empty())
    {
      output = arg;
    }
    else if (input.empty())
    {
      input = arg;
    }
    else
    {
      std::cerr << "unexpected argument '" << arg << "'" << std::endl;
      return 1;
    }
  }
  if (output.empty())
  {
    std::cerr << "usage: " << argv[0] << " OUTPUT.nii.gz [INPUT] [--device cpu|cuda]" << std::endl;
    return 1;
  }
  try
  {
    agcl::ConfigureThreads();
    const c10::Device device = agcl::ParseDevice(deviceText);
    CTImage::Pointer  ct;
    if (input.empty())
    {
      ct = MakeSyntheticCT();
    }
    else
    {
      ct = itk::ReadImage<CTImage>(input);
    }
    // [Z, Y, X] int16 on the device -> float window -> back to an ITK image with ct's geometry.
    const at::Tensor hu = itk::ImageToTensor<CTImage>::Copy(ct, device).to(at::kFloat);
    const at::Tensor windowed = ((hu + 175.0) / 450.0).clamp(0.0, 1.0);
    auto             result = itk::TensorToImage<FloatImage>::Convert(windowed, ct);
    itk::WriteImage(result, output);
    std::cout << "wrote " << output << " (window -175..275 HU on " << device.str() << ")" << std::endl;
    if (input.empty())
    {
      const std::string inputCopy = output.substr(0, output.find('.')) + "_input.nii.gz";
      itk::WriteImage(ct, inputCopy);
      std::cout << "wrote " << inputCopy << " (the synthetic input)" << std::endl;
    }
  }
  catch (const std::exception & e) // itk::ExceptionObject and std::invalid_argument
  {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
